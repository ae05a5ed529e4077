"""Bad input through the CLI: one line, exit code 2, and no file changed.

Each row of CASES is (name, arguments, expected words of the message). The project (and a
file outside it that a symlink points to) is hashed before and after: a refused command
must leave every byte as it was. Add a row for every bad input found; the count of handled
bad inputs only grows.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.demo import make_synthetic_project
from tests.conftest import write_video

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A synthetic project with labels, its ground truth as a predictions file, a tiny
    trained run, a precious file outside the project, and odd files to pass as paths."""
    root = tmp_path_factory.mktemp("bad")
    config, video, truth = make_synthetic_project(root, "bad", n_frames=24, seed=1,
                                                  label_every=3)
    project = config.parent
    predictions = project / "analysis" / "moviegt.h5"
    predictions.parent.mkdir()
    shutil.copy(truth, predictions)
    precious = root / "precious.mp4"
    write_video(precious, n_frames=5)
    other = root / "in2"
    other.mkdir()
    write_video(other / "third.avi", n_frames=6)
    write_video(other / "plain.avi", n_frames=7)
    os.symlink(precious, project / "videos" / "third.avi")  # not in config.yaml
    write_video(project / "videos" / "plain.avi", n_frames=3)  # a stray file, not listed
    a_file = root / "a-file.txt"
    a_file.write_text("not a folder\n")
    out = runner.invoke(app, ["train", str(config), "--backbone", "resnet18", "--weights",
                              "none", "--epochs", "1", "--batch-size", "4", "--name", "tiny",
                              "--set", "workers=0", "--set", "head_width=16",
                              "--set", "augment.crop_size=[64, 64]"])
    assert out.exit_code == 0, out.output
    return {"root": root, "config": config, "video": video, "pred": predictions,
            "precious": precious, "other": other, "file": a_file,
            "run": project / "models" / "tiny"}


def _snapshot(*folders: Path) -> dict[str, str]:
    digest = {}
    for folder in folders:
        paths = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        for p in paths:
            if p.is_symlink():
                digest[str(p)] = "-> " + os.readlink(p)
            elif p.is_file():
                digest[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return digest


def _config_with(world: dict, tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(world["config"].parent, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("models", "analysis"))
    config = copy / "config.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    return config


CASES = [
    ("add-videos onto a symlink to a file outside the project",
     lambda w: ["add-videos", w["config"], w["other"] / "third.avi"],
     ["videos/third.avi: already exists (a symlink to", "nothing was overwritten"]),
    ("add-videos onto a stray file in videos/",
     lambda w: ["add-videos", w["config"], w["other"] / "plain.avi"],
     ["videos/plain.avi: already exists (a file not listed in config.yaml)"]),
    ("new --dir <a file>",
     lambda w: ["new", "x", "-e", "me", "-v", w["video"], "--dir", w["file"]],
     ["--dir", "cannot create"]),
    ("filter --dest <a file>",
     lambda w: ["filter", w["pred"], "--dest", w["file"]], ["is a file, not a folder"]),
    ("labeled-video --dest <a file>",
     lambda w: ["labeled-video", w["video"], w["pred"], "--dest", w["file"]],
     ["is a file, not a folder"]),
    ("plot-trajectories --dest <a file>",
     lambda w: ["plot-trajectories", w["pred"], "--dest", w["file"]],
     ["is a file, not a folder"]),
    ("analyze --dest <a file>",
     lambda w: ["analyze", w["run"], w["video"], "--dest", w["file"]],
     ["is a file, not a folder"]),
    ("export --dest <a file>",
     lambda w: ["export", w["run"], "--dest", w["file"]], ["is not a folder"]),
    ("filter --pcutoff 1.5", lambda w: ["filter", w["pred"], "--pcutoff", "1.5"],
     ["--pcutoff 1.5", "[0, 1]"]),
    ("labeled-video --pcutoff -0.1",
     lambda w: ["labeled-video", w["video"], w["pred"], "--pcutoff", "-0.1"],
     ["--pcutoff -0.1", "[0, 1]"]),
    ("plot-trajectories --pcutoff 2",
     lambda w: ["plot-trajectories", w["pred"], "--pcutoff", "2"], ["[0, 1]"]),
    ("extract-outliers --pcutoff 7",
     lambda w: ["extract-outliers", w["config"], w["video"], w["pred"], "--pcutoff", "7"],
     ["[0, 1]"]),
    ("train --set lr=abc", lambda w: ["train", w["config"], "--set", "lr=abc"],
     ["training option 'lr' must be a number, got 'abc'"]),
    ("train --set epochs=2.5", lambda w: ["train", w["config"], "--set", "epochs=2.5"],
     ["training option 'epochs' must be an integer, got 2.5"]),
    ("train --resume <no such run>", lambda w: ["train", w["config"], "--resume", "nope"],
     ["nope: not a poselab run"]),
    ("evaluate --which bset", lambda w: ["evaluate", w["run"], "--which", "bset"],
     ["--which 'bset': choose one of auto, best, last"]),
    ("evaluate <not a run>", lambda w: ["evaluate", w["file"].parent],
     ["not a poselab run"]),
]


@pytest.mark.parametrize("name, args, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world: dict, name, args, words):
    before = _snapshot(world["config"].parent, world["precious"], world["other"])
    out = runner.invoke(app, [str(a) for a in args(world)])
    assert out.exit_code == 2, f"{name}: exit {out.exit_code}\n{out.output}"
    lines = [ln for ln in out.output.strip().splitlines() if ln.strip()]
    error = [ln for ln in lines if ln.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in out.output, out.output
    for word in words:
        assert word in error[0], f"{name}: {word!r} not in {error[0]!r}"
    assert _snapshot(world["config"].parent, world["precious"], world["other"]) == before


@pytest.mark.parametrize("old, new, command, words", [
    ("- 0.95", '- "most"', "info", ["TrainingFraction must be a list of numbers"]),
    ("dotsize: 6", "dotsize: big", "check-labels", ["dotsize must be a number, got 'big'"]),
    ("alphavalue: 0.7", "alphavalue: 3", "info", ["alphavalue must be in [0, 1], got 3"]),
    ("pcutoff: 0.6", "pcutoff: high", "info", ["pcutoff must be a number in [0, 1]"]),
])
def test_config_yaml_values_are_checked_when_the_project_opens(world, tmp_path, old, new,
                                                               command, words):
    config = _config_with(world, tmp_path, old, new)
    before = _snapshot(config.parent)
    out = runner.invoke(app, [command, str(config)])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    for word in words:
        assert word in out.output
    assert "config.yaml:" in out.output  # the file and the line
    assert _snapshot(config.parent) == before


def test_add_videos_rename_adds_under_a_new_name_and_touches_nothing(world, tmp_path):
    config = _config_with(world, tmp_path, "dotsize: 6", "dotsize: 6")
    videos = config.parent / "videos"
    target = os.readlink(videos / "third.avi")
    out = runner.invoke(app, ["add-videos", str(config), str(world["other"] / "third.avi"),
                              "--rename", "--copy-videos"])
    assert out.exit_code == 0, out.output
    assert (videos / "third-1.avi").is_file() and "third-1.avi" in config.read_text()
    assert os.readlink(videos / "third.avi") == target  # the symlink is as it was
    assert world["precious"].read_bytes() == _snapshot_bytes(world["precious"])


def _snapshot_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_a_corrupt_h5_with_an_intact_csv_twin_loses_nothing(world, tmp_path, caplog):
    config = _config_with(world, tmp_path, "dotsize: 6", "dotsize: 6")
    (h5,) = config.parent.glob("labeled-data/*/CollectedData_gt.h5")
    good = runner.invoke(app, ["info", str(config), "--json"]).output
    data = h5.read_bytes()
    h5.write_bytes(data[: len(data) // 3])  # truncated, as after a crash
    out = runner.invoke(app, ["info", str(config), "--json"])
    assert out.exit_code == 0, out.output
    assert "labeled" in out.output and out.output.count("labeled") == good.count("labeled")
    # without the twin: one line naming the file, never HDF5's 17-line back-trace
    h5.with_suffix(".csv").unlink()
    out = runner.invoke(app, ["info", str(config)])
    assert out.exit_code == 2 and "CollectedData_gt.h5: not a readable HDF5 file" in out.output
    assert len(out.output.strip().splitlines()) == 1, out.output
