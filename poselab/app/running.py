"""Running the app: `serve` (`poselab app`) and `BackgroundApp` (tests, benchmarks).

Addresses, ports, the printed URL and SSH tunnel command work as in `poselab label`
(poselab.labeler.running). One app per state folder: its job queue is the machine's queue
for this user, so a second `poselab app` on the same state folder stops with an error
naming the first one's URL (the lock is poselab.labeler.lock.ServerLock on the folder).

When the server stops (Ctrl+C), the running job is interrupted the way Ctrl+C stops it in a
terminal (a training keeps its last finished epoch; the Train page offers to resume it);
queued jobs wait for the next start. If the server is killed instead, the job goes on and
the next start adopts it.

Extending: a new startup check goes before `create_app` (cheap) or after the lock.
"""

from __future__ import annotations

import os
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path

from poselab.app.server import create_app, default_state_dir
from poselab.errors import PoselabError
from poselab.labeler.lock import ServerLock
from poselab.labeler.running import _bind, _can_open_browser, _check_address, _urls
from poselab.labeler.security import is_loopback, new_token


def _lock_state(state: Path) -> ServerLock:
    state.mkdir(parents=True, exist_ok=True)
    lock = ServerLock(state)
    try:
        lock.acquire()
    except PoselabError:
        other = lock.holder()
        where = f" at {other['url']}" if other.get("url") else ""
        raise PoselabError(
            f"another poselab app (PID {other.get('pid', '?')}) is already running{where} "
            f"with the job queue in {state}: use that page, or stop it (Ctrl+C) first") from None
    return lock


def serve(roots: list[str | os.PathLike], configs: list[str | os.PathLike] = (),
          host: str = "127.0.0.1", port: int | None = None, open_browser: bool = True,
          state_dir: str | os.PathLike | None = None,
          echo: Callable[[str], None] = print) -> None:
    """Serve the app until Ctrl+C (`poselab app`).

    Args:
        roots: folders the page may browse (projects, videos).
        configs: projects to list from the start.
        host, port: as `poselab label` (anything but loopback requires the token URL).
        open_browser: open the page in the local browser when there is a display.
        state_dir: job table and logs (default: server.default_state_dir()).
        echo: where the URL and instructions are printed.

    Raises:
        PoselabError: bad port, host, root or config; another app on this state folder.
    """
    import uvicorn

    _check_address(host, port)
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    lock = _lock_state(state)
    app = None
    try:
        token = None if is_loopback(host) else new_token()
        app = create_app(roots, configs, state, token)
        sock = _bind(host, port)
        port = sock.getsockname()[1]
        url, tunnel = _urls(host, port, token, sock.getsockname()[0])
        lock.describe(url.split("?")[0])
        app.state.ctx.labelers.url = url.split("?")[0]
        echo(f"poselab app at {url}")
        echo(f"  folders it may open: {', '.join(str(r) for r in app.state.ctx.roots.folders)}")
        echo(f"  jobs and logs: {state}")
        if token:
            echo(f"  on this machine: http://127.0.0.1:{port}/?token={token}")
            echo("  anyone who can reach this address and has the token can use the app")
        echo(f"  remote machine? run on your computer:  {tunnel}")
        echo(f"  then open http://127.0.0.1:{port}/{'?token=' + token if token else ''}")
        echo("  press Ctrl+C here to stop (a running job is interrupted; resume it later)")
        if open_browser and _can_open_browser():
            opened = url if not token else f"http://127.0.0.1:{port}/?token={token}"
            threading.Timer(0.8, webbrowser.open, [opened]).start()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                               lifespan="off"))
        server.run(sockets=[sock])
    finally:
        if app is not None:
            echo("stopping: interrupting the running job, if any ...")
            app.state.ctx.close()
        lock.release()


class BackgroundApp:
    """The app on a free port in a daemon thread (tests, benchmarks, notebooks).

    Usage: `with BackgroundApp([root], state_dir=...) as url: ...`. `stop()` interrupts
    the running job as Ctrl+C on `poselab app` does; `stop(interrupt_jobs=False)` leaves it
    running, as a killed server would.
    """

    def __init__(self, roots: list[str | os.PathLike], configs: list[str | os.PathLike] = (),
                 state_dir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 token: str | None = None):
        import uvicorn

        state = Path(state_dir) if state_dir is not None else default_state_dir()
        self.lock = _lock_state(state)
        try:
            self.app = create_app(roots, configs, state, token)
            self.sock = _bind(host, 0)
        except BaseException:
            self.lock.release()
            raise
        self.port = self.sock.getsockname()[1]
        query = f"?token={token}" if token else ""
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/{query}"
        self.lock.describe(self.url.split("?")[0])
        self.ctx.labelers.url = self.url.split("?")[0]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    @property
    def ctx(self):
        return self.app.state.ctx

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self, interrupt_jobs: bool = True) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
        self.ctx.close(interrupt_jobs)
        self.lock.release()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
