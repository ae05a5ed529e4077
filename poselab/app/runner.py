"""The job runner: one FIFO queue, one job at a time, each job a background process.

`JobRunner` owns a thread that starts the oldest queued job when none is running (a plain
first-in-first-out queue: two trainings never share the cores) and notices when it ends.
Each job runs as `python -m poselab.app.child <job folder>` (child.py) in its own session,
so it survives a closed browser tab and even a killed server, and records its own result.

At start the runner looks at the jobs the table says are running: a job whose process still
holds its lock is adopted (watched until it ends, stoppable), one that left a result is
finished from it, and one that vanished is marked interrupted. When the server stops
(`shutdown`), the running job is interrupted like Ctrl+C (a training keeps its last
finished epoch and can be resumed); queued jobs stay queued for the next start.

Extending: a new kind of job needs nothing here; the routes build its steps (see jobs.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from poselab.app.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    STOPPED,
    Job,
    JobTable,
)
from poselab.errors import PoselabError
from poselab.labeler.lock import ServerLock

POLL_S = 0.3
STOP_GRACE_S = 30.0  # after SIGINT, how long a step may take to stop before SIGTERM
STARTUP_S = 60.0  # a job process takes its lock within this long of being launched


def _alive(folder: Path) -> bool:
    """Whether a job's process still holds its lock (it is running)."""
    lock = ServerLock(folder)
    try:
        lock.acquire()  # False (an unwritable folder) tells nothing: taken as ended
    except PoselabError:  # held: the job's process is alive
        return True
    lock.release()
    return False


def _starting(job: Job) -> bool:
    """A job launched moments ago whose process may not have taken its lock yet."""
    if not job.pid or not job.started or time.time() - job.started > STARTUP_S:
        return False
    try:
        os.kill(job.pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return False
    return True


def _signal_group(pid: int, signum: int) -> None:
    try:
        if os.name == "posix":
            os.killpg(pid, signum)
        else:  # pragma: no cover - Windows: CTRL_BREAK reaches the new process group
            os.kill(pid, signal.CTRL_BREAK_EVENT)
    except (ProcessLookupError, PermissionError):
        pass


class JobRunner:
    """The queue of a state folder: `submit`, `stop`, `start`, `shutdown` (see module doc)."""

    def __init__(self, table: JobTable, jobs_dir: str | Path):
        self.table = table
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen | None = None  # the running job, when started here
        self._stop_sent: dict[int, float] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="poselab-jobs", daemon=True)

    # ------------------------------------------------------------------ public
    def folder(self, job_id: int) -> Path:
        return self.jobs_dir / str(job_id)

    def start(self) -> None:
        with self._lock:
            self._recover()
        self._thread.start()

    def submit(self, kind: str, project: str, title: str, steps: list[list[str]],
               cwd: str | Path, meta: dict | None = None) -> Job:
        """Queue a job; it starts when every earlier job has ended."""
        job = self.table.add(kind, project, title, steps, {**(meta or {}), "cwd": str(cwd)})
        self._wake.set()
        return job

    def stop(self, job_id: int, reason: str = "stopped") -> Job:
        """Cancel a queued job, or interrupt a running one (it stops like after Ctrl+C)."""
        with self._lock:
            job = self.table.get(job_id)
            if job is None:
                raise PoselabError(f"no job {job_id}")
            if job.status == QUEUED:
                self.table.set_status_if(job_id, QUEUED, status=CANCELLED, ended=time.time(),
                                         note="removed from the queue")
            elif job.status == RUNNING and job.pid:
                self.table.update(job_id, stop_reason=reason)
                _signal_group(job.pid, signal.SIGINT)
                self._stop_sent.setdefault(job_id, time.monotonic())
            return self.table.get(job_id)

    def shutdown(self, interrupt: bool = True, timeout: float = 60.0) -> None:
        """Stop the thread; with `interrupt`, the running job too (waiting up to timeout)."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not interrupt:
            return
        running = self.table.with_status(RUNNING)
        for job in running:
            self.stop(job.id, reason="interrupted")
        deadline = time.monotonic() + timeout
        while running and time.monotonic() < deadline:
            with self._lock:
                running = [j for j in running if not self._check(j)]
            time.sleep(0.1)

    def progress(self, job: Job) -> dict:
        """{"step", "steps", "line"} of a running job ({} when it has none yet)."""
        try:
            return json.loads((self.folder(job.id) / "progress.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def log(self, job_id: int, tail: int = 65536) -> str:
        """The last `tail` bytes of a job's log."""
        path = self.folder(job_id) / "log.txt"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - tail))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while not self._closing:
            try:
                with self._lock:
                    self._tick()
            except Exception as exc:  # noqa: BLE001 - the queue must outlive one bad job
                print(f"poselab app: job runner: {type(exc).__name__}: {exc}", file=sys.stderr)
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _tick(self) -> None:
        running = [j for j in self.table.with_status(RUNNING) if not self._check(j)]
        if running or self._closing:
            return
        queued = self.table.with_status(QUEUED)
        if queued:
            self._launch(queued[0])

    def _launch(self, job: Job) -> None:
        folder = self.folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        cwd = job.meta.get("cwd") or os.getcwd()
        (folder / "job.json").write_text(json.dumps({"steps": job.steps, "cwd": cwd}),
                                         encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "110"}
        with open(folder / "runner.txt", "ab") as err:
            kwargs = ({"start_new_session": True} if os.name == "posix" else
                      {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP})
            proc = subprocess.Popen([sys.executable, "-m", "poselab.app.child", str(folder)],
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=cwd,
                                    env=env, **kwargs)
        if not self.table.set_status_if(job.id, QUEUED, status=RUNNING, started=time.time(),
                                        pid=proc.pid):
            _signal_group(proc.pid, signal.SIGINT)  # cancelled meanwhile
            proc.wait()
            return
        self._proc = proc

    def _check(self, job: Job) -> bool:
        """Look at a running job; True (and the table updated) when it has ended."""
        own = self._proc is not None and self._proc.pid == job.pid
        if own:
            if self._proc.poll() is None:
                self._escalate(job)
                return False
            self._proc = None
        elif (_alive(self.folder(job.id)) or _starting(job)) and not (
                self.folder(job.id) / "result.json").is_file():
            self._escalate(job)
            return False
        self._finish(job)
        return True

    def _escalate(self, job: Job) -> None:
        """A step that ignores the stop request for STOP_GRACE_S gets SIGTERM."""
        sent = self._stop_sent.get(job.id)
        if sent is not None and time.monotonic() - sent > STOP_GRACE_S and job.pid:
            _signal_group(job.pid, signal.SIGTERM)
            self._stop_sent[job.id] = float("inf")

    def _finish(self, job: Job) -> None:
        self._stop_sent.pop(job.id, None)
        job = self.table.get(job.id)
        try:
            result = json.loads((self.folder(job.id) / "result.json").read_text("utf-8"))
        except (OSError, ValueError):
            result = None
        if result is None:
            rc = None
            status = STOPPED if job.stop_reason == "stopped" else INTERRUPTED
            note = ("stopped" if status == STOPPED else
                    "the job's process ended without a result (killed, or the machine "
                    "restarted?)")
        else:
            rc = result.get("rc")
            n, step = len(job.steps), int(result.get("step", 0))
            if rc == 0:
                status, note = DONE, ""
            elif job.stop_reason == "interrupted":
                status, note = INTERRUPTED, "interrupted: the server stopped while it ran"
            elif job.stop_reason or result.get("interrupted"):
                status, note = STOPPED, "stopped"
            else:
                status = FAILED
                note = self._error_line(job.id) or f"step {step + 1}/{n} exited with {rc}"
        self.table.update(job.id, status=status, rc=rc, ended=time.time(), note=note)

    def _error_line(self, job_id: int) -> str:
        lines = [x.strip() for x in self.log(job_id, 16384).splitlines() if x.strip()]
        errors = [x for x in lines if x.startswith("error:")]
        return (errors or lines[-1:] or [""])[-1][:500]

    def _recover(self) -> None:
        """Jobs a previous server left running: adopt, finish or mark interrupted."""
        for job in self.table.with_status(RUNNING):
            self._check(job)
