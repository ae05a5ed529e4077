"""The app's pieces without a browser: run states and ETA from a run's files, analyses found
beside a video, the frames to check, `poselab app` errors, one app per state folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poselab.app import BackgroundApp
from poselab.app.results import analyses_of, outlier_frames
from poselab.app.runs import presets, run_summary
from poselab.cli import app as cli
from poselab.errors import PoselabError
from poselab.io.predictions import write_predictions
from poselab.io.project import open_project


def _run(folder: Path, epochs: int, seconds: list[float], checkpoint: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(f"train: {{epochs: {epochs}, backbone: resnet18}}\n")
    rows = ["epoch,loss,test_px_error,seconds,elapsed_minutes"]
    rows += [f"{i},0.5,{10 - i},{s},{sum(seconds[:i + 1]) / 60}" for i, s in
             enumerate(seconds)]
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    if checkpoint:
        (folder / "last.pt").write_bytes(b"")
    return folder


def test_run_states_and_eta_come_from_the_runs_files(tmp_path: Path):
    run = _run(tmp_path / "a", 10, [9.0, 3.0, 3.0, 3.0, 3.0, 3.0])
    training = run_summary(run, busy=True)
    assert training["state"] == "training" and training["done"] == 6
    # wall time of the last 5 epochs (from elapsed_minutes): the first, slower one is left out
    assert training["seconds_per_epoch"] == pytest.approx(3.0)
    assert training["eta_seconds"] == pytest.approx(12.0) and training["test_px_error"] == 5
    assert run_summary(run, busy=False)["state"] == "resumable"
    assert run_summary(run, busy=False)["eta_seconds"] is None
    assert run_summary(_run(tmp_path / "b", 2, [1.0, 1.0]), False)["state"] == "finished"
    assert run_summary(_run(tmp_path / "c", 5, [1.0], checkpoint=False), False)["state"] \
        == "empty"


def test_every_shipped_preset_is_listed_and_the_measured_ones_say_so():
    listed = {p["name"]: p for p in presets()["presets"]}
    assert {"fast_lite0", "fastest_lite0", "resnet50", "dlc_resnet50", "demo"} <= set(listed)
    assert "2.29 px" in listed["fast_lite0"]["figures"]["accuracy"]
    assert listed["fast_lite0"]["options"]["backbone"] == "efficientnet_lite0"
    assert all(p["summary"] for p in listed.values())


def test_analyses_are_found_beside_their_video_and_outliers_flagged(labeled_project: Path):
    project = open_project(labeled_project)
    folder = project.videos[0].path.parent
    n, k = 48, 4
    xy = np.tile(np.array([10.0, 20.0]), (n, k, 1))
    likelihood = np.full((n, k), 0.9)
    xy[30, 2] = [60.0, 20.0]  # a 50 px jump at frame 30 (and back at 31)
    likelihood[12, 0] = 0.1  # unsure at frame 12
    columns = ["snout", "leftear", "rightear", "tailbase"]
    data = np.concatenate([xy, likelihood[..., None]], axis=-1).reshape(n, -1)
    index = pd.MultiIndex.from_product([["poselab_x_r1"], columns, ["x", "y", "likelihood"]],
                                       names=["scorer", "bodyparts", "coords"])
    h5 = folder / "mouseposelab_x_r1.h5"
    write_predictions(pd.DataFrame(data, columns=index), h5)
    meta = {"scorer": "poselab_x_r1", "run": "/p/models/r1", "date": "2026-01-01T00:00:00",
            "rows": n, "fps": 30.0}
    (folder / "mouseposelab_x_r1_meta.json").write_text(json.dumps(meta))
    (folder / "mouse2poselab_x_r1_meta.json").write_text(json.dumps(  # another video's
        {**meta, "scorer": "2poselab_x_r1"}))
    (folder / "plot-poses" / h5.stem).mkdir(parents=True)
    (folder / "plot-poses" / h5.stem / "trajectory.png").write_bytes(b"\x89PNG")

    (found,) = analyses_of(project, 0)
    assert found["h5"] == h5.name and found["run"] == "r1" and found["rows"] == n
    assert found["plots"] == ["trajectory.png"] and found["labeled_video"] is None
    assert found["report"] is None
    out = outlier_frames(h5, pcutoff=0.6)
    assert out["count"] == 3 and out["n_frames"] == n
    frames = {f["index"]: f for f in out["frames"]}
    assert frames[12]["low"] and not frames[12]["jump"] and frames[12]["likelihood"] == 0.1
    assert frames[30]["jump"] and frames[31]["jump"] and not frames[30]["low"]


def test_poselab_app_bad_root_is_a_one_line_error(tmp_path: Path):
    result = CliRunner().invoke(cli, ["app", "--root", str(tmp_path / "nope"), "--no-browser",
                                      "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: --root {tmp_path / 'nope'}: not a folder"


def test_one_app_per_state_folder(root: Path, state: Path, apps):
    first = apps([root], state_dir=state)
    with pytest.raises(PoselabError, match=f"already running at {first.url}"):
        BackgroundApp([root], state_dir=state)
