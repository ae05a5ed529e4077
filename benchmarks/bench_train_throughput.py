"""Training throughput (images/s) of resnet50 at batch 8 on 448x448 crops of openfield frames.

DeepLabCut 3.0.2 trains its resnet_50 (stride 16, fp32) at about 0.8 images/s on this 2-core
machine (performance.md). This measures poselab's default resnet50 recipe (stride 32 + two
deconvolutions, bf16 autocast where the CPU has AVX512-BF16) and, in the same run, the
DeepLabCut-like configuration (stride 16, fp32) for reference, through the real training
step: PoseDataset augmentation in DataLoader workers, forward, loss, backward, AdamW.

The figure is wall-clock images per second over whole epochs, data loading included (the
loader's workers, their start at each epoch, the augmentation, the copy), after one warm-up
epoch that is not counted (allocations, oneDNN kernel selection). It is what a user's
training sees, not a median of isolated steps.

    python benchmarks/bench_train_throughput.py [--epochs 2] [--workers 2]
        [--data ../shared/data/...]
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


def measure(frames, label: str, backbone_stride: int, precision: str, epochs: int,
            workers: int, head_width: int = 256, head_direct: bool = False) -> dict:
    torch.manual_seed(0)
    model = PoseNet("resnet50", 4, weights="none", backbone_stride=backbone_stride,
                    head_width=head_width, head_direct=head_direct
                    ).to(memory_format=torch.channels_last)
    codec = Codec()
    dataset = PoseDataset(frames, list(range(len(frames))), codec, model.mean, model.std,
                          augment=AugmentConfig(crop_size=(448, 448)), train=True)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, num_workers=workers,
                        drop_last=True, worker_init_fn=worker_init_fn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    dtype = autocast_dtype(precision, torch.device("cpu"))

    def one_epoch(epoch: int) -> tuple[int, float]:
        dataset.set_epoch(epoch)
        start, images = time.perf_counter(), 0
        for batch in loader:  # the loader's time is inside the measurement
            batch = move_to(batch, torch.device("cpu"))
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                image = batch["image"].contiguous(memory_format=torch.channels_last)
                heatmaps, offsets = model(image)
                loss, _ = pose_loss(heatmaps, offsets, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(batch["image"])
        return images, time.perf_counter() - start

    one_epoch(0)  # warm-up, not counted
    images, seconds = 0, 0.0
    for epoch in range(1, epochs + 1):
        n, s = one_epoch(epoch)
        images, seconds = images + n, seconds + s
    rate = images / seconds
    result = {"config": label, "images_per_s": rate, "images": images, "seconds": seconds,
              "epochs": epochs, "vs_deeplabcut": rate / DLC_IMAGES_PER_S}
    print(f"{label:<48} {rate:6.2f} images/s  ({images} images in {seconds:.0f} s over "
          f"{epochs} epochs, {rate / DLC_IMAGES_PER_S:.1f}x DeepLabCut's 0.8)", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OPENFIELD)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (the "
                        "training default)")
    args = parser.parse_args()
    frames = load_labeled_frames(open_project(args.data / "config.yaml"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: "
          f"{autocast_dtype('auto', torch.device('cpu'))}")
    results = [
        measure(frames, "poselab resnet50 (stride 32, bf16 auto)", 32, "auto", args.epochs,
                args.workers),
        measure(frames, "poselab resnet50 (stride 32, bf16, head 128)", 32, "auto",
                args.epochs, args.workers, head_width=128),
        measure(frames, "DeepLabCut-like resnet50 (stride 16, fp32)", 16, "fp32", args.epochs,
                args.workers, head_direct=True),
    ]
    print(json.dumps({"benchmark": "train_throughput", "measure": "wall-clock images/s over "
                      "whole epochs after a warm-up epoch, data loading included",
                      "results": results}))


if __name__ == "__main__":
    main()
