"""Fixtures for the live tests: an untrained (random, fixed-seed) EfficientNet-Lite0 run, the
live default backbone, saved as training saves runs, and a small synthetic video."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]


def make_run(root: Path, name: str = "lite", backbone: str = "efficientnet_lite0") -> Path:
    """run.yaml + last.pt for a small random model (fp32, so `analyze` runs in fp32 too)."""
    from poselab.pose.engine import save_checkpoint
    from poselab.pose.heatmaps import Codec
    from poselab.pose.models.posenet import PoseNet
    from poselab.pose.train_config import TrainConfig

    cfg = TrainConfig(backbone=backbone, weights="none", head_width=16, precision="fp32")
    torch.manual_seed(0)
    model = PoseNet(cfg.backbone, len(BODYPARTS), weights="none", head_width=16).eval()
    codec = Codec(stride=cfg.output_stride, sigma=cfg.sigma, locref_std=cfg.locref_std)
    run = root / name
    run.mkdir(parents=True)
    info = {"train": cfg.to_dict(), "model": model.config(), "codec": vars(codec),
            "bodyparts": BODYPARTS, "scorer": "tester", "mean": list(model.mean),
            "std": list(model.std), "pcutoff": 0.1, "skeleton": []}
    (run / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    save_checkpoint(run / "last.pt", model=model.state_dict(), epoch=0)
    return run


@pytest.fixture(scope="session")
def live_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("live-run"))


@pytest.fixture(scope="session")
def live_video(tmp_path_factory) -> Path:
    """24 frames of a synthetic mouse, 96x64, MJPG (every frame decodable on its own)."""
    from poselab.io.synthetic import make_synthetic_video

    path = tmp_path_factory.mktemp("live-video") / "mouse.avi"
    make_synthetic_video(path, n_frames=24, size=(96, 64), seed=1)
    return path


@pytest.fixture(autouse=True)
def _restore_threads():
    """LivePredictor sets the process's torch and OpenCV thread counts: undo it after each
    test so the rest of the suite runs as configured."""
    import cv2

    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
