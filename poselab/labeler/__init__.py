"""The browser labeling tool (`poselab label`): a local web server and a single-page app.

- store.py: one FolderStore per labeled-data folder; crash-safe paired .h5/.csv saves through
  poselab.io.labels, on-disk change detection, the not-visible sidecar.
- security.py: loopback-only by default, a URL token on any other address.
- server.py: the Starlette routes, `serve` (uvicorn) and `BackgroundServer` (tests).
- static/: the page (plain HTML, CSS and ES modules; no build step, nothing from a CDN).

Extending: an API route goes in server.create_app; the page's keys in static/labeler.js
(`KEYS` and the help table in index.html).
"""

from __future__ import annotations

from poselab.labeler.server import BackgroundServer, create_app, serve

__all__ = ["BackgroundServer", "create_app", "serve"]
