"""`poselab demo` runs on a fresh install with no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from poselab.cli import app


def test_demo_runs_the_whole_workflow_and_continues(tmp_path: Path):
    """The full demo with a short training: every output where it says, predictions close to
    the ground truth over the whole video, and a re-run that reuses everything."""
    import pandas as pd

    from poselab.io.predictions import predictions_arrays

    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--epochs", "30"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[11/11] done in" in out and "standing in for you" in out
    assert "300 frames, 30.00 fps, 320x240" in out
    printed = dict(line.strip().split(":", 1) for line in out.splitlines()
                   if line.startswith("      ") and ":" in line and "/" in line
                   and line.strip().split(":", 1)[0] in ("predictions", "filtered",
                                                         "labeled video", "plots"))
    paths = {k: Path(v.strip()) for k, v in printed.items()}
    assert set(paths) == {"predictions", "filtered", "labeled video", "plots"}
    assert all(p.exists() for p in paths.values()), paths
    assert sorted(p.suffix for p in paths["plots"].glob("*.png"))  # plots drawn

    predicted = pd.read_hdf(paths["predictions"], "df_with_missing")
    truth = pd.read_hdf(tmp_path / "synthetic-mouse_groundtruth.h5", "df_with_missing")
    assert len(predicted) == len(truth) == 300  # every frame, none lost
    assert len(pd.read_hdf(paths["filtered"], "df_with_missing")) == 300
    error = np.linalg.norm(predictions_arrays(predicted)[0] - predictions_arrays(truth)[0],
                           axis=-1)
    # 30 epochs, so likelihoods are still low (the filter drops many points); positions are
    # already close. The default 80 epochs reach under 2 px.
    assert np.median(error) < 6.0, np.median(error)

    again = runner.invoke(app, ["demo", "--out", str(tmp_path), "--epochs", "30"])
    assert again.exit_code == 0, again.output
    assert "reusing the project" in again.output and "already extracted" in again.output
    assert "continuing" in again.output and "epoch 1/" not in again.output


def test_synthetic_video_command(tmp_path: Path):
    import pandas as pd

    out = tmp_path / "clip.avi"
    result = CliRunner().invoke(app, ["synthetic-video", str(out), "--frames", "20",
                                      "--size", "64x48", "--seed", "3"])
    assert result.exit_code == 0, result.output
    truth = pd.read_hdf(tmp_path / "clip_groundtruth.h5", "df_with_missing")
    assert truth.shape == (20, 12)
    bad = CliRunner().invoke(app, ["synthetic-video", str(out), "--size", "64by48"])
    assert bad.exit_code == 2 and "WIDTHxHEIGHT" in bad.output


def test_demo_bad_options_fail_before_any_work(tmp_path: Path):
    runner = CliRunner()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad_out = runner.invoke(app, ["demo", "--out", str(blocker / "demo")])
    assert bad_out.exit_code == 2 and "cannot create the folder" in bad_out.output
    bad_epochs = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--epochs", "0"])
    assert bad_epochs.exit_code == 2 and "epochs must be >= 1" in bad_epochs.output
    assert not (tmp_path / "d").exists()  # nothing written
