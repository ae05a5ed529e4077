"""Routes of the Projects and Frames pages.

    GET  /api/state                            roots, known projects, version
    GET  /api/files?path=                      the file browser (folders inside the roots)
    POST /api/projects/open    {"config"}      open a config.yaml (inside the roots)
    POST /api/projects/create  {...}           create a project (see Projects.create)
    GET  /api/projects/{pid}[?brief=1]         `poselab info` facts, ids, run count (brief:
                                               name, config and videos only)
    POST /api/projects/{pid}/videos {"videos"} add videos (poselab add-videos)
    GET  /api/projects/{pid}/videos/{vid}/thumb[?full=1]   frame 0 as JPEG
    GET  /api/projects/{pid}/folders           labeled-data folders with their images
    GET  /api/projects/{pid}/folders/{folder}/images/{image}[?w=160]   an image (or a
                                               JPEG thumbnail w pixels wide)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import cv2
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from poselab import __version__
from poselab.app.context import Context
from poselab.app.paths import served_file
from poselab.app.web import body, integer, threaded
from poselab.io.info import IMAGE_SUFFIXES, list_images

_THUMBS: OrderedDict[tuple, bytes] = OrderedDict()
_THUMBS_LOCK = threading.Lock()


def _labeled_images(folder: Path, scorer: str) -> set[str]:
    """Images of a folder with at least one labeled keypoint."""
    from poselab.errors import PoselabError
    from poselab.io.labels import find_label_file, read_label_twins

    path = find_label_file(folder, scorer)
    if path is None:
        return set()
    try:
        df = read_label_twins(path)
    except PoselabError:
        return set()
    rows = df.notna().any(axis=1)
    return {str(key[-1]) if isinstance(key, tuple) else Path(str(key)).name
            for key, labeled in rows.items() if labeled}


def _thumbnail(path: Path, width: int) -> bytes:
    key = (str(path), path.stat().st_mtime_ns, width)
    with _THUMBS_LOCK:
        if key in _THUMBS:
            _THUMBS.move_to_end(key)
            return _THUMBS[key]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(404, f"{path.name}: unreadable image")
    if image.shape[1] > width:
        height = max(1, round(image.shape[0] * width / image.shape[1]))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    with _THUMBS_LOCK:
        _THUMBS[key] = data
        while len(_THUMBS) > 2000:
            _THUMBS.popitem(last=False)
    return data


def routes(ctx: Context) -> list[Route]:
    projects = ctx.projects

    async def state(request: Request) -> Response:
        def get() -> dict:
            return {"version": __version__, "roots": [str(r) for r in ctx.roots.folders],
                    "projects": projects.listing()}
        return await threaded(get)

    async def files(request: Request) -> Response:
        return await threaded(ctx.roots.listing, request.query_params.get("path") or None)

    async def open_project(request: Request) -> Response:
        payload = await body(request)
        config = ctx.roots.check(payload.get("config") or "", "config.yaml")
        return await threaded(lambda: {"id": projects.register(config)})

    async def create(request: Request) -> Response:
        payload = await body(request)
        return await threaded(lambda: {"id": projects.create(payload)})

    async def summary(request: Request) -> Response:
        if request.query_params.get("brief"):
            return await threaded(projects.brief, request.path_params["pid"])
        return await threaded(projects.summary, request.path_params["pid"])

    async def add_videos(request: Request) -> Response:
        payload = await body(request)
        videos = payload.get("videos")
        if not isinstance(videos, list) or not all(isinstance(v, str) for v in videos):
            raise HTTPException(400, "videos: a list of file paths")
        pid = request.path_params["pid"]
        return await threaded(lambda: {"added": projects.add_videos(
            pid, videos, bool(payload.get("copy_videos")))})

    async def thumb(request: Request) -> Response:
        vid = integer(request.path_params["vid"], "video", 0, 100_000)
        width = None if request.query_params.get("full") else 240
        data = await run_in_threadpool(projects.frame_jpeg, request.path_params["pid"], vid,
                                       width)
        return Response(data, media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=60"})

    def _folders(pid: str) -> list[dict]:
        project = projects.open(pid)
        out = []
        for folder in project.labeled_folders():
            images = list_images(folder)
            labeled = _labeled_images(folder, project.scorer)
            out.append({"name": folder.name, "images": images,
                        "labeled": [i for i in images if i in labeled]})
        return out

    async def folders(request: Request) -> Response:
        return await threaded(_folders, request.path_params["pid"])

    async def image(request: Request) -> Response:
        pid, name = request.path_params["pid"], request.path_params["image"]
        project = await run_in_threadpool(projects.open, pid)
        folder = {p.name: p for p in project.labeled_folders()}.get(
            request.path_params["folder"])
        if folder is None or name not in list_images(folder):
            raise HTTPException(404, f"no image {name!r} in that folder")
        path = served_file(folder / name, project.root, IMAGE_SUFFIXES)
        if "w" in request.query_params:
            width = integer(request.query_params["w"], "w", 16, 2000)
            data = await run_in_threadpool(_thumbnail, path, width)
            return Response(data, media_type="image/jpeg",
                            headers={"cache-control": "no-cache"})
        return FileResponse(path, headers={"cache-control": "no-cache"})

    return [
        Route("/api/state", state),
        Route("/api/files", files),
        Route("/api/projects/open", open_project, methods=["POST"]),
        Route("/api/projects/create", create, methods=["POST"]),
        Route("/api/projects/{pid}", summary),
        Route("/api/projects/{pid}/videos", add_videos, methods=["POST"]),
        Route("/api/projects/{pid}/videos/{vid}/thumb", thumb),
        Route("/api/projects/{pid}/folders", folders),
        Route("/api/projects/{pid}/folders/{folder}/images/{image}", image),
    ]
