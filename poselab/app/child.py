"""The process that runs one job: `python -m poselab.app.child <job folder>`.

It runs the job's steps (`poselab ...` command lines from `<job folder>/job.json`) one after
the other, each as its own `python -m poselab` process, and stops at the first that fails.
It outlives the server that started it (its own session), so a job survives a server that
was killed; what it leaves in the job folder lets any later server know how it went:

- `log.txt`: every output line of every step (progress bars left out).
- `progress.json`: {"step", "steps", "line"}: the step running and the latest progress-bar
  line (tqdm), rewritten at most a few times a second.
- `result.json`: {"rc", "step", "interrupted"}, written once at the end.
- `.poselab-label.lock`: an OS lock held for the whole run (poselab.labeler.lock), so a
  server can tell a running job from one whose process is gone, whatever the PID became.

The steps see a pseudo-terminal on POSIX: the engine's progress bars show only on a terminal,
and this is how the page gets them without any change to the commands. SIGINT (the Stop
button, sent to the whole process group) reaches the running step, which stops cleanly as
after Ctrl+C (training keeps its last finished epoch); no later step starts.

Extending: another file for the server goes beside `progress.json`, written atomically.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from poselab.io.fileio import atomic_write_text

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
PROGRESS_EVERY = 0.25  # seconds between progress.json writes
MAX_LOG = 20 * 1024 * 1024  # a runaway step cannot fill the disk through its log


class _Output:
    """Splits a step's output into log lines and progress-bar updates."""

    def __init__(self, folder: Path, step: int, steps: int):
        self.folder, self.step, self.steps = folder, step, steps
        self.log = open(folder / "log.txt", "a", encoding="utf-8", errors="replace")
        self.pending = ""
        self.line = ""
        self.written = 0.0

    def feed(self, text: str) -> None:
        text = ANSI.sub("", self.pending + text.replace("\r\n", "\n"))
        parts = re.split(r"([\r\n])", text)
        self.pending = parts.pop()  # an unfinished line waits for the next chunk
        for body, end in zip(parts[::2], parts[1::2], strict=True):
            if end == "\r":  # a progress bar redrawing itself
                if body.strip():
                    self.line = body.strip()
            elif body.strip() or end == "\n":
                self._write_log(body + "\n")
        self.progress()

    def _write_log(self, text: str) -> None:
        if self.log.tell() > MAX_LOG:
            return
        self.log.write(text)
        self.log.flush()

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.written >= PROGRESS_EVERY:
            self.written = now
            write_json(self.folder / "progress.json",
                       {"step": self.step, "steps": self.steps, "line": self.line})

    def close(self) -> None:
        if self.pending.strip():
            self._write_log(ANSI.sub("", self.pending) + "\n")
        self.progress(force=True)
        self.log.close()


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data))


def _run_step(argv: list[str], out: _Output, cwd: str) -> int:
    cmd = [sys.executable, "-m", "poselab", *argv]
    out._write_log(f"$ poselab {' '.join(argv)}\n")
    if os.name != "posix":  # no pseudo-terminal: plain output, no progress bars
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=cwd)
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            out.feed(chunk.decode("utf-8", "replace"))
        return proc.wait()
    import fcntl
    import pty
    import struct
    import termios
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)  # no "\n" -> "\r\n" translation, no echo
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 110, 0, 0))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                cwd=cwd)
    finally:
        os.close(slave)
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except InterruptedError:
                continue
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            out.feed(chunk.decode("utf-8", "replace"))
    finally:
        os.close(master)
    while True:
        try:
            return proc.wait()
        except InterruptedError:
            continue


def main(folder: str) -> int:
    from poselab.labeler.lock import ServerLock

    job_dir = Path(folder)
    lock = ServerLock(job_dir)
    lock.acquire()
    interrupted = False

    def on_signal(signum, frame) -> None:
        # The step got the same signal (one process group) and stops itself; this process
        # only has to start no further step.
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    steps, rc, step = job["steps"], 0, 0
    try:
        for step, argv in enumerate(steps):
            if interrupted:
                break
            out = _Output(job_dir, step, len(steps))
            try:
                rc = _run_step(argv, out, job["cwd"])
            finally:
                out.close()
            if rc != 0:
                break
        write_json(job_dir / "result.json", {"rc": rc, "step": step,
                                             "interrupted": interrupted})
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1]))
    except KeyboardInterrupt:  # stopped while starting, before the handler was installed
        write_json(Path(sys.argv[1]) / "result.json", {"rc": 130, "step": 0,
                                                       "interrupted": True})
        sys.exit(130)
