"""The labeler's HTTP server: a Starlette app over the label stores, run by uvicorn.

Routes (all JSON unless noted; errors are 4xx JSON `{"error": message}`, never a crash):
    GET  /                                    the page (static/index.html)
    GET  /static/<file>                       page assets (JS, CSS), nothing else
    GET  /api/project                         bodyparts, colors, skeleton, folders + counts
    GET  /api/folders/<name>                  images, labels, predictions of one folder
    GET  /api/folders/<name>/status           version + whether the files changed on disk
    POST /api/folders/<name>/edits            {"edits": [{frame, bodypart, value}]} -> saved
    POST /api/folders/<name>/save             write the files now, without edits
    POST /api/folders/<name>/reload           re-read the files (after an outside change)
    GET  /api/folders/<name>/images/<image>   an image of the folder (names from the folder
                                              listing only, so no path reaches the disk)

Adding an API route: write an `async def` handler that does its disk work through
`run_in_threadpool`, add a `Route` in `create_app`, and a TestClient test in
tests/labeler/test_labeler_api.py.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from poselab.errors import PoselabError
from poselab.io.project import open_project
from poselab.labeler.security import Guard, is_loopback, new_token
from poselab.labeler.store import BadEdit, ConflictError, FolderStore, ReadOnlyError, parse_edits

STATIC = Path(__file__).parent / "static"
DEFAULT_PORT = 8765
MAX_BODY = 8 * 1024 * 1024


class Labeler:
    """The project being labeled and one lazily opened FolderStore per labeled-data folder."""

    def __init__(self, config: str | os.PathLike, folder: str | None = None):
        self.project = open_project(config)
        if not self.project.labeled_folders():
            raise PoselabError(
                f"{self.project.labeled_data_dir}: no labeled-data/<video> folders yet; "
                "extract frames first"
            )
        self.initial = self._resolve_folder(folder) if folder else None
        self._stores: dict[str, FolderStore] = {}
        self._lock = threading.Lock()

    def folder_paths(self) -> dict[str, Path]:
        return {p.name: p for p in self.project.labeled_folders()}

    def _resolve_folder(self, folder: str) -> str:
        """`labeled-data/<stem>`, `<stem>` or a path -> the folder's name (validated)."""
        names = self.folder_paths()
        given = Path(str(folder).replace("\\", "/").rstrip("/"))
        parent_ok = (given.parent in (Path("."), Path("labeled-data"))
                     or given.parent.resolve() == self.project.labeled_data_dir.resolve())
        if given.name not in names or not parent_ok:
            raise PoselabError(f"--folder {folder}: not a folder of "
                               f"{self.project.labeled_data_dir} (have: {', '.join(names)})")
        return given.name

    def store(self, name: str) -> FolderStore:
        """The store of folder `name`; 404 for anything that is not a labeled-data folder."""
        with self._lock:
            if name not in self._stores:
                path = self.folder_paths().get(name)
                if path is None:
                    raise HTTPException(404, f"no labeled-data folder named {name!r}")
                p = self.project
                self._stores[name] = FolderStore(path, p.scorer, p.bodyparts)
            return self._stores[name]

    def project_json(self) -> dict:
        from poselab.viz.plots import bodypart_colors, named_color

        p = self.project
        bgr = bodypart_colors(str(p.get("colormap", "rainbow")), len(p.bodyparts))
        folders = []
        for name in self.folder_paths():
            store = self.store(name)
            folders.append({"name": name, **store.counts(), "error": store.error})
        names = [f["name"] for f in folders]
        return {
            "task": p.task,
            "scorer": p.scorer,
            "root": str(p.root),
            "bodyparts": p.bodyparts,
            "colors": [_hex(c) for c in bgr],
            "skeleton": [list(pair) for pair in p.skeleton],
            "skeleton_color": _hex(named_color(str(p.get("skeleton_color", "black")))),
            "pcutoff": p.pcutoff,
            "folders": folders,
            "initial_folder": self.initial or (names[0] if names else None),
        }


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def _folder_json(store: FolderStore) -> dict:
    with store.lock:
        values = store.frame_values()
        return {
            "name": store.name,
            "images": store.images,
            "values": {f: {b: (list(v) if isinstance(v, tuple) else v) for b, v in e.items()}
                       for f, e in values.items()},
            "version": store.version,
            "label_file": store.label_file(),
            "notices": list(store.notices),
            "error": store.error,
            "counts": store.counts(),
            "predictions": store.predictions(),
            "disk_changed": store.disk_changed(),
        }


async def _json_body(request: Request) -> object:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise HTTPException(415, "expected Content-Type: application/json")
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        raise HTTPException(400, "malformed Content-Length") from None
    if declared > MAX_BODY:
        raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"request body over {MAX_BODY} bytes")
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise HTTPException(400, f"malformed JSON: {exc}") from None


def create_app(config: str | os.PathLike, folder: str | None = None,
               token: str | None = None) -> Starlette:
    """The labeler as an ASGI app (what `serve` runs; tests drive it with TestClient).

    Args:
        config: the project's config.yaml (or its folder).
        folder: the folder the page opens first (`labeled-data/<stem>` or `<stem>`).
        token: when set, every request must carry it (see security.Guard); None = loopback
            only.

    Raises:
        PoselabError: bad config, no labeled-data folders, unknown folder.
    """
    labeler = Labeler(config, folder)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def project(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(labeler.project_json))

    async def folder_get(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])

        def load() -> dict:
            with store.lock:
                # Nothing unsaved lives in memory, so an outside change can be picked up as is.
                if store.disk_changed():
                    store.reload()
                store.refresh_images()  # frames extracted while the server runs
                return _folder_json(store)

        return JSONResponse(await run_in_threadpool(load))

    async def status(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        changed = await run_in_threadpool(store.disk_changed)
        return JSONResponse({"version": store.version, "disk_changed": changed})

    async def edits(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        payload = await _json_body(request)
        parsed = parse_edits(payload, set(store.images), store.bodyparts)

        def apply() -> dict:
            return {"version": store.apply(parsed), "counts": store.counts(), "saved": True}

        return JSONResponse(await run_in_threadpool(apply))

    async def save(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])

        def save() -> dict:
            return {"version": store.save(), "counts": store.counts(), "saved": True}

        return JSONResponse(await run_in_threadpool(save))

    async def reload(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        await run_in_threadpool(store.reload)
        return JSONResponse(await run_in_threadpool(_folder_json, store))

    async def image(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        name = request.path_params["image"]
        path = store.folder / name
        # Only names the folder listing produced reach the disk.
        if name not in store.images or not path.is_file():
            raise HTTPException(404, f"no image {name!r} in {store.name}")
        return FileResponse(path, headers={"cache-control": "no-cache"})

    async def not_found(request: Request) -> Response:
        raise HTTPException(404, f"not found: {request.url.path}")

    routes = [
        Route("/", index),
        Mount("/static", StaticFiles(directory=STATIC)),
        Route("/api/project", project),
        Route("/api/folders/{folder}", folder_get),
        Route("/api/folders/{folder}/status", status),
        Route("/api/folders/{folder}/edits", edits, methods=["POST"]),
        Route("/api/folders/{folder}/save", save, methods=["POST"]),
        Route("/api/folders/{folder}/reload", reload, methods=["POST"]),
        Route("/api/folders/{folder}/images/{image}", image),
        Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ]
    handlers = {
        HTTPException: _http_error,
        BadEdit: _error(400),
        ConflictError: _error(409),
        ReadOnlyError: _error(409),
        PoselabError: _error(400),
        Exception: _error(500),
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.labeler = labeler
    app.add_middleware(Guard, token=token)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def _error(status: int) -> Callable:
    async def handler(request: Request, exc: Exception) -> Response:
        kind = {409: "conflict"}.get(status, "error")
        message = str(exc) if status != 500 else f"internal error: {type(exc).__name__}: {exc}"
        return JSONResponse({"error": message, "kind": kind}, status_code=status)

    return handler


# ---------------------------------------------------------------------------- running
def _bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port None = 8765 when free, else any free port."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    if not infos:
        raise PoselabError(f"--host {host}: cannot resolve")
    family, _, _, _, addr = infos[0]
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
        port: TCP port (default 8765, or a free one when it is taken).
        open_browser: open the page in the local browser when there is a display.
        echo: where the URL and instructions are printed.
    """
    import uvicorn

    token = None if is_loopback(host) else new_token()
    app = create_app(config, folder, token)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    url, tunnel = _urls(host, port, token, sock.getsockname()[0])
    project = app.state.labeler.project
    echo(f"poselab labeler: {project.task} ({len(project.bodyparts)} bodyparts) at {url}")
    if token:
        echo(f"  on this machine: http://127.0.0.1:{port}/?token={token}")
        echo("  anyone who can reach this address and has the token can edit the labels")
    echo(f"  remote machine? run on your computer:  {tunnel}")
    echo(f"  then open http://127.0.0.1:{port}/{'?token=' + token if token else ''}")
    echo("  every edit is saved as you go; press Ctrl+C here to stop")
    if open_browser and _can_open_browser():
        threading.Timer(0.8, webbrowser.open, [url if not token else
                                               f"http://127.0.0.1:{port}/?token={token}"]).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    server.run(sockets=[sock])


class BackgroundServer:
    """The labeler on a free port in a daemon thread (tests, benchmarks, notebooks).

    Usage: `with BackgroundServer(config) as url: ...`.
    """

    def __init__(self, config: str | os.PathLike, folder: str | None = None,
                 host: str = "127.0.0.1", token: str | None = None):
        import uvicorn

        self.app = create_app(config, folder, token)
        self.sock = _bind(host, 0)
        self.port = self.sock.getsockname()[1]
        query = f"?token={token}" if token else ""
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}/{query}"
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

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
