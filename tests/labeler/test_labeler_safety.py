"""Hostile or mistaken input to the labeler: bad addresses, deep JSON, points off the image,
symlinks out of the project, a second server on the same project (two real processes)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from poselab.cli import app as cli
from poselab.errors import PoselabError
from poselab.io.labels import read_labels
from poselab.labeler import BackgroundServer, create_app

LOCAL = "http://127.0.0.1"


def _client(config: Path) -> TestClient:
    return TestClient(create_app(config), base_url=LOCAL)


def _edit(value, frame="img0000.png", bodypart="snout") -> dict:
    return {"edits": [{"frame": frame, "bodypart": bodypart, "value": value}]}


@pytest.mark.parametrize("args, message", [
    (["--port", "-1"], "--port -1: must be a number from 0 to 65535"),
    (["--port", "99999"], "--port 99999: must be a number from 0 to 65535"),
    (["--host", "no-such-host.invalid"], "--host no-such-host.invalid: cannot resolve"),
])
def test_bad_port_or_host_is_a_one_line_error(project: Path, args: list[str], message: str):
    result = CliRunner().invoke(cli, ["label", str(project), "--no-browser", *args])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(f"error: {message}")
    assert not (project.parent / ".poselab-label.lock").exists()  # failed before any work


def test_deeply_nested_json_is_400_not_500(project: Path):
    c = _client(project)
    body = b'{"edits": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    r = c.post("/api/folders/mouse1/edits", content=body,
               headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]
    assert c.get("/api/project").status_code == 200  # the server lives on


@pytest.mark.parametrize("value", [[-1.0, 5.0], [5.0, -3.0], [-0.51, 0.0], [64.0, 5.0],
                                   [5.0, 47.6], [1e5, 1e5]])
def test_points_off_the_image_are_refused(project: Path, value: list[float]):
    c = _client(project)
    r = c.post("/api/folders/mouse1/edits", json=_edit(value))
    assert r.status_code == 400 and "outside the 64x48 image" in r.json()["error"]
    assert not list((project.parent / "labeled-data" / "mouse1").glob("CollectedData*"))


def test_points_on_the_outer_pixel_edges_are_kept(project: Path):
    """Pixel centres are integers, so the image spans [-0.5, w - 0.5] x [-0.5, h - 0.5]."""
    c = _client(project)
    for value in ([-0.5, -0.5], [63.5, 47.5], [0.0, 0.0], [63.0, 47.0]):
        r = c.post("/api/folders/mouse1/edits", json=_edit(value))
        assert r.status_code == 200, r.text
    df = read_labels(project.parent / "labeled-data" / "mouse1" / "CollectedData_tester.h5")
    assert tuple(df.iloc[0, :2]) == (63.0, 47.0)


def test_a_stale_request_from_the_same_page_never_undoes_a_newer_one(project: Path):
    """A page's flush on close re-sends what was in flight: the older request may land last."""
    c = _client(project)
    newer = {**_edit([9.0, 9.0]), "client": "page-1", "seq": 2}
    older = {**_edit([1.0, 1.0]), "client": "page-1", "seq": 1}
    assert c.post("/api/folders/mouse1/edits", json=newer).json()["stale"] is False
    r = c.post("/api/folders/mouse1/edits", json=older)
    assert r.status_code == 200 and r.json()["stale"] is True
    df = read_labels(project.parent / "labeled-data" / "mouse1" / "CollectedData_tester.h5")
    assert tuple(df.iloc[0, :2]) == (9.0, 9.0)
    other = {**_edit([2.0, 2.0]), "client": "page-2", "seq": 0}  # another page: its own count
    assert c.post("/api/folders/mouse1/edits", json=other).json()["stale"] is False
    bad = {**_edit([2.0, 2.0]), "client": "page-2", "seq": "x"}
    assert c.post("/api/folders/mouse1/edits", json=bad).status_code == 400


def test_symlinks_out_of_the_project_are_not_served(project: Path, tmp_path: Path):
    secret = tmp_path / "secret.png"
    secret.write_bytes((project.parent / "labeled-data/mouse1/img0000.png").read_bytes())
    folder = project.parent / "labeled-data" / "mouse1"
    (folder / "img0100.png").symlink_to(secret)
    (folder / "img0101.png").symlink_to(folder / "img0001.png")  # inside: fine
    c = _client(project)
    assert "img0100.png" in c.get("/api/folders/mouse1").json()["images"]
    r = c.get("/api/folders/mouse1/images/img0100.png")
    assert r.status_code == 403 and "outside the project" in r.json()["error"]
    assert c.get("/api/folders/mouse1/images/img0101.png").status_code == 200


def test_a_second_server_on_the_same_project_in_one_process_is_refused(project: Path):
    with BackgroundServer(project) as url:
        with pytest.raises(PoselabError, match=rf"PID {os.getpid()}\).*{re.escape(url)}"):
            BackgroundServer(project)
    with BackgroundServer(project):  # released when the first one stopped
        pass


def _start(config: Path, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "poselab", "label", str(config),
                             "--no-browser", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            # a child inherits an ignored SIGINT (an earlier test in this
                            # process may leave it so) and would then never see Ctrl-C
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = ""
    deadline = time.monotonic() + 30
    while "http://" not in line:
        line = proc.stdout.readline()
        assert (line or proc.poll() is None) and time.monotonic() < deadline, "no URL printed"
    return proc, re.search(r"http://\S+", line).group(0)


def test_two_label_processes_on_one_project(project: Path):
    first, url = _start(project)
    try:
        second = subprocess.run([sys.executable, "-m", "poselab", "label", str(project),
                                 "--no-browser", "--port", "0"], capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        err = second.stderr.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: another poselab labeler")
        assert f"PID {first.pid}" in err and url in err
        assert first.poll() is None  # the first one is untouched
        first.kill()  # SIGKILL: no cleanup, yet the OS drops the lock
        first.wait(timeout=10)
        third, _ = _start(project)
        third.send_signal(signal.SIGINT)
        # communicate drains its stdout pipe: a child blocked on a full pipe never exits
        # (timed out twice in full-suite runs with wait(timeout=15))
        third.communicate(timeout=60)
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
