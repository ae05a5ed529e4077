"""Cross-fitted calibration: folds of the training frames, fold models, a resumable job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.demo import make_synthetic_project
from poselab.errors import PoselabError
from poselab.pose.calibration import load_calibration
from poselab.pose.crossfit import crossfit_calibration, fold_indices
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train


def test_folds_cover_the_training_frames_once():
    train_idx = [0, 2, 3, 5, 7, 8, 11]
    folds = fold_indices(train_idx, 3, seed=4)
    assert sorted(i for f in folds for i in f) == train_idx
    assert all(f == sorted(f) and f for f in folds) and len(folds) == 3
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert folds == fold_indices(train_idx, 3, seed=4)  # seeded
    assert folds != fold_indices(train_idx, 3, seed=5)
    with pytest.raises(PoselabError, match="at least 2 folds"):
        fold_indices(train_idx, 1, seed=0)
    with pytest.raises(PoselabError, match="cannot make 8 folds"):
        fold_indices(train_idx, 8, seed=0)


def test_a_run_without_validation_is_calibrated_on_its_training_frames(tmp_path: Path):
    project = make_synthetic_project(tmp_path, "cf", n_frames=48, seed=2, label_every=4)[0]
    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=2, batch_size=4, workers=0,
                      head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                      calibration_radius=25.0, calibrate="platt",
                      augment={"crop_size": [64, 64]})
    run = train(project, cfg, name="noval")
    assert load_calibration(run) is None
    result = CliRunner().invoke(app, ["calibrate", str(run), "--folds", "2", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "likelihood calibrated (platt, cross-fitted: 2 fold models" in result.output
    cal = load_calibration(run)
    assert cal.method == "platt" and cal.radius == 25.0 and "9 training frames" in cal.source
    # every training frame is held out exactly once; the test split is never touched
    split = json.loads((run / "split.json").read_text())
    held = []
    for k in range(2):
        fold = json.loads((run / "crossfit" / f"fold-{k}" / "split.json").read_text())
        assert set(fold["train"]) | set(fold["test"]) == set(split["train"])
        assert not set(fold["test"]) & set(fold["train"]) and fold["val"] == []
        held += fold["test"]
    assert sorted(held) == sorted(split["train"])
    # the job resumes: a finished fold is neither trained nor predicted again
    first = run / "crossfit" / "fold-0"
    stamp = (first / "last.pt").stat().st_mtime_ns, (first / "heldout.npz").stat().st_mtime_ns
    (run / "crossfit" / "fold-1" / "heldout.npz").unlink()
    (run / "calibration.json").unlink()
    fitted, raw_ece = crossfit_calibration(run, 2, epochs=1)
    assert ((first / "last.pt").stat().st_mtime_ns,
            (first / "heldout.npz").stat().st_mtime_ns) == stamp
    assert fitted.params == cal.params and 0.0 <= raw_ece <= 1.0
    assert load_calibration(run).params == cal.params


def test_calibrate_refuses_what_it_cannot_do(tmp_path: Path):
    with pytest.raises(PoselabError, match="not a poselab run|run.yaml"):
        crossfit_calibration(tmp_path, 2)
