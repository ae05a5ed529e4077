"""Running the labeler: `serve` (`poselab label`) and `BackgroundServer` (tests, notebooks).

Both check the address first (port range, a host name that resolves: one-line errors), take
the project's ServerLock (one labeler per project, for the server's whole life), bind the
socket, and run uvicorn on it. `serve` prints the URL and the SSH tunnel command.

Extending: a new startup check goes into `_check_address` (cheap, before any work) or after
the lock (anything that touches the project's files).
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable

from poselab.errors import PoselabError
from poselab.labeler.lock import ServerLock
from poselab.labeler.security import is_loopback, new_token
from poselab.labeler.server import create_app

DEFAULT_PORT = 8765


def _check_address(host: str, port: int | None) -> tuple:
    """The address to bind host to (getaddrinfo's first answer); PoselabError when the port
    is out of range or the name does not resolve."""
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 0 <= port <= 65535):
        raise PoselabError(f"--port {port}: must be a number from 0 to 65535 (0 = any free "
                           "port)")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise PoselabError(f"--host {host}: cannot resolve this name ({why}); use an address "
                           "of this machine, e.g. 127.0.0.1") from None
    if not infos:
        raise PoselabError(f"--host {host}: cannot resolve this name")
    family, _, _, _, addr = infos[0]
    return family, addr


def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port None = 8765 when free, else any free port."""
    family, addr = _check_address(host, port)
    for candidate in ([port] if port is not None else [DEFAULT_PORT, 0]):
        sock = socket.socket(family, socket.SOCK_STREAM)
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((addr[0], candidate, *addr[2:]))
        except OSError as exc:
            sock.close()
            if port is None and candidate == DEFAULT_PORT:
                continue
            raise PoselabError(f"cannot listen on {host}:{candidate} ({exc.strerror}); "
                               "choose another --port") from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise AssertionError("unreachable")


def _urls(host: str, port: int, token: str | None, bound: str) -> tuple[str, str]:
    """(URL to open, SSH tunnel command for a remote machine); `bound` = the socket's address."""
    query = f"?token={token}" if token else ""
    shown = host if host not in ("0.0.0.0", "::", "") else socket.gethostname()
    shown = f"[{shown}]" if ":" in shown else shown
    # The tunnel's far end must be an address the socket accepts ('localhost' may be ::1).
    target = bound if is_loopback(bound) else ("::1" if ":" in bound else "127.0.0.1")
    target = f"[{target}]" if ":" in target else target
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "user"
    tunnel = f"ssh -N -L {port}:{target}:{port} {user}@{socket.gethostname()}"
    return f"http://{shown}:{port}/{query}", tunnel


def _can_open_browser() -> bool:
    # On a headless or SSH session webbrowser.open would start a text browser in the terminal.
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def serve(config: str | os.PathLike, folder: str | None = None, host: str = "127.0.0.1",
          port: int | None = None, open_browser: bool = True,
          echo: Callable[[str], None] = print) -> None:
    """Serve the labeling page until Ctrl+C (`poselab label`).

    Args:
        config: the project's config.yaml (or its folder).
        folder: the folder to open first (`labeled-data/<stem>`).
        host: bind address; anything but loopback requires the printed token URL.
        port: TCP port 0-65535 (default 8765, or a free one when it is taken; 0 = any).
        open_browser: open the page in the local browser when there is a display.
        echo: where the URL and instructions are printed.

    Raises:
        PoselabError: bad port or host, bad project, or another labeler serves this project.
    """
    import uvicorn

    _check_address(host, port)
    token = None if is_loopback(host) else new_token()
    app = create_app(config, folder, token)
    project = app.state.labeler.project
    lock = ServerLock(project.root)
    if not lock.acquire():
        echo(f"  warning: cannot create {lock.path} (read-only project?); make sure no other "
             "labeler serves this project")
    try:
        sock = _bind(host, port)
        port = sock.getsockname()[1]
        url, tunnel = _urls(host, port, token, sock.getsockname()[0])
        lock.describe(url.split("?")[0])  # a second server names this one; never the token
        echo(f"poselab labeler: {project.task} ({len(project.bodyparts)} bodyparts) at {url}")
        if token:
            echo(f"  on this machine: http://127.0.0.1:{port}/?token={token}")
            echo("  anyone who can reach this address and has the token can edit the labels")
        echo(f"  remote machine? run on your computer:  {tunnel}")
        echo(f"  then open http://127.0.0.1:{port}/{'?token=' + token if token else ''}")
        echo("  every edit is saved as you go; press Ctrl+C here to stop")
        if open_browser and _can_open_browser():
            opened = url if not token else f"http://127.0.0.1:{port}/?token={token}"
            threading.Timer(0.8, webbrowser.open, [opened]).start()
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                               lifespan="off"))
        server.run(sockets=[sock])
    finally:
        app.state.labeler.close()
        lock.release()


class BackgroundServer:
    """The labeler on a free port in a daemon thread (tests, benchmarks, notebooks).

    Usage: `with BackgroundServer(config) as url: ...`. It holds the project's lock like
    `poselab label` does, so it refuses a project that another labeler serves.
    """

    def __init__(self, config: str | os.PathLike, folder: str | None = None,
                 host: str = "127.0.0.1", token: str | None = None):
        import uvicorn

        self.app = create_app(config, folder, token)
        self.lock = ServerLock(self.app.state.labeler.project.root)
        self.lock.acquire()
        try:
            self.sock = _bind(host, 0)
        except BaseException:
            self.lock.release()
            raise
        self.port = self.sock.getsockname()[1]
        query = f"?token={token}" if token else ""
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/{query}"
        self.lock.describe(self.url.split("?")[0])
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the labeler server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
        self.app.state.labeler.close()
        self.lock.release()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
