"""One labeler per project: an OS-level lock held for the server's whole life.

Two `poselab label` servers on one project would each keep their own copy of the labels and
overwrite the other's acknowledged saves. `ServerLock` takes an exclusive, non-blocking lock
on `<project>/.poselab-label.lock` (flock on POSIX, msvcrt on Windows). The OS drops it when
the process ends, however it ends (Ctrl+C, crash, SIGKILL), so a stale file never blocks
anyone. The holder writes its PID and URL into the file so that a second server can say
where the first one is.

Extending: anything else a second server should be told goes into `describe`'s JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from poselab.errors import PoselabError

LOCK_NAME = ".poselab-label.lock"
_INFO_OFFSET = 1 << 20  # Windows locks a byte range: keep it away from the readable JSON

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _INFO_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, _INFO_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        # flock locks belong to the open file, so two servers in ONE process also exclude
        # each other (fcntl/lockf record locks would not).
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ServerLock:
    """The project's labeler lock. `acquire()` or PoselabError; `release()` when done.

    Args:
        root: the project folder (where config.yaml is).
    """

    def __init__(self, root: str | os.PathLike):
        self.path = Path(root) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock.

        Returns:
            True when held; False when the project folder is not writable (nothing can be
            saved then either, so there is nothing to protect).

        Raises:
            PoselabError: another labeler holds it; the message names its URL and PID.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return False
        if not _try_lock(fd):
            os.close(fd)
            other = self.holder()
            where = f" at {other['url']}" if other.get("url") else ""
            pid = f" (PID {other['pid']})" if other.get("pid") else ""
            raise PoselabError(
                f"another poselab labeler{pid} is already serving this project{where}: use "
                f"that page, or stop it (Ctrl+C) first. Two servers on one project would "
                f"overwrite each other's labels (lock: {self.path})")
        self.fd = fd
        self.describe()
        return True

    def describe(self, url: str | None = None) -> None:
        """Record who holds the lock (PID, and the URL once the socket is bound)."""
        if self.fd is None:
            return
        data = json.dumps({"pid": os.getpid(), "url": url}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0) if hasattr(os, "pwrite") else self._write_at0(data)

    def _write_at0(self, data: bytes) -> None:  # pragma: no cover - Windows
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, data)

    def holder(self) -> dict:
        """What the current holder wrote ({} when unreadable or still empty)."""
        try:
            data = json.loads(self.path.read_bytes()[:4096] or b"{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
            _unlock(self.fd)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> ServerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
