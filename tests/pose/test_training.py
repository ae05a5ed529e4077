"""Training: run dir contents, exact resume, clean stops, evaluation, DDP on CPU (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
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
    for name in ("run.yaml", "split.json", "last.pt", "metrics.csv", "learning-curve.png"):
        assert (run / name).is_file(), name
    # no validation split: nothing is chosen, so there is no best.pt; the final one is the model
    assert not (run / "best.pt").exists()
    state = torch.load(run / "last.pt", weights_only=True)  # plain data only
    assert state["epoch"] == 1 and "model" in state and "optimizer" in state
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1]
    for column in ("loss", "train_px_error", "test_px_error", "lr", "seconds"):
        assert metrics[column].notna().all(), column
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) == 9 and len(split["test"]) == 3 and split["val"] == []
    result = evaluate(run, plot=True)
    assert result["checkpoint"] == "last.pt" and "final checkpoint" in result["selection"]
    assert "val" not in result
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
    text = CliRunner().invoke(app, ["evaluate", str(run)]).output
    assert "last.pt of epoch 2, final checkpoint" in text


def test_best_checkpoint_is_chosen_on_validation_never_on_test(tiny_project: Path):
    run = train(tiny_project, _cfg(epochs=3, val_fraction=0.2), name="with-val")
    split = json.loads((run / "split.json").read_text())
    assert len(split["val"]) == 2 and len(split["train"]) == 7 and len(split["test"]) == 3
    # the test frames are those of a run without a validation split (same seed, fraction)
    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project
    from poselab.pose.data import image_key, split_indices

    frames = load_labeled_frames(open_project(tiny_project))
    _, test = split_indices(len(frames), 0.75, 0)
    assert split["test"] == [image_key(frames.paths[i]) for i in test]
    metrics = pd.read_csv(run / "metrics.csv")
    best_epoch = int(metrics.loc[metrics["val_px_error"].idxmin(), "epoch"])
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == best_epoch
    result = evaluate(run)
    assert result["checkpoint"] == "best.pt" and result["epoch"] == best_epoch
    assert result["selection"] == "best on the validation split"
    assert result["val"]["n_frames"] == 2 and result["test"]["n_frames"] == 3
    assert result["val"]["mean_px_error"] == pytest.approx(metrics["val_px_error"].min(),
                                                           rel=1e-4)


def test_likelihoods_are_calibrated_on_validation_and_used_everywhere(tiny_project: Path,
                                                                      capsys):
    from poselab.pose.calibration import load_calibration
    from poselab.pose.predict import Predictor

    run = train(tiny_project, _cfg(epochs=2, val_fraction=0.34, calibration_radius=25.0,
                                   calibrate="platt"), name="calibrated")
    cal = load_calibration(run)
    assert cal is not None and cal.method == "platt" and "validation split" in cal.source
    assert "likelihood calibrated (platt" in capsys.readouterr().out
    result = evaluate(run)
    assert result["test"]["calibration_map"].startswith("platt, fitted on validation split")
    assert "calibration_raw" in result["test"] and "auroc" in result["test"]["calibration"]
    predictor = Predictor.from_dir(run, device="cpu")
    frames = np.zeros((1, 64, 96, 3), np.uint8)
    xy, lik = predictor.predict_frames(frames)
    predictor.calibration = None
    _, raw = predictor.predict_frames(frames)
    np.testing.assert_allclose(lik, cal.apply(raw), rtol=1e-5)
    # a run without a validation split says its likelihoods are raw
    train(tiny_project, _cfg(epochs=1), name="uncalibrated")
    assert "likelihoods are not calibrated: no validation split" in capsys.readouterr().out


def test_an_old_run_is_labelled_test_selected(tiny_project: Path, tmp_path: Path):
    """A run from before validation splits: best.pt was chosen on test and says so."""
    import shutil

    old = tiny_project.parent / "models" / "old-style"
    shutil.copytree(tiny_project.parent / "models" / "basic", old)
    shutil.copy(old / "last.pt", old / "best.pt")
    doc = json.loads((old / "split.json").read_text())
    del doc["val"], doc["val_fraction"]
    (old / "split.json").write_text(json.dumps(doc))
    auto = evaluate(old)
    assert auto["checkpoint"] == "last.pt" and "final checkpoint" in auto["selection"]
    best = evaluate(old, which="best")
    assert best["checkpoint"] == "best.pt" and "TEST split" in best["selection"]
    out = CliRunner().invoke(app, ["evaluate", str(old), "--which", "bset"])
    assert out.exit_code == 2 and "--which 'bset': choose one of auto, best, last" in out.output
    out = CliRunner().invoke(app, ["evaluate", str(tiny_project.parent / "models" / "basic"),
                                   "--which", "best"])
    assert out.exit_code == 2 and "no best.pt; use --which last" in out.output


def test_a_copied_project_is_graded_against_its_own_labels(tiny_project: Path, tmp_path):
    """The run's own project (the folder above models/) wins over the recorded path."""
    import shutil

    import numpy as np

    from poselab.io.labels import read_labels, write_labels

    copy = tmp_path / "copy"
    shutil.copytree(tiny_project.parent, copy, symlinks=True)
    run = copy / "models" / "basic"
    before = evaluate(run)["test"]["mean_px_error"]
    # move every label of the copy by 30 px: only an evaluation that reads the copy sees it
    for h5 in (copy / "labeled-data").glob("*/CollectedData_*.h5"):
        df = read_labels(h5)
        write_labels(df + 30.0, h5)
    after = evaluate(run)
    assert after["test"]["mean_px_error"] > before + 10
    assert any("evaluated against the labels of" in n for n in after["notes"])
    assert np.isfinite(after["test"]["mean_px_error"])


def test_interrupt_then_resume_continues_exactly(tiny_project: Path, monkeypatch, capsys):
    """Ctrl-C leaves a usable last.pt; resuming gives the very weights of an unbroken run."""
    import poselab.pose.trainer as train_module

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
    # epoch 2 was running (1-based), epoch 1 is saved: the message says exactly that
    printed = capsys.readouterr().out
    assert "interrupted during epoch 2; " in printed
    assert "holds epoch 1: continue with --resume ctrl-c" in printed
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
    assert (run / "last.pt").is_file()


def _runs(project: Path) -> set[str]:
    models = project.parent / "models"
    return {p.name for p in models.iterdir()} if models.is_dir() else set()


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


@pytest.mark.parametrize("args, message", [
    (["--set", "lr=abc"], "training option 'lr' must be a number, got 'abc'"),
    (["--set", "epochs=2.5"], "training option 'epochs' must be an integer, got 2.5"),
    (["--set", "augment.rotation=lots"], "augmentation key 'rotation' must be a number"),
    (["--set", "augment.rotaton=5"], "did you mean 'rotation'"),
    (["--weights", "/no/such/weights.pth"], "weights file not found"),
    (["--backbone", "resnet5"], "unknown backbone 'resnet5'"),
    (["--device", "cuda"], "CUDA is not available"),
    (["--set", "test_flip=maybe"], "training option 'test_flip' must be true or false"),
    (["--val-fraction", "0.9"], "validation fraction 0.9 takes"),
    (["--name", "a/b"], "use a plain folder name"),
])
def test_bad_options_stop_before_any_folder_is_made(tiny_project: Path, args, message):
    """Every option is checked first: a one-line error, exit 2, and models/ untouched, so the
    same --name works once the mistake is fixed."""
    before = _runs(tiny_project)
    out = CliRunner().invoke(app, ["train", str(tiny_project), "--weights", "none",
                                   "--backbone", "resnet18", "--name", "retry", *args])
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output
    assert _runs(tiny_project) == before


def test_a_training_that_fails_before_its_first_epoch_leaves_no_folder(tiny_project: Path,
                                                                      monkeypatch):
    import poselab.pose.trainer as trainer_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(trainer_module, "train_one_epoch", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(tiny_project, _cfg(), name="fails-early")
    assert "fails-early" not in _runs(tiny_project)
    monkeypatch.undo()
    assert train(tiny_project, _cfg(epochs=1), name="fails-early").is_dir()  # name is free


def test_a_bad_training_fraction_in_config_yaml_is_one_line(tiny_project: Path, tmp_path):
    import shutil

    copy = tmp_path / "frac"
    shutil.copytree(tiny_project.parent, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("models"))
    config = copy / "config.yaml"
    config.write_text(config.read_text().replace("- 0.95", '- "most"'))
    out = CliRunner().invoke(app, ["train", str(config), "--backbone", "resnet18",
                                   "--weights", "none", "--name", "x"])
    assert out.exit_code == 2 and "TrainingFraction" in out.output
    assert not (copy / "models" / "x").exists()


_RANK0_FAILS = """
import os, sys
import poselab.pose.trainer as trainer
if os.environ.get("RANK") == "0" and os.environ.get("FAIL_AT"):
    real = trainer.train_one_epoch
    def failing(*args, **kwargs):
        if "epoch 2/" in kwargs.get("desc", ""):
            raise RuntimeError("rank 0 fails on purpose")
        return real(*args, **kwargs)
    trainer.train_one_epoch = failing
from poselab.cli import main
sys.argv[0] = "poselab"
main()
"""


def _torchrun(tmp_path: Path, port: int, args: list[str], env: dict | None = None,
              timeout: float = 150) -> subprocess.CompletedProcess:
    """`poselab train ...` under torchrun with 2 CPU processes (gloo)."""
    script = tmp_path / "launch.py"
    script.write_text(_RANK0_FAILS)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), str(script), "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


_DDP_ARGS = ["--backbone", "resnet18", "--weights", "none", "--batch-size", "8",
             "--set", "workers=0", "--set", "head_width=32", "--set", "precision=fp32",
             "--set", "augment.crop_size=[64, 64]", "--set", "warmup_epochs=0"]


def test_ddp_small_shards_train_and_resume(tiny_project: Path, tmp_path: Path):
    """9 training frames on 2 processes are shards of 5 < batch 8: every epoch must still
    train (it logged loss 0.0 when drop_last was decided on the global count); then a
    resume under torchrun continues the run, and rank 0 alone writes metrics.csv."""
    first = _torchrun(tmp_path, 29517, [str(tiny_project), *_DDP_ARGS, "--epochs", "1",
                                        "--name", "ddp"])
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    run = tiny_project.parent / "models" / "ddp"
    metrics = pd.read_csv(run / "metrics.csv")
    assert len(metrics) == 1 and metrics["loss"].iloc[0] > 0.01  # trained on real batches
    second = _torchrun(tmp_path, 29518, [str(tiny_project), "--resume", "ddp", "--epochs", "2"])
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [0, 1]


def test_ddp_an_error_on_rank_0_ends_every_rank(tiny_project: Path, tmp_path: Path):
    """Rank 0 raises in epoch 2: both processes end (no hang) with the error reported."""
    result = _torchrun(tmp_path, 29519, [str(tiny_project), *_DDP_ARGS, "--epochs", "3",
                                         "--name", "ddp-fails"], env={"FAIL_AT": "1"},
                       timeout=120)
    assert result.returncode != 0
    assert "rank 0 fails on purpose" in result.stdout + result.stderr
    # the first epoch was saved: the run can be resumed
    assert torch.load(tiny_project.parent / "models" / "ddp-fails" / "last.pt",
                      weights_only=True)["epoch"] == 0


def test_ddp_a_refusal_on_rank_0_reaches_every_rank(tiny_project: Path, tmp_path: Path):
    """Rank 0 refuses an existing run name before training: every rank exits with it."""
    (tiny_project.parent / "models" / "taken").mkdir(parents=True, exist_ok=True)
    result = _torchrun(tmp_path, 29520, [str(tiny_project), *_DDP_ARGS, "--epochs", "1",
                                         "--name", "taken"], timeout=120)
    assert result.returncode != 0
    assert (result.stdout + result.stderr).count("run already exists") >= 2  # both ranks


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


def test_flips_need_every_left_right_bodypart_paired(tmp_path):
    from types import SimpleNamespace

    from poselab.errors import PoselabError
    from poselab.pose.augment import AugmentConfig
    from poselab.pose.training import _flip_pairs

    def project(bodyparts, pairs=None):
        return SimpleNamespace(bodyparts=bodyparts, config_path=tmp_path / "config.yaml",
                               get=lambda key, default=None: pairs)

    flips = AugmentConfig(hflip_prob=0.5)
    assert _flip_pairs(project(["snout", "leftear", "rightear"]), flips, _cfg()) == [
        ("leftear", "rightear")]
    assert _flip_pairs(project(["a", "b"], [["a", "b"]]), flips, _cfg()) == [("a", "b")]
    with pytest.raises(PoselabError, match=r"\['leftpaw'\] has no counterpart"):
        _flip_pairs(project(["snout", "leftpaw", "rightear", "leftear"]), flips, _cfg())
    assert _flip_pairs(project(["leftpaw"]), AugmentConfig(), _cfg()) == []  # no flips
    # a recipe that flips only when it can: limb codes without pairs turn flips off
    cfg = _cfg(flip_if_paired=True, test_flip=True, augment={"hflip_prob": 0.5})
    assert _flip_pairs(project(["snout", "LF", "RF"]), AugmentConfig(hflip_prob=0.5), cfg) == []
    assert cfg.augment["hflip_prob"] == 0.0 and cfg.test_flip is False


def test_an_ensemble_trains_members_on_one_split_and_is_used_as_one(tiny_project: Path,
                                                                    tmp_path: Path):
    from poselab.analysis.analyze import analyze_videos
    from poselab.io.predictions import read_predictions, read_variance
    from poselab.pose.ensemble import ensemble_members

    run = train(tiny_project, _cfg(epochs=1), name="trio", ensemble=3)
    members = ensemble_members(run)
    assert [m.name for m in members] == ["member-0", "member-1", "member-2"]
    splits = [json.loads((m / "split.json").read_text()) for m in members]
    assert splits[0] == splits[1] == splits[2]  # one split ...
    seeds = [__import__("yaml").safe_load((m / "run.yaml").read_text())["train"]["seed"]
             for m in members]
    assert seeds == [0, 1, 2]  # ... different seeds
    result = evaluate(run)
    assert result["ensemble"] == 3 and "ensemble of 3 members" in result["selection"]
    video = next((tiny_project.parent / "videos").iterdir())
    (h5,) = analyze_videos(run, [video], dest=tmp_path, device="cpu")
    df, var = read_predictions(h5), read_variance(h5)
    assert len(df) == len(var) and (var.to_numpy()[np.isfinite(var.to_numpy())] >= 0).all()
    assert var.to_numpy()[np.isfinite(var.to_numpy())].max() > 0  # members disagree somewhat
    with pytest.raises(Exception, match="must be >= 1"):
        train(tiny_project, _cfg(), name="none", ensemble=0)


def test_a_run_that_does_not_learn_says_so(tiny_project: Path, capsys):
    """A learning rate too small to move off the background plateau: training says so
    while it runs, and evaluate says the model predicts almost nothing above pcutoff."""
    run = train(tiny_project, _cfg(epochs=4, lr=1e-9), name="stuck")
    printed = capsys.readouterr().out
    assert "still predicting background everywhere" in printed
    out = CliRunner().invoke(app, ["evaluate", str(run)])
    assert "has not learned to find them" in out.output


def test_the_plateau_check_waits_for_the_steps_a_recipe_needs():
    from poselab.pose.trainer import health_check_epochs

    assert health_check_epochs(4, 0, 3) == (2, 3)  # tiny runs: as early as possible
    assert health_check_epochs(370, 2000, 8) == (56, 185)  # openfield, 30 min: 15% of epochs
    # two views, 10 min: 61 epochs of 7 steps (warned at epoch 9, learned by epoch 30): 15%
    # of 2000 steps is epoch 43, past half way, so the half-way check covers it
    assert health_check_epochs(61, 2000, 7) == (None, 30)
    assert health_check_epochs(200, 2000, 7) == (43, 100)


@pytest.mark.slow
def test_the_default_cpu_recipe_leaves_the_plateau_on_a_two_view_17_keypoint_dataset(tmp_path):
    """Two views of one mouse (a side mirror), 17 keypoints, 24 training frames: the recipe
    `poselab train` uses on a CPU turns its mirror flips off (the views would swap sides)
    and gets off the predict-background plateau (~135 px, where flips kept it) within ~120
    optimizer steps. Half-size images keep it short."""
    from poselab.io.synthetic_suite import make_suite_project
    from poselab.pose.train_config import resolve_config

    config = make_suite_project("two_views", tmp_path, seed=0, n_frames=30)
    cfg = resolve_config("cpu", {"train_fraction": 0.8, "seed": 0, "max_minutes": None,
                                 "epochs": 40, "min_steps": 0, "workers": 0, "input_scale": 0.5,
                                 "eval_every": 40, "calibrate": "none", "precision": "fp32"})
    run = train(config, cfg, name="two-views", progress=False)
    train_options = yaml.safe_load((run / "run.yaml").read_text())["train"]
    assert train_options["augment"]["hflip_prob"] == 0 and not train_options["test_flip"]
    metrics = pd.read_csv(run / "metrics.csv")
    assert int(metrics["epoch"].max()) + 1 == 40 and len(metrics) == 40  # 3 steps an epoch
    test = evaluate(run)["test"]
    assert test["mean_px_error"] < 60.0, test  # the plateau: 135-140 px
