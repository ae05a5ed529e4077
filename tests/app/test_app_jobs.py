"""The job queue: one job at a time in the order queued, logs, Stop, and what a restarted
server finds (a job still running is adopted, a vanished one is interrupted). Jobs here are
real `poselab` processes, kept cheap (help, info, rendering a long synthetic video)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from poselab.app import create_app
from poselab.app.jobs import DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, STOPPED, JobTable
from poselab.app.runner import JobRunner

pytestmark = pytest.mark.slow


def _wait(table: JobTable, job_id: int, statuses, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = table.get(job_id)
        if job.status in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {table.get(job_id).status}")


def _started(runner: JobRunner, job_id: int, timeout: float = 60.0) -> None:
    """Wait until the job's first step runs (its process has started and logged it)."""
    deadline = time.monotonic() + timeout
    while "$ poselab" not in runner.log(job_id):
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    time.sleep(0.3)  # and the step's own Python is up


def _long(tmp_path: Path) -> list[list[str]]:
    """A step that runs until stopped: rendering a 200,000-frame synthetic video."""
    return [["synthetic-video", str(tmp_path / "long.avi"), "--frames", "200000"]]


def test_jobs_run_one_at_a_time_in_order_with_their_log(tmp_path: Path, labeled_project: Path):
    table = JobTable(tmp_path / "jobs.sqlite")
    runner = JobRunner(table, tmp_path / "jobs")
    cwd = labeled_project.parent
    first = runner.submit("info", "p", "info", [["info", str(labeled_project)]], cwd)
    second = runner.submit("info", "p", "two steps", [["--help"], ["info", "/no/such"]], cwd)
    runner.start()
    try:
        a = _wait(table, first.id, (DONE, FAILED))
        b = _wait(table, second.id, (DONE, FAILED))
    finally:
        runner.shutdown()
    assert a.status == DONE and a.rc == 0
    assert b.started >= a.ended  # never two at once, oldest first
    assert b.status == FAILED and b.rc == 2 and "config" in b.note  # the step's error line
    log = runner.log(a.id)
    assert f"$ poselab info {labeled_project}" in log and "Project syn" in log
    assert "Usage" in runner.log(b.id)  # the first step ran, the second failed


def test_stop_interrupts_like_ctrl_c_and_a_queued_job_is_removed(tmp_path: Path):
    table = JobTable(tmp_path / "jobs.sqlite")
    runner = JobRunner(table, tmp_path / "jobs")
    running = runner.submit("demo", "p", "long", _long(tmp_path), tmp_path)
    waiting = runner.submit("demo", "p", "next", [["--help"]], tmp_path)
    runner.start()
    try:
        _wait(table, running.id, (RUNNING,))
        assert runner.stop(waiting.id).status == "cancelled"
        _started(runner, running.id)
        runner.stop(running.id)
        job = _wait(table, running.id, (STOPPED, DONE, FAILED))
    finally:
        runner.shutdown()
    assert job.status == STOPPED and job.rc == 130
    assert table.get(waiting.id).started is None  # never ran
    assert not (tmp_path / "long.avi").exists()  # the atomic write left nothing


def test_a_restarted_server_adopts_a_running_job_and_marks_a_vanished_one(tmp_path: Path):
    table = JobTable(tmp_path / "jobs.sqlite")
    first = JobRunner(table, tmp_path / "jobs")
    job = first.submit("demo", "p", "long", _long(tmp_path), tmp_path)
    first.start()
    _wait(table, job.id, (RUNNING,))
    _started(first, job.id)
    first.shutdown(interrupt=False)  # as if the server were killed: the job goes on
    ghost = table.add("train", "p", "ghost", [["--help"]])
    table.update(ghost.id, status=RUNNING, pid=999_999_999)  # its process is long gone
    (tmp_path / "jobs" / str(ghost.id)).mkdir(parents=True)

    second = JobRunner(table, tmp_path / "jobs")
    second.start()
    try:
        assert table.get(job.id).status == RUNNING  # adopted: its process holds its lock
        gone = table.get(ghost.id)
        assert gone.status == INTERRUPTED and "without a result" in gone.note
        second.stop(job.id)
        stopped = _wait(table, job.id, (STOPPED, DONE, FAILED))
    finally:
        second.shutdown()
    # Ctrl-C's exit status: 130 when Python's handler ran, -2 when the signal came first
    # (a race seen once when this module ran beside the labeler tests)
    assert stopped.status == STOPPED and stopped.rc in (130, -2)
    result = json.loads((tmp_path / "jobs" / str(job.id) / "result.json").read_text())
    assert result == {"rc": 130, "step": 0, "interrupted": True}


def test_server_shutdown_interrupts_the_running_job_and_keeps_the_queue(tmp_path: Path,
                                                                       root: Path):
    app = create_app([root], state_dir=tmp_path / "state")
    ctx = app.state.ctx
    job = ctx.runner.submit("demo", "p", "long", _long(tmp_path), tmp_path)
    later = ctx.runner.submit("demo", "p", "later", [["--help"]], tmp_path)
    _wait(ctx.table, job.id, (RUNNING,))
    _started(ctx.runner, job.id)
    ctx.close()
    assert ctx.table.get(job.id).status == INTERRUPTED
    assert "server stopped" in ctx.table.get(job.id).note
    assert ctx.table.get(later.id).status == QUEUED  # runs at the next start


def test_bad_job_requests_are_one_line_400s(root: Path, labeled_project: Path, state: Path):
    app = create_app([root], state_dir=state, start_jobs=False)
    c = TestClient(app, base_url="http://127.0.0.1")
    try:
        pid = c.post("/api/projects/open", json={"config": str(labeled_project)}).json()["id"]
        cases = [
            ("extract", {"videos": [], "n": 5}, 400, "at least one video"),
            ("extract", {"videos": [0], "n": 0}, 400, "number of frames"),
            ("extract", {"videos": [7], "n": 5}, 400, "video"),
            ("extract", {"videos": [0], "method": "random"}, 400, "method"),
            ("extract", {"videos": [0], "crop": [0, 10]}, 400, "crop"),
            ("train", {"preset": "no_such"}, 400, "preset"),
            ("train", {"sets": "--help"}, 400, "key=value"),
            ("train", {"sets": "no_such_option=1"}, 400, "no_such_option"),
            ("train", {"backbone": "x; rm -rf /"}, 400, "backbone"),
            ("train", {"epochs": -3}, 400, "epochs"),
            ("analyze", {"run": "nope", "videos": [0]}, 404, "no run"),
        ]
        for what, payload, status, words in cases:
            r = c.post(f"/api/projects/{pid}/{what}", json=payload)
            assert r.status_code == status, (what, payload, r.text)
            assert words in r.json()["error"] and "\n" not in r.json()["error"]
        r = c.post(f"/api/projects/{pid}/extract", content=b"n=5",
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415  # a plain HTML form (cross-site) cannot start a job
        assert c.get("/api/jobs").json() == []  # nothing was queued
        ok = c.post(f"/api/projects/{pid}/train", json={
            "preset": "fast_lite0", "epochs": 3, "max_minutes": 2, "sets": "lr=0.002"}).json()
        argv = ok["commands"][0].split()
        assert argv[:2] == ["poselab", "train"] and "--preset" in argv and "lr=0.002" in argv
        assert ok["commands"][1].startswith("poselab evaluate ") and ok["status"] == QUEUED
        assert ok["meta"]["run"].startswith("efficientnet_lite0-")
    finally:
        app.state.ctx.close()
