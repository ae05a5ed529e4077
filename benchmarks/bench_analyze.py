"""Video analysis speed on the openfield video: frames/s per model, and GFLOP/s vs matmul.

For each model configuration this builds a run dir with untrained weights (speed does not
depend on the weights), analyzes the first --frames frames of
../shared/data/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4 (640x480) with
`poselab.analysis.analyze.analyze_video` (background decoding, batched bf16/fp32 inference,
atomic writes: the whole user path), and prints frames/s, GFLOP per frame (torch's FLOP
counter, multiply-add = 2), achieved GFLOP/s as a fraction of a same-run matmul, and peak RSS.
Anchors measured here with DeepLabCut 3.0.2 on the same video: resnet_50 1.43 frames/s,
cspnext_s 9.5 frames/s. Targets: default model >= 5.7 frames/s; fastest preset >= 30.

    python benchmarks/bench_analyze.py [--frames 240] [--batch-size 8] [--only NAME]
        [--precision fp32|bf16|auto]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import cv2
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from poselab.analysis.analyze import analyze_video
from poselab.pose.augment import padded_size, scaled_size
from poselab.pose.engine import save_checkpoint
from poselab.pose.heatmaps import Codec
from poselab.pose.models.posenet import PoseNet
from poselab.pose.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4"
BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]
CONFIGS = {  # name -> PoseNet options + input_scale (bf16 autocast where the CPU supports it)
    "resnet50 (default: stride 32, head 256)": dict(backbone_name="resnet50"),
    "resnet50 (stride 32, head 128)": dict(backbone_name="resnet50", head_width=128),
    "resnet18 (stride 32, head 128)": dict(backbone_name="resnet18", head_width=128),
    "resnet50 (dlc_resnet50 preset: DeepLabCut's dilated stride 16, direct head)": dict(
        backbone_name="resnet50", backbone_stride=16, head_direct=True),
    "efficientnet_lite0 (fast_lite0 preset)": dict(backbone_name="efficientnet_lite0",
                                                   head_width=128),
    "efficientnet_lite0 (cpu preset: FPN head, no test flip)": dict(
        backbone_name="efficientnet_lite0", head="fpn", head_width=128),
    "efficientnet_lite0 (cpu preset: FPN head + test-time flip, the CPU default)": dict(
        backbone_name="efficientnet_lite0", head="fpn", head_width=128, test_flip=True),
    "efficientnet_lite0 (fastest_lite0 preset, input_scale 0.5)": dict(
        backbone_name="efficientnet_lite0", head_width=128, input_scale=0.5),
}


def make_run(root: Path, name: str, options: dict) -> Path:
    """A run dir as train() writes it, with untrained weights."""
    options = dict(options)
    input_scale = options.pop("input_scale", 1.0)
    test_flip = options.pop("test_flip", False)  # maps of the image and its mirror averaged
    model = PoseNet(num_keypoints=len(BODYPARTS), weights="none", **options)
    run = root / name.split(" ")[0] / str(abs(hash(name)))
    run.mkdir(parents=True)
    info = {"train": {"precision": "auto", "input_scale": input_scale, "test_flip": test_flip},
            "flip_pairs": [["leftear", "rightear"]], "model": model.config(),
            "codec": vars(Codec()),
            "bodyparts": BODYPARTS, "scorer": "bench", "mean": list(model.mean),
            "std": list(model.std), "pcutoff": 0.6, "skeleton": []}
    (run / "run.yaml").write_text(yaml.safe_dump(info))
    save_checkpoint(run / "last.pt", model=model.state_dict(), epoch=0)  # the final model
    return run


def clip(video: Path, frames: int, dest: Path) -> Path:
    """The first `frames` frames as an MJPG clip (decoding stays cheap and off the model)."""
    cap = cv2.VideoCapture(str(video))
    out = None
    for _ in range(frames):
        ok, frame = cap.read()
        if not ok:
            break
        if out is None:
            h, w = frame.shape[:2]
            out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
        out.write(frame)
    out.release()
    return dest


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def frame_gflop(predictor: Predictor) -> float:
    """Network GFLOP for one 640x480 frame, at the size the network sees it (input_scale)."""
    h, w = (padded_size(n) for n in scaled_size((480, 640), predictor.input_scale))
    x = torch.zeros(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        predictor.model(x)
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--only", help="run only configurations whose name contains this")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                        help="analyze's --precision (fp32 is its default; figures before "
                        "2026-11-29 were taken with bf16 autocast)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="poselab-bench-analyze-"))
    video = clip(args.video, args.frames, work / "clip.avi")
    peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"same-run matmul: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s; "
          f"{torch.get_num_threads()} threads; clip of {args.frames} frames 640x480")
    results = []
    for name, options in CONFIGS.items():
        if args.only and args.only not in name:
            continue
        run = make_run(work / "runs", name, options)
        predictor = Predictor.from_dir(run, device="cpu", batch_size=args.batch_size,
                                       precision=args.precision)
        predictor.predict_frames(torch.zeros(2, 480, 640, 3, dtype=torch.uint8).numpy())  # warm
        gflop = frame_gflop(predictor)
        start = time.perf_counter()
        out = analyze_video(predictor, video, dest=work / "out", overwrite=True, progress=False)
        seconds = time.perf_counter() - start
        fps = args.frames / seconds
        ref = peak["bf16" if predictor.dtype is torch.bfloat16 else "fp32"]
        row = {"config": name, "input_scale": predictor.input_scale, "frames_per_s": fps,
               "gflop_per_frame": gflop,
               "achieved_gflops": fps * gflop, "fraction_of_matmul": fps * gflop / ref,
               "dtype": str(predictor.dtype), "vs_deeplabcut_resnet50": fps / 1.43,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        results.append(row)
        print(f"{name:<58} {fps:6.2f} frames/s ({fps / 1.43:4.1f}x DLC resnet_50), "
              f"{gflop:5.1f} GFLOP/frame, {fps * gflop:5.1f} GFLOP/s = "
              f"{fps * gflop / ref:.0%} of same-run {('bf16' if predictor.dtype else 'fp32')} "
              f"matmul, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
        assert out.is_file()
    print(json.dumps({"benchmark": "analyze", "frames": args.frames, "matmul": peak,
                      "precision": args.precision,
                      "results": results}))


if __name__ == "__main__":
    main()
