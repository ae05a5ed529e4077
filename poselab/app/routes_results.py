"""Routes that show results: presets, training runs, and analyses of videos.

    GET /api/presets                                      presets + measured figures
    GET /api/projects/{pid}/runs                          run summaries (state, ETA, errors)
    GET /api/projects/{pid}/runs/{run}                    one run: options, metrics rows,
                                                          evaluation, image list
    GET /api/projects/{pid}/runs/{run}/files/{path}       learning curve, evaluation images
    GET /api/projects/{pid}/analyses                      every analysis of every video
    GET /api/projects/{pid}/analyses/{vid}/{h5}/outliers  frames to correct
    GET /api/projects/{pid}/analyses/{vid}/{h5}/plots/{name}   a trajectory plot (PNG)
    GET /api/projects/{pid}/analyses/{vid}/{h5}/report    the quality report (HTML, framed
                                                          by the page; no script may run)
    GET /api/projects/{pid}/analyses/{vid}/{h5}/player    labeled video: frames, fps, size
    GET /api/projects/{pid}/analyses/{vid}/{h5}/player/{index}  one frame as JPEG (the
                                                          labeled video, else the video)
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from poselab.app import runs
from poselab.app.context import Context
from poselab.app.paths import served_file
from poselab.app.results import analyses_of, find_analysis, outlier_frames
from poselab.app.web import integer, threaded

# The report is the engine's self-contained page: inline styles and data: images only. It
# is shown in a frame of the app's page, sandboxed (no script, no form, no navigation).
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              "frame-ancestors 'self'; sandbox")


def routes(ctx: Context) -> list[Route]:
    projects, players = ctx.projects, ctx.players

    async def presets(request: Request) -> Response:
        return await threaded(runs.presets)

    async def run_list(request: Request) -> Response:
        pid = request.path_params["pid"]

        def get() -> list[dict]:
            project = projects.open(pid)
            busy = ctx.busy_runs(str(projects.config(pid)))
            return [runs.run_summary(r, r.name in busy) for r in runs.run_dirs(project.root)]
        return await threaded(get)

    async def run_detail(request: Request) -> Response:
        pid, name = request.path_params["pid"], request.path_params["run"]

        def get() -> dict:
            project = projects.open(pid)
            run = runs.run_dir(project.root, name)
            return runs.run_detail(run, name in ctx.busy_runs(str(projects.config(pid))))
        return await threaded(get)

    async def run_file(request: Request) -> Response:
        pid, name = request.path_params["pid"], request.path_params["run"]

        def get():
            run = runs.run_dir(projects.open(pid).root, name)
            return runs.run_file(run, request.path_params["path"])
        path = await run_in_threadpool(get)
        return FileResponse(path, headers={"cache-control": "no-cache"})

    async def analyses(request: Request) -> Response:
        pid = request.path_params["pid"]

        def get() -> dict:
            project = projects.open(pid)
            videos = [{"id": i, "name": v.path.name, "key": v.key, "exists": v.exists,
                       "analyses": analyses_of(project, i) if v.exists else []}
                      for i, v in enumerate(project.videos)]
            finished = [r.name for r in runs.run_dirs(project.root)
                        if (r / "last.pt").is_file()]
            return {"videos": videos, "runs": finished}
        return await threaded(get)

    def _analysis(request: Request):
        project = projects.open(request.path_params["pid"])
        vid = integer(request.path_params["vid"], "video", 0, 100_000)
        video, h5, item = find_analysis(project, vid, request.path_params["h5"])
        return project, video, h5, item

    async def outliers(request: Request) -> Response:
        def get() -> dict:
            project, _, h5, _ = _analysis(request)
            return outlier_frames(h5, project.pcutoff)
        return await threaded(get)

    async def plot(request: Request) -> Response:
        def get():
            project, _, h5, item = _analysis(request)
            name = request.path_params["name"]
            if name not in item["plots"]:
                raise HTTPException(404, f"no plot {name!r}")
            return served_file(h5.parent / "plot-poses" / h5.stem / name, h5.parent,
                               (".png",))
        return FileResponse(await run_in_threadpool(get), headers={"cache-control": "no-cache"})

    async def report(request: Request) -> Response:
        def get():
            _, _, h5, item = _analysis(request)
            if not item["report"]:
                raise HTTPException(404, "no report for this analysis yet")
            return served_file(h5.parent / item["report"], h5.parent, (".html",))
        return FileResponse(await run_in_threadpool(get), media_type="text/html",
                            headers={"content-security-policy": REPORT_CSP,
                                     "cache-control": "no-cache"})

    def _player_source(request: Request):
        _, video, h5, item = _analysis(request)
        path = h5.parent / item["labeled_video"] if item["labeled_video"] else video.path
        return players.source(path), item["labeled_video"] is not None, path

    async def player(request: Request) -> Response:
        def get() -> dict:
            source, labeled, path = _player_source(request)
            info = source.info()
            return {"n_frames": info["n_frames"], "fps": info["fps"], "width": info["width"],
                    "height": info["height"], "labeled": labeled, "file": info["name"],
                    "version": path.stat().st_mtime_ns}  # frame URLs change with the file
        return await threaded(get)

    async def player_frame(request: Request) -> Response:
        index = integer(request.path_params["index"], "frame", 0, 10**9)

        def get() -> bytes:
            source, _, _ = _player_source(request)
            return source.jpeg(index)
        data = await run_in_threadpool(get)
        return Response(data, media_type="image/jpeg",
                        headers={"cache-control": "private, max-age=600"})

    base = "/api/projects/{pid}/analyses/{vid}/{h5}"
    return [
        Route("/api/presets", presets),
        Route("/api/projects/{pid}/runs", run_list),
        Route("/api/projects/{pid}/runs/{run}", run_detail),
        Route("/api/projects/{pid}/runs/{run}/files/{path:path}", run_file),
        Route("/api/projects/{pid}/analyses", analyses),
        Route(f"{base}/outliers", outliers),
        Route(f"{base}/plots/{{name}}", plot),
        Route(f"{base}/report", report),
        Route(f"{base}/player", player),
        Route(f"{base}/player/{{index}}", player_frame),
    ]
