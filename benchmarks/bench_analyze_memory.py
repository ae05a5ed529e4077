"""Peak memory of video analysis versus video length: is RSS flat?

Builds the openfield video (2,330 frames, 640x480 H.264) concatenated --repeat times
without re-encoding (ffmpeg concat demuxer from the imageio-ffmpeg wheel; falls back to an
mp4v re-encode with OpenCV), then analyzes the original and the long video with
`poselab.analysis.analyze.analyze_video` (the whole user path: background decoding, batched
inference, atomic writes) while a thread samples this process's resident memory every
second. Prints RSS at each tenth of the run, the peak, and the growth from the first
tenth to the end; the target is a peak under 1.5 GB that does not grow with the video.
The model has untrained weights (memory does not depend on them); see bench_analyze.py.

    python benchmarks/bench_analyze_memory.py [--repeat 10] [--config NAME] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import cv2
from bench_analyze import CONFIGS, VIDEO, make_run

from poselab.analysis.analyze import analyze_video
from poselab.pose.predict import Predictor


def rss_mb() -> float:
    """Current resident set size of this process, MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def concatenate(video: Path, repeat: int, dest: Path) -> Path:
    """`video` repeated `repeat` times, stream-copied when ffmpeg is available."""
    out = dest / f"{video.stem}_x{repeat}.mp4"
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        listing = dest / "list.txt"
        listing.write_text(f"file '{video.resolve()}'\n" * repeat)
        subprocess.run([ffmpeg, "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                        "-c", "copy", str(out)], check=True)
        return out
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(repeat):
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        while (ok_frame := cap.read())[0]:
            writer.write(ok_frame[1])
    writer.release()
    return out


def measure(predictor: Predictor, video: Path, dest: Path) -> dict:
    """Analyze `video` while sampling RSS; returns the samples and the timing."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - start, rss_mb()))
            stop.wait(1.0)

    thread = threading.Thread(target=sample, daemon=True)
    before = rss_mb()
    thread.start()
    started = time.monotonic()
    h5 = analyze_video(predictor, video, dest=dest, overwrite=True, progress=True)
    seconds = time.monotonic() - started
    stop.set()
    thread.join()
    samples.append((seconds, rss_mb()))
    meta = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())
    return {"video": video.name, "frames": meta["rows"], "seconds": seconds,
            "frames_per_s": meta["rows"] / seconds, "rss_before_mb": before,
            "samples": samples}


def report(result: dict) -> dict:
    """Print RSS per tenth of the run; return the summary figures."""
    samples, seconds = result["samples"], result["seconds"]
    tenths = []
    for k in range(1, 11):
        upto = [rss for t, rss in samples if t <= seconds * k / 10]
        tenths.append(max(upto) if upto else float("nan"))
    peak = max(rss for _, rss in samples)
    growth = tenths[-1] - tenths[0]
    print(f"{result['video']}: {result['frames']} frames in {seconds / 60:.1f} min "
          f"({result['frames_per_s']:.1f} frames/s); RSS before {result['rss_before_mb']:.0f} MB")
    print("  peak RSS up to each tenth of the run (MB): "
          + " ".join(f"{v:.0f}" for v in tenths))
    print(f"  peak {peak:.0f} MB; growth from the first tenth to the end {growth:+.0f} MB")
    return {"video": result["video"], "frames": result["frames"],
            "frames_per_s": round(result["frames_per_s"], 2), "peak_rss_mb": round(peak),
            "rss_tenths_mb": [round(v) for v in tenths], "growth_mb": round(growth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--config", default="fastest_lite0",
                        help="substring of a bench_analyze.py configuration name")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--video", type=Path, default=VIDEO)
    args = parser.parse_args()
    (name,) = [n for n in CONFIGS if args.config in n] or [None]
    if name is None:
        raise SystemExit(f"--config {args.config}: choose a substring of {list(CONFIGS)}")

    with tempfile.TemporaryDirectory(prefix="poselab-mem-") as tmp:
        tmp = Path(tmp)
        long_video = concatenate(args.video, args.repeat, tmp)
        predictor = Predictor.from_dir(make_run(tmp, name, CONFIGS[name]),
                                       batch_size=args.batch_size)
        print(f"model: {name}, batch {args.batch_size}, device {predictor.device}")
        rows = [report(measure(predictor, video, tmp / "out"))
                for video in (args.video, long_video)]
    short, long = rows
    print(f"\npeak RSS {short['peak_rss_mb']} MB on {short['frames']} frames vs "
          f"{long['peak_rss_mb']} MB on {long['frames']} frames "
          f"({long['peak_rss_mb'] - short['peak_rss_mb']:+d} MB for {args.repeat}x the video)")
    print(json.dumps({"benchmark": "analyze_memory", "config": name, "runs": rows}))


if __name__ == "__main__":
    main()
