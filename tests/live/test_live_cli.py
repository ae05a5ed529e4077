"""`poselab live` on the command line: JSON lines on stdout, the summary and runtime on stderr,
the recording, a user processor, Ctrl+C in a real process, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.io.predictions import read_predictions

from .conftest import BODYPARTS


def test_live_command_publishes_and_records(live_run: Path, live_video: Path, tmp_path: Path):
    record = tmp_path / "session.h5"
    result = CliRunner().invoke(app, ["live", str(live_run), "--source", str(live_video),
                                      "--fps", "60", "--runtime", "torch", "--threads", "1",
                                      "--record", str(record), "--csv"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines and all(list(m["pose"]) == BODYPARTS for m in lines)
    assert "runtime torch with 1 thread:" in result.stderr and "latency p50" in result.stderr
    assert f"recorded {record}" in result.stderr
    df = read_predictions(record)
    assert record.with_suffix(".csv").is_file()
    recorded = df.index[df.notna().all(axis=1)].tolist()
    assert recorded == [m["frame"] for m in lines]
    first = lines[0]
    assert df.loc[first["frame"]].to_numpy()[:3].round(3).tolist() == first["pose"]["snout"]


def test_user_processor_from_a_file(live_run: Path, live_video: Path, tmp_path: Path):
    log = tmp_path / "seen.txt"
    code = tmp_path / "trigger.py"
    code.write_text(
        "class Trigger:\n"
        "    def __init__(self):\n"
        "        self.frames = []\n"
        "    def process(self, pose):\n"
        "        self.frames.append(pose.index)\n"
        "    def close(self):\n"
        f"        open({str(log)!r}, 'w').write(' '.join(map(str, self.frames)))\n")
    result = CliRunner().invoke(app, ["live", str(live_run), "--source", str(live_video),
                                      "--fps", "60", "--runtime", "torch", "--threads", "1",
                                      "--processor", f"{code}:Trigger", "--max-frames", "4"])
    assert result.exit_code == 0, result.output
    published = [json.loads(line)["frame"] for line in result.stdout.splitlines()]
    assert log.read_text().split() == [str(f) for f in published] and len(published) == 4


@pytest.mark.parametrize(("args", "needle"), [
    (["--runtime", "tensorrt"], "--runtime tensorrt"),
    (["--record", "out.txt"], "expected a .h5"),
    (["--publish", "http://127.0.0.1:5555"], "expected tcp://"),
    (["--publish", "tcp://127.0.0.1:99999"], "port in 1-65535"),
    (["--wait-subscribers", "1"], "--wait-subscribers needs --publish tcp://"),
    (["--max-frames", "0"], "--max-frames 0"),
    (["--processor", "nofile.py:X"], "not found"),
    (["--processor", "nocolon"], "expected FILE.py:NAME"),
    (["--fps", "-5"], "--fps"),
    (["--threads", "-1"], "--threads -1"),
    (["--record", "/proc/no/x.h5"], "not a writable file path"),
])
def test_bad_options_are_one_line_errors(live_run: Path, live_video: Path, tmp_path: Path,
                                         args: list[str], needle: str):
    os.chdir(tmp_path)  # relative outputs land in the test's folder, if anything were written
    result = CliRunner().invoke(app, ["live", str(live_run), "--source", str(live_video),
                                      "--runtime", "torch", "--threads", "1", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and needle in lines[-1], lines
    assert not result.stdout.strip()  # no pose was published
    assert not list(tmp_path.iterdir())


def test_missing_source_and_run_are_one_line_errors(live_run: Path, tmp_path: Path):
    for run, source, needle in ((live_run, tmp_path / "none.mp4", "no such file"),
                                (tmp_path, "0", "not a poselab run")):
        result = CliRunner().invoke(app, ["live", str(run), "--source", str(source)])
        assert result.exit_code == 2
        assert needle in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow  # a real process: Python, torch and the model start in it (~5 s)
def test_ctrl_c_on_the_command_keeps_the_recording(live_run: Path, live_video: Path,
                                                   tmp_path: Path):
    record = tmp_path / "cut.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "poselab", "live", str(live_run), "--source", str(live_video),
         "--fps", "4", "--runtime", "torch", "--threads", "1", "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        frames = [json.loads(proc.stdout.readline())["frame"] for _ in range(2)]
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    frames += [json.loads(line)["frame"] for line in rest.splitlines()]
    assert proc.returncode == 0, err
    assert "(interrupt)" in err and f"recorded {record}" in err
    df = read_predictions(record)
    assert df.index[df.notna().all(axis=1)].tolist() == frames
    assert len(df) == frames[-1] + 1 < 24  # stopped early: rows up to the last pose
