"""The CLI in scripts and on clusters: --version, shell completion, strict JSON, progress
lines in logs, plain flags in help."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.cli.common import json_text
from tests.conftest import write_video
from tests.test_cli import _all_commands

runner = CliRunner()


def _strict(text: str):
    """json.loads that refuses NaN/Infinity, as JavaScript's JSON.parse does."""
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_version():
    from poselab import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"poselab {__version__}"


def test_shell_completion_script_and_completions():
    script = subprocess.run([sys.executable, "-m", "poselab", "--show-completion", "bash"],
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "_poselab_completion" in script.stdout, script.stderr
    env = {**os.environ, "_POSELAB_COMPLETE": "complete_bash", "COMP_WORDS": "poselab anal",
           "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "poselab"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert "analyze" in done.stdout.split(), done.stdout + done.stderr


def test_json_text_writes_null_for_nan():
    value = {"a": float("nan"), "b": [1.0, float("inf"), np.float64("nan")], "c": (2, "x")}
    assert _strict(json_text(value)) == {"a": None, "b": [1.0, None, None], "c": [2, "x"]}


def test_evaluate_json_is_strict_json(monkeypatch):
    """A split with no labeled keypoint has NaN metrics: --json prints null, not NaN."""
    import poselab.pose.evaluation as evaluation

    result = {"run": "r", "epoch": 0, "train": {"mean_px_error": 1.5},
              "test": {"mean_px_error": math.nan, "rmse": math.inf, "per_bodypart": {}}}
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: result)
    out = runner.invoke(app, ["evaluate", "somewhere", "--json"])
    assert out.exit_code == 0, out.output
    data = _strict(out.stdout)
    assert data["test"]["mean_px_error"] is None and data["test_mean_px_error"] is None
    assert data["train_mean_px_error"] == 1.5


def test_no_bool_metavar_in_any_help():
    for path in [(), *_all_commands()]:
        result = runner.invoke(app, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output, (path, result.output)
    assert "<int>" in runner.invoke(app, ["analyze", "--help"]).output  # real values keep it


def test_long_command_prints_progress_lines_off_a_terminal(tmp_path: Path, monkeypatch):
    """Off a terminal (a log, SLURM) a bar is one line per interval, never carriage returns;
    POSELAB_PROGRESS_SECONDS=0 makes every update a line here."""
    from poselab.io.predictions import predictions_frame, write_predictions

    video = write_video(tmp_path / "clip.avi", n_frames=12)
    xy = np.full((12, 2, 2), 20.0)
    h5 = write_predictions(predictions_frame(xy, np.ones((12, 2)), ["a", "b"], "s"),
                           tmp_path / "clips.h5")[0]
    monkeypatch.setenv("POSELAB_PROGRESS_SECONDS", "0")
    result = runner.invoke(app, ["labeled-video", str(video), str(h5)])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("labeled-video")]
    assert lines and lines[-1].startswith("labeled-video: 100% 12/12 frame")


@pytest.mark.parametrize("seconds", ["30", "1000"])
def test_short_work_prints_nothing_off_a_terminal(tmp_path: Path, monkeypatch, seconds: str):
    from poselab.progress import progress_bar

    monkeypatch.setenv("POSELAB_PROGRESS_SECONDS", seconds)
    stream = open(tmp_path / "log", "w")  # noqa: SIM115 - closed below
    for _ in progress_bar(range(100), desc="quick", file=stream):
        pass
    stream.close()
    assert (tmp_path / "log").read_text() == ""


def test_heartbeat_lines(monkeypatch):
    import threading

    from poselab.progress import heartbeat

    monkeypatch.setenv("POSELAB_PROGRESS_SECONDS", "0.01")
    lines: list[str] = []
    beat = threading.Event()

    def echo(line: str) -> None:
        lines.append(line)
        beat.set()

    with heartbeat("export: writing model.onnx", echo):
        assert beat.wait(30)  # no upper bound on the machine's speed, only a line
    count = len(lines)
    assert lines[0].startswith("export: writing model.onnx: still running, 0:0")
    assert len(lines) == count  # nothing after the block
