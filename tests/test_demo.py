"""`poselab demo` runs on a fresh install with no network."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from poselab.cli import app


def test_demo_creates_project_and_reruns(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "300 frames, 30.00 fps, 320x240" in result.output
    (config,) = tmp_path.glob("demo-poselab-*/config.yaml")
    assert (tmp_path / "synthetic-mouse_groundtruth.h5").is_file()
    again = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert again.exit_code == 0 and "reusing the project" in again.output


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
