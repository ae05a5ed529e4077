"""The app as an ASGI application: `create_app` builds the server's objects and routes.

    GET  /                      the page (static/index.html); pages are client-side routes
    GET  /static/<file>         the page's assets, nothing else
    /api/...                    routes_projects.py, routes_jobs.py, routes_results.py
    /label/<project id>/...     the labeler of that project (labeling.py)

Security is the labeler's (poselab.labeler.security.Guard in front of everything):
loopback-only without a token, a token on any other address, Host and Origin checks, and a
Content-Security-Policy that keeps the page from loading anything from elsewhere. On top,
every path from the page must lie inside the folders the app was started with (paths.py).

Extending: see the package docstring.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from poselab.app import routes_jobs, routes_projects, routes_results
from poselab.app.context import Context
from poselab.app.jobs import JobTable
from poselab.app.labeling import LabelerPages, redirect_to_slash
from poselab.app.paths import Roots
from poselab.app.projects import Projects
from poselab.app.results import Players
from poselab.app.runner import JobRunner
from poselab.app.web import HANDLERS
from poselab.labeler.security import Guard

STATIC = Path(__file__).parent / "static"


def default_state_dir() -> Path:
    """Where the job table, logs and the list of projects live: $POSELAB_APP_HOME, else
    $XDG_DATA_HOME/poselab/app, else ~/.local/share/poselab/app."""
    if os.environ.get("POSELAB_APP_HOME"):
        return Path(os.environ["POSELAB_APP_HOME"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "poselab" / "app"


def create_app(roots: list[str | os.PathLike], configs: list[str | os.PathLike] = (),
               state_dir: str | os.PathLike | None = None, token: str | None = None,
               start_jobs: bool = True) -> Starlette:
    """The app as an ASGI app (what `serve` runs; tests drive it with TestClient).

    Args:
        roots: folders the page may browse, open projects from and create projects in.
        configs: projects to list from the start (they may lie outside the roots).
        state_dir: job table, job logs and remembered projects (default_state_dir()).
        token: required on every request when set (see Guard); None = loopback only.
        start_jobs: start the job runner's thread (the caller must then call
            `app.state.ctx.close()` at the end).

    Raises:
        PoselabError: a root that is not a folder, a bad config.yaml.
    """
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    roots_ = Roots(list(roots))
    projects = Projects(roots_, state, list(configs))
    table = JobTable(state / "jobs.sqlite")
    runner = JobRunner(table, state / "jobs")
    ctx = Context(roots=roots_, projects=projects, table=table, runner=runner,
                  labelers=LabelerPages(projects, token), players=Players(), token=token)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def not_found(request: Request) -> Response:
        raise HTTPException(404, f"not found: {request.url.path}")

    routes = [
        Route("/", index),
        Mount("/static", StaticFiles(directory=STATIC)),
        *routes_projects.routes(ctx),
        *routes_jobs.routes(ctx),
        *routes_results.routes(ctx),
        Route("/label/{pid}", redirect_to_slash),
        Mount("/label/{pid}", app=ctx.labelers),
        Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers=HANDLERS)
    app.state.ctx = ctx
    app.add_middleware(Guard, token=token)
    if start_jobs:
        runner.start()
    return app
