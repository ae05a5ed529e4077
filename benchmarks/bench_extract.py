"""Keyframe extraction vs the floor: one plain OpenCV decode of the same video (issue 3).

(a) decode every frame once with a plain cv2.VideoCapture read loop;
(b) `poselab.io.frames.extract_frames(method="kmeans", n=20)` on a temporary project that links
    the same video (never writing next to the video itself).
Both run in the same process on the same machine, interleaved after one warm-up each; the
script prints every run, the medians, the ratio (b)/(a) (target <= 1.3) and a final JSON line.

Usage:
    python benchmarks/bench_extract.py [--video PATH] [--n 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from poselab.io.frames import extract_frames
from poselab.io.project import create_project

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4"


def plain_decode(video: Path) -> tuple[float, int]:
    """Seconds and frame count of one cv2.VideoCapture read loop over the whole video."""
    start = time.perf_counter()
    cap, frames = cv2.VideoCapture(str(video)), 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    return time.perf_counter() - start, frames


def extraction(config: Path, n: int) -> float:
    """Seconds of one k-means extraction of n frames into an emptied labeled-data folder."""
    for png in (config.parent / "labeled-data").rglob("*.png"):
        png.unlink()
    start = time.perf_counter()
    result = extract_frames(config, n=n, method="kmeans", progress=False)
    seconds = time.perf_counter() - start
    assert sum(len(paths) for paths in result.frames.values()) == n
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO, help="video to benchmark")
    parser.add_argument("--n", type=int, default=20, help="frames to extract")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: not found (see --video)")

    with tempfile.TemporaryDirectory() as tmp:
        config = create_project("bench", "bench", videos=[args.video], working_dir=tmp)
        plain_decode(args.video)  # warm-up: file cache, codec and library initialisation
        extraction(config, args.n)
        plain, extract = [], []
        for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
            seconds, frames = plain_decode(args.video)
            plain.append(seconds)
            extract.append(extraction(config, args.n))
            print(f"plain decode {plain[-1]:.3f} s   kmeans extract {extract[-1]:.3f} s")

    a, b = statistics.median(plain), statistics.median(extract)
    print(f"video: {args.video.name}, {frames} frames")
    print(f"(a) plain OpenCV decode, median of {args.repeats}: {a:.3f} s ({frames / a:.0f} fps)")
    print(f"(b) k-means extraction of {args.n} frames, median of {args.repeats}: {b:.3f} s")
    print(f"ratio (b)/(a): {b / a:.2f} (target <= 1.3)")
    print(json.dumps({
        "benchmark": "extract_frames_kmeans", "video": args.video.name, "frames": frames,
        "n": args.n, "repeats": args.repeats, "plain_decode_s": round(a, 3),
        "kmeans_extract_s": round(b, 3), "ratio": round(b / a, 3),
        "plain_runs_s": [round(s, 3) for s in plain],
        "extract_runs_s": [round(s, 3) for s in extract],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "opencv": cv2.__version__, "cpu": _cpu(), "python": platform.python_version(),
    }))


def _cpu() -> str:
    """CPU model and core count, for the results table."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"

if __name__ == "__main__":
    main()
