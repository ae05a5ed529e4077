"""Training: run dir contents, exact resume, clean stops, evaluation, DDP on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from poselab.cli import app
from poselab.demo import make_synthetic_project
from poselab.io.project import create_project
from poselab.io.synthetic import SYNTHETIC_BODYPARTS
from poselab.pose.evaluation import evaluate
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    """A synthetic project (96x64 video) with 12 frames labeled from the ground truth."""
    root = tmp_path_factory.mktemp("tiny")
    return make_synthetic_project(root, "tiny", n_frames=48, seed=2, label_every=4)[0]


def _cfg(**kw) -> TrainConfig:
    base = dict(backbone="resnet18", weights="none", epochs=2, batch_size=4, workers=0,
                head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                augment={"crop_size": [64, 64], "affine_prob": 0.5, "rotation": 10,
                         "scale": [0.9, 1.1]})
    base.update(kw)
    return TrainConfig(**base)


def test_run_dir_is_self_describing(tiny_project: Path):
    run = train(tiny_project, _cfg(), name="basic")
    for name in ("run.yaml", "split.json", "last.pt", "best.pt", "metrics.csv",
                 "learning-curve.png"):
        assert (run / name).is_file(), name
    state = torch.load(run / "last.pt", weights_only=True)  # plain data only
    assert state["epoch"] == 1 and "model" in state and "optimizer" in state
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1]
    for column in ("loss", "train_px_error", "test_px_error", "lr", "seconds"):
        assert metrics[column].notna().all(), column
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) == 9 and len(split["test"]) == 3
    result = evaluate(run, plot=True)
    # in-training and post-hoc evaluation are one code path: the same figure
    assert result["test"]["mean_px_error"] == pytest.approx(metrics["test_px_error"].iloc[-1],
                                                            rel=1e-4)
    assert set(result["test"]["per_bodypart"]) == set(SYNTHETIC_BODYPARTS)
    assert len(list((run / "evaluation" / "test").glob("*.png"))) == 3
    out = CliRunner().invoke(app, ["evaluate", str(run), "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["test_mean_px_error"] == pytest.approx(result["test"]["mean_px_error"])
    assert "train_mean_px_error" in payload


def test_interrupt_then_resume_continues_exactly(tiny_project: Path, monkeypatch):
    """Ctrl-C leaves a usable last.pt; resuming gives the very weights of an unbroken run."""
    import poselab.pose.training as train_module

    straight = train(tiny_project, _cfg(epochs=3), name="straight")
    real = train_module.train_one_epoch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_project, _cfg(epochs=3), name="ctrl-c")
    run = tiny_project.parent / "models" / "ctrl-c"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(train_module, "train_one_epoch", real)
    assert train(tiny_project, None, resume="ctrl-c") == run
    a = torch.load(straight / "last.pt", weights_only=True)["model"]
    b = torch.load(run / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [0, 1, 2]


def test_max_minutes_stops_cleanly(tiny_project: Path):
    run = train(tiny_project, _cfg(epochs=50, max_minutes=1e-4), name="budget")
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 1 and metrics["test_px_error"].notna().all()
    assert (run / "best.pt").is_file()


def test_bad_input(tiny_project: Path, tmp_path: Path):
    from poselab.errors import PoselabError

    with pytest.raises(PoselabError, match="not a poselab run"):
        evaluate(tmp_path)
    bad = CliRunner().invoke(app, ["train", str(tiny_project), "--set", "epoch=3"])
    assert bad.exit_code == 2 and "did you mean 'epochs'" in bad.output
    empty = create_project("empty", "gt", [next((tiny_project.parent / "videos").iterdir())],
                           working_dir=tmp_path)
    with pytest.raises(PoselabError, match="0 labeled frames"):
        train(empty, _cfg())


def test_ddp_two_processes_gloo(tiny_project: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "poselab", "train", str(tiny_project),
           "--backbone", "resnet18", "--weights", "none", "--epochs", "1", "--batch-size", "2",
           "--name", "ddp", "--set", "workers=0", "--set", "head_width=32",
           "--set", "precision=fp32", "--set", "augment.crop_size=[64, 64]"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    run = tiny_project.parent / "models" / "ddp"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0
    assert len(pd.read_csv(run / "metrics.csv")) == 1  # rank 0 writes once


@pytest.mark.slow
def test_smoke_training_learns_synthetic_keypoints(tmp_path: Path):
    """ImageNet EfficientNet-Lite0 learns the synthetic animal to < 3 px in about a minute."""
    config, _, _ = make_synthetic_project(tmp_path, "smoke", "mouse.mp4", n_frames=200,
                                          size=(128, 96), seed=1, label_every=2)
    cfg = TrainConfig(backbone="efficientnet_lite0", weights="imagenet", epochs=24,
                      batch_size=8, lr=2e-3, lr_drops=[0.75], lr_drop_factors=[0.2],
                      train_fraction=0.8, workers=0, sigma=6.0, eval_every=8, head_width=64,
                      warmup_epochs=1, augment={"crop_size": None, "rotation": 15,
                                                "scale": [0.9, 1.1], "motion_blur_prob": 0.0,
                                                "noise_prob": 0.2})
    run = train(config, cfg, name="smoke")
    result = evaluate(run)
    assert result["test"]["mean_px_error"] < 3.0, result["test"]
    assert result["test"]["n_keypoints"] == 80  # 20 test frames x 4 keypoints
