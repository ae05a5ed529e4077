"""The labeler's HTTP API: a Starlette app over the label stores and the project's videos.

Routes (all JSON unless noted; errors are 4xx JSON `{"error": message}`, never a crash):
    GET  /                                    the page (static/index.html)
    GET  /static/<file>                       page assets (JS, CSS), nothing else
    GET  /api/project                         bodyparts, colours, marker size, folders + counts,
                                              videos
    GET  /api/folders/<name>                  images, labels, predictions, suggestions
    GET  /api/folders/<name>/status           version + whether the files changed on disk
    POST /api/folders/<name>/edits            {"edits": [{frame, bodypart, value}], "client",
                                              "seq"} -> saved (a stale request is skipped)
    POST /api/folders/<name>/save             write the files now, without edits
    POST /api/folders/<name>/reload           re-read the files (after an outside change)
    POST /api/folders/<name>/extract          {"n", "method"}: extract frames of the folder's
                                              video, as `poselab extract-frames` does
    GET  /api/folders/<name>/images/<image>   an image of the folder (names from the folder
                                              listing only; regular files inside the project)
    GET  /api/videos/<id>                     frame count, size, frames already extracted
    GET  /api/videos/<id>/frames/<index>      that frame as JPEG (decoded by VideoReader)
    POST /api/videos/<id>/frames/<index>/add  write it to labeled-data like extract-frames
    GET  /api/videos/<id>/track?start=&stop=  analysis predictions of a frame range

Adding an API route: write an `async def` handler that does its disk work through
`run_in_threadpool`, add a `Route` in `create_app`, and a TestClient test in
tests/labeler/test_labeler_api.py. Running the app: running.py.
"""

from __future__ import annotations

import json
import os
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
from poselab.labeler.edits import BadEdit, parse_client, parse_edits
from poselab.labeler.security import Guard
from poselab.labeler.session import Labeler
from poselab.labeler.store import ConflictError, ReadOnlyError

STATIC = Path(__file__).parent / "static"
MAX_BODY = 8 * 1024 * 1024
MAX_EXTRACT = 500  # frames one click may extract


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
    except RecursionError:  # e.g. 200,000 nested brackets
        raise HTTPException(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:
        raise HTTPException(400, f"malformed JSON: {exc}") from None


def _int_param(request: Request, name: str, default: int | None = None) -> int:
    text = request.path_params.get(name, request.query_params.get(name))
    if text is None and default is not None:
        return default
    try:
        return int(text)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{name} must be an integer, not {text!r}") from None


def create_app(config: str | os.PathLike, folder: str | None = None,
               token: str | None = None) -> Starlette:
    """The labeler as an ASGI app (what `serve` runs; tests drive it with TestClient).

    Args:
        config: the project's config.yaml (or its folder).
        folder: the folder the page opens first (`labeled-data/<stem>` or `<stem>`).
        token: when set, every request must carry it (see security.Guard); None = loopback
            only.

    Raises:
        PoselabError: bad config, no labeled-data folders nor videos, unknown folder.
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
                return labeler.folder_json(store)

        return JSONResponse(await run_in_threadpool(load))

    async def status(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        changed = await run_in_threadpool(store.disk_changed)
        return JSONResponse({"version": store.version, "disk_changed": changed})

    async def edits(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        payload = await _json_body(request)

        def apply() -> dict:
            with store.lock:
                parsed = parse_edits(payload, set(store.images), store.bodyparts,
                                     store.image_size)
                client, seq = parse_client(payload)
                version = store.apply(parsed, client, seq)
                return {"version": store.version, "counts": store.counts(), "saved": True,
                        "stale": version is None}

        return JSONResponse(await run_in_threadpool(apply))

    async def save(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])

        def save() -> dict:
            return {"version": store.save(), "counts": store.counts(), "saved": True}

        return JSONResponse(await run_in_threadpool(save))

    async def reload(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        await run_in_threadpool(store.reload)
        return JSONResponse(await run_in_threadpool(labeler.folder_json, store))

    async def extract(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        payload = await _json_body(request)
        if not isinstance(payload, dict):
            raise HTTPException(400, 'expected {"n": number of frames, "method": "kmeans"}')
        n, method = payload.get("n", 20), payload.get("method", "kmeans")
        if type(n) is not int or not 1 <= n <= MAX_EXTRACT:
            raise HTTPException(400, f"n must be an integer in 1..{MAX_EXTRACT}")
        video = labeler.video_of(store.name)
        if video is None:
            raise HTTPException(409, f"no video of config.yaml's video_sets is named "
                                     f"{store.name}.*: add it with `poselab add-videos`")

        def run() -> dict:
            from poselab.io.frames import extract_frames

            with video.lock:  # it writes images only: saves of the folder go on meanwhile
                extract_frames(labeler.project.config_path, [video.video.key], n, str(method),
                               progress=False)
            with store.lock:
                store.refresh_images()
                return labeler.folder_json(store)

        return JSONResponse(await run_in_threadpool(run))

    async def image(request: Request) -> Response:
        store = labeler.store(request.path_params["folder"])
        path = labeler.image_file(store, request.path_params["image"])
        return FileResponse(path, headers={"cache-control": "no-cache"})

    async def video_info(request: Request) -> Response:
        video = labeler.video(request.path_params["video"])
        return JSONResponse(await run_in_threadpool(video.info))

    async def video_frame(request: Request) -> Response:
        video = labeler.video(request.path_params["video"])
        data = await run_in_threadpool(video.jpeg, _int_param(request, "index"))
        return Response(data, media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=3600"})

    async def video_add(request: Request) -> Response:
        video = labeler.video(request.path_params["video"])
        index = _int_param(request, "index")

        def add() -> dict:
            name, created = video.add(index)
            folder = video.folder.name
            if folder in labeler.folder_paths():
                labeler.store(folder).refresh_images()
            return {"folder": folder, "image": name, "created": created}

        return JSONResponse(await run_in_threadpool(add))

    async def video_track(request: Request) -> Response:
        video = labeler.video(request.path_params["video"])
        start = _int_param(request, "start", 0)
        stop = _int_param(request, "stop", start + 1)
        if stop - start > 10_000:
            raise HTTPException(400, "at most 10000 frames per track request")
        return JSONResponse(await run_in_threadpool(video.track, start, stop))

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
        Route("/api/folders/{folder}/extract", extract, methods=["POST"]),
        Route("/api/folders/{folder}/images/{image}", image),
        Route("/api/videos/{video}", video_info),
        Route("/api/videos/{video}/frames/{index}", video_frame),
        Route("/api/videos/{video}/frames/{index}/add", video_add, methods=["POST"]),
        Route("/api/videos/{video}/track", video_track),
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

