"""Routes of the job queue and of the pages that start jobs (Frames, Train, Analyze).

    GET  /api/jobs[?project=pid]            jobs, newest first, with progress when running
    GET  /api/jobs/{id}                     one job
    GET  /api/jobs/{id}/log                 the end of its log (text)
    POST /api/jobs/{id}/stop                cancel (queued) or interrupt (running)
    POST /api/projects/{pid}/extract        {"videos", "n", "method", "start", "stop",
                                             "crop", "seed"} -> job
    POST /api/projects/{pid}/train          {"preset", "backbone", "weights", "epochs",
                                             "max_minutes", "sets"} -> job
    POST /api/projects/{pid}/runs/{run}/resume     {"epochs"} -> job
    POST /api/projects/{pid}/runs/{run}/evaluate   -> job
    POST /api/projects/{pid}/analyze        {"run", "videos", "report"} -> one job per video
    POST /api/projects/{pid}/analyses/{vid}/{h5}/outliers/extract   {"n"} -> job
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from poselab.app import commands
from poselab.app.context import Context
from poselab.app.jobs import RUNNING, Job
from poselab.app.projects import project_id
from poselab.app.results import find_analysis
from poselab.app.web import answer, body, integer, threaded


def routes(ctx: Context) -> list[Route]:
    runner, projects = ctx.runner, ctx.projects
    pids = {}  # config path -> project id, for the job list

    def job_json(job: Job) -> dict:
        out = job.to_json()
        out.pop("steps")
        out["commands"] = [" ".join(["poselab", *s]) for s in job.steps]
        out["progress"] = runner.progress(job) if job.status == RUNNING else {}
        if job.project not in pids:
            pids[job.project] = project_id(Path(job.project))
        out["project_id"] = pids[job.project]
        return out

    def _job(request: Request) -> Job:
        job = ctx.table.get(integer(request.path_params["id"], "job", 0, 2**62))
        if job is None:
            raise HTTPException(404, "no such job")
        return job

    async def jobs(request: Request) -> Response:
        pid = request.query_params.get("project")

        def get() -> list[dict]:
            config = str(projects.config(pid)) if pid else None
            return [job_json(j) for j in ctx.table.list(config, limit=100)]
        return await threaded(get)

    async def job(request: Request) -> Response:
        return answer(job_json(await run_in_threadpool(_job, request)))

    async def log(request: Request) -> Response:
        job = await run_in_threadpool(_job, request)
        tail = integer(request.query_params.get("tail"), "tail", 1, 4 << 20, default=65536)
        return PlainTextResponse(await run_in_threadpool(runner.log, job.id, tail))

    async def stop(request: Request) -> Response:
        job = await run_in_threadpool(_job, request)
        return answer(job_json(await run_in_threadpool(runner.stop, job.id)))

    def submit(pid: str, spec: commands.Spec) -> dict:
        project = projects.open(pid)
        job = runner.submit(spec.kind, str(projects.config(pid)), spec.title, spec.steps,
                            cwd=project.root, meta=spec.meta)
        return job_json(job)

    def post(build):
        async def handler(request: Request) -> Response:
            payload = await body(request)
            pid = request.path_params["pid"]

            def run() -> dict | list:
                project = projects.open(pid)
                specs = build(project, request.path_params, payload)
                if isinstance(specs, list):
                    return [submit(pid, s) for s in specs]
                return submit(pid, specs)
            return await threaded(run)
        return handler

    def _outliers(project, params, payload):
        vid = integer(params["vid"], "video", 0, 100_000)
        _, h5, _ = find_analysis(project, vid, params["h5"])
        return commands.outliers(project, vid, h5, payload)

    return [
        Route("/api/jobs", jobs),
        Route("/api/jobs/{id}", job),
        Route("/api/jobs/{id}/log", log),
        Route("/api/jobs/{id}/stop", stop, methods=["POST"]),
        Route("/api/projects/{pid}/extract", post(
            lambda project, params, payload: commands.extract(project, payload)),
            methods=["POST"]),
        Route("/api/projects/{pid}/train", post(
            lambda project, params, payload: commands.train(project, payload)),
            methods=["POST"]),
        Route("/api/projects/{pid}/runs/{run}/resume", post(
            lambda project, params, payload: commands.resume(project, params["run"], payload)),
            methods=["POST"]),
        Route("/api/projects/{pid}/runs/{run}/evaluate", post(
            lambda project, params, payload: commands.evaluate(project, params["run"])),
            methods=["POST"]),
        Route("/api/projects/{pid}/analyze", post(
            lambda project, params, payload: commands.analyze(project, payload)),
            methods=["POST"]),
        Route("/api/projects/{pid}/analyses/{vid}/{h5}/outliers/extract", post(_outliers),
              methods=["POST"]),
    ]
