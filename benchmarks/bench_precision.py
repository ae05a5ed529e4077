"""How far bf16 inference moves a trained model's output: test error and every keypoint.

For a trained run (a well-trained openfield model: `--preset fast_lite0`, train_fraction 0.5,
seed 0) this evaluates the test split in fp32 and in bf16 (`poselab.evaluate(...,
precision=...)`), and predicts the first --frames frames of a video with both precisions
(`Predictor(precision=...)`, the path `poselab analyze` takes), then prints:
- test mean pixel error, RMSE and PCK@5px in each precision;
- per keypoint of the video frames, the distance between the fp32 and bf16 positions: the
  share moved more than 0.5 px and 1 px, the median, 99th percentile and largest move, over
  all keypoints and over those confident in fp32 (likelihood >= the run's pcutoff);
- frames/s of both (this machine; a loaded machine makes these noisy);
and one JSON line with the same figures.

    python benchmarks/bench_precision.py RUN [--video VIDEO] [--frames 300]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from poselab.io.video import VideoReader
from poselab.pose.evaluation import evaluate
from poselab.pose.predict import Predictor, autocast_dtype

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4"


def _frames(video: Path, n: int) -> np.ndarray:
    with VideoReader(video) as reader:
        frames = [f for _, f in zip(range(n), (f for _, f in reader.frames()), strict=False)]
    return np.stack(frames)


def _predict(run: Path, frames: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray,
                                                                    float]:
    predictor = Predictor.from_dir(run, device="cpu", batch_size=8, precision=precision)
    predictor.predict_frames(frames[:8])  # warm-up (one-time allocations)
    start = time.perf_counter()
    xy, lik = predictor.predict_frames(frames)
    return xy, lik, len(frames) / (time.perf_counter() - start)


def _moves(d: np.ndarray) -> dict:
    d = d[np.isfinite(d)]
    return {"n": int(d.size), "share_over_0_5px": float((d > 0.5).mean()),
            "share_over_1px": float((d > 1.0).mean()), "median_px": float(np.median(d)),
            "p99_px": float(np.percentile(d, 99)), "max_px": float(d.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    import torch

    if autocast_dtype("auto", torch.device("cpu")) is None:
        print("note: this CPU has no fast bf16 (AVX512-BF16/AMX); bf16 is emulated (slow)")
    evals = {p: evaluate(args.run, device="cpu", precision=p) for p in ("fp32", "bf16")}
    frames = _frames(args.video, args.frames)
    out = {p: _predict(args.run, frames, p) for p in ("fp32", "bf16")}
    xy32, lik32, fps32 = out["fp32"]
    xy16, _, fps16 = out["bf16"]
    dist = np.linalg.norm(xy16 - xy32, axis=-1)  # (N, K)
    import yaml

    info = yaml.safe_load((args.run / "run.yaml").read_text())
    pcutoff = float(info.get("pcutoff", 0.6))
    result = {"run": str(args.run), "video": str(args.video), "frames": len(frames),
              "pcutoff": pcutoff,
              "test": {p: {k: evals[p]["test"][k] for k in ("mean_px_error", "rmse", "pck5")}
                       for p in evals},
              "moves_all": _moves(dist), "moves_confident": _moves(dist[lik32 >= pcutoff]),
              "frames_per_second": {"fp32": round(fps32, 2), "bf16": round(fps16, 2)}}
    print(f"run {args.run} (epoch {evals['fp32']['epoch'] + 1}), {len(frames)} frames of "
          f"{args.video.name}")
    print("precision  test mean px  RMSE   PCK@5px  frames/s")
    for p, fps in (("fp32", fps32), ("bf16", fps16)):
        t = result["test"][p]
        print(f"{p:9s}  {t['mean_px_error']:11.3f}  {t['rmse']:5.2f}  {100 * t['pck5']:6.1f}%  "
              f"{fps:8.2f}")
    for name in ("moves_all", "moves_confident"):
        m = result[name]
        print(f"bf16 vs fp32, {name[6:]} keypoints ({m['n']}): > 0.5 px "
              f"{100 * m['share_over_0_5px']:.1f}%, > 1 px {100 * m['share_over_1px']:.1f}%, "
              f"median {m['median_px']:.3f} px, "
              f"p99 {m['p99_px']:.2f} px, max {m['max_px']:.1f} px")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
