"""The Label page: poselab's labeler (poselab.labeler) mounted at /label/<project id>/.

Each project gets the labeler's own Starlette app (`poselab.labeler.create_app`), created
on the first visit, with the app's token, and the project's labeler lock
(poselab.labeler.lock.ServerLock) held from then on, exactly as `poselab label` holds it: a
`poselab label` already serving the project makes this page say where it runs instead of
opening a second copy that would overwrite its saves.

The labeler's page is served as is, plus one script (static/labelnav.js) that puts the
app's page links into its toolbar. When config.yaml changes (videos added, a crop recorded),
the next load of the page opens the project afresh.

Extending: nothing of the labeler is changed here; a labeler feature belongs in
poselab/labeler.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

from starlette.responses import HTMLResponse, RedirectResponse
from starlette.types import Receive, Scope, Send

from poselab.app.projects import Projects
from poselab.errors import PoselabError
from poselab.labeler.lock import ServerLock
from poselab.labeler.server import STATIC as LABELER_STATIC
from poselab.labeler.server import create_app

# Inserted before </head> of the labeler's page; paths are relative to /label/<id>/.
NAV = ('<link rel="stylesheet" href="../../static/labelnav.css">'
       '<script type="module" src="../../static/labelnav.js"></script>')


class _Mounted:
    def __init__(self, config: Path, token: str | None):
        self.mtime = config.stat().st_mtime_ns
        self.lock = ServerLock(config.parent)
        self.lock.acquire()  # PoselabError naming the other labeler's URL
        try:
            self.app = create_app(config, token=token)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.app.state.labeler.close()
        self.lock.release()


class LabelerPages:
    """ASGI app for /label/{pid}/...: one labeler per project, created on first use."""

    def __init__(self, projects: Projects, token: str | None, url: str = ""):
        self.projects, self.token, self.url = projects, token, url
        self._mounted: dict[str, _Mounted] = {}
        self._lock = threading.Lock()

    def _get(self, pid: str, fresh: bool) -> _Mounted:
        config = self.projects.config(pid)  # 404 for an unknown id
        with self._lock:
            current = self._mounted.get(pid)
            if current is not None and fresh and current.mtime != config.stat().st_mtime_ns:
                self._mounted.pop(pid).close()
                current = None
            if current is None:
                current = self._mounted[pid] = _Mounted(config, self.token)
                # A `poselab label` refused on this project names this page (never the token).
                current.lock.describe(f"{self.url}label/{pid}/" if self.url else None)
            return current

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pid = scope["path_params"]["pid"]
        path = scope["path"][len(scope.get("root_path", "")):] or "/"
        page = scope["type"] == "http" and path == "/" and scope["method"] in ("GET", "HEAD")
        try:
            mounted = self._get(pid, fresh=page)
        except PoselabError as exc:
            await _error_page(str(exc))(scope, receive, send)
            return
        if page:
            text = (LABELER_STATIC / "index.html").read_text(encoding="utf-8")
            text = text.replace("</head>", NAV + "</head>", 1)
            await HTMLResponse(text, headers={"cache-control": "no-store"})(scope, receive, send)
            return
        await mounted.app(scope, receive, send)

    def close(self) -> None:
        with self._lock:
            for mounted in self._mounted.values():
                mounted.close()
            self._mounted.clear()


def _error_page(message: str) -> HTMLResponse:
    body = (f'<!doctype html><meta charset="utf-8"><title>poselab: label</title>'
            f'<link rel="stylesheet" href="../../static/app.css">'
            f'<main class="page"><h1>Label</h1><p class="error">{html.escape(message)}</p>'
            f'<p><a href="../../">Back to the app</a></p></main>')
    return HTMLResponse(body, status_code=409)


def redirect_to_slash(request) -> RedirectResponse:
    """/label/<id> -> /label/<id>/ (the labeler's page uses relative URLs)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.url.path}/{query}", status_code=307)
