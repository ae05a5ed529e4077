"""Training throughput (images/s) of resnet50 at batch 8 on 448x448 crops of openfield frames.

DeepLabCut 3.0.2 trains its resnet_50 (stride 16, fp32) at about 0.8 images/s on this 2-core
machine (performance.md). This measures poselab's default resnet50 recipe (stride 32 + two
deconvolutions, bf16 autocast where the CPU has AVX512-BF16) and, in the same run, the
DeepLabCut-like configuration (stride 16, fp32) for reference, through the real training
step: PoseDataset augmentation in DataLoader workers, forward, loss, backward, AdamW.

    python benchmarks/bench_train_throughput.py [--steps 6] [--data ../shared/data/...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from poselab.io.labels import load_labeled_frames
from poselab.io.project import open_project
from poselab.pose.augment import AugmentConfig
from poselab.pose.data import PoseDataset, worker_init_fn
from poselab.pose.engine import move_to
from poselab.pose.heatmaps import Codec, pose_loss
from poselab.pose.models.posenet import PoseNet
from poselab.pose.predict import autocast_dtype

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"
DLC_IMAGES_PER_S = 0.8


def measure(frames, label: str, backbone_stride: int, precision: str, steps: int,
            head_width: int = 256, head_direct: bool = False) -> dict:
    torch.manual_seed(0)
    model = PoseNet("resnet50", 4, weights="none", backbone_stride=backbone_stride,
                    head_width=head_width, head_direct=head_direct
                    ).to(memory_format=torch.channels_last)
    codec = Codec()
    dataset = PoseDataset(frames, list(range(len(frames))), codec, model.mean, model.std,
                          augment=AugmentConfig(crop_size=(448, 448)), train=True)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=1, drop_last=True,
                        worker_init_fn=worker_init_fn, persistent_workers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    dtype = autocast_dtype(precision, torch.device("cpu"))
    times = []
    batches = iter(loader)
    for step in range(steps + 1):  # the first step warms up (allocations, oneDNN kernels)
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        batch = move_to(batch, torch.device("cpu"))
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            heatmaps, offsets = model(batch["image"].contiguous(memory_format=torch.channels_last))
            loss, _ = pose_loss(heatmaps, offsets, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - start)
    times.sort()
    median = times[len(times) // 2]
    result = {"config": label, "images_per_s": 8 / median, "median_step_s": median,
              "vs_deeplabcut": 8 / median / DLC_IMAGES_PER_S}
    print(f"{label:<48} {8 / median:6.2f} images/s  ({median:.2f} s/step, "
          f"{result['vs_deeplabcut']:.1f}x DeepLabCut's 0.8)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OPENFIELD)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    frames = load_labeled_frames(open_project(args.data / "config.yaml"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: "
          f"{autocast_dtype('auto', torch.device('cpu'))}")
    results = [
        measure(frames, "poselab resnet50 (stride 32, bf16 auto)", 32, "auto", args.steps),
        measure(frames, "poselab resnet50 (stride 32, bf16, head 128)", 32, "auto",
                args.steps, head_width=128),
        measure(frames, "DeepLabCut-like resnet50 (stride 16, fp32)", 16, "fp32", args.steps,
                head_direct=True),
    ]
    print(json.dumps({"benchmark": "train_throughput", "results": results}))


if __name__ == "__main__":
    main()
