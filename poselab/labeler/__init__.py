"""The browser labeling tool (`poselab label`): a local web server and a single-page app.

- store.py: one FolderStore per labeled-data folder; crash-safe paired .h5/.csv saves through
  poselab.io.labels, on-disk change detection, the not-visible sidecar.
- session.py: the project's stores and videos, the JSON the page starts from, safe image
  files.
- videos.py: labeling from a video (frames through VideoReader, adding a frame the way
  extract-frames does, prediction tracks for trails).
- security.py: loopback-only by default, a URL token on any other address.
- lock.py: one labeler per project (an OS-level lock held for the server's life).
- server.py: the Starlette routes (`create_app`); running.py: `serve` (uvicorn) and
  `BackgroundServer` (tests).
- static/: the page (plain HTML, CSS and ES modules; no build step, nothing from a CDN).

Extending: an API route goes in server.create_app; the page's keys in static/input.js
(`onKey` and the help table in index.html).
"""

from __future__ import annotations

from poselab.labeler.running import BackgroundServer, serve
from poselab.labeler.server import create_app

__all__ = ["BackgroundServer", "create_app", "serve"]
