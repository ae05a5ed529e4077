"""`poselab app`: the whole workflow in the browser, served by one local web server.

Pages: Projects, Frames, Label (the labeler of poselab.labeler, mounted per project), Train
and Analyze. The app runs the same `poselab` commands a person would type: long work (frame
extraction, training, evaluation, analysis) becomes a background job of one FIFO queue per
state folder, each job a process of the CLI, so the CLI and the Python API stay the engine.

- jobs.py: the persisted job table (SQLite); runner.py: the queue and its thread;
  child.py: the process that runs one job's steps and records its log, progress and result.
- paths.py: the folders the app may browse (given at start) and the file checks.
- projects.py: opened and created projects, `poselab info` facts, thumbnails.
- runs.py: presets with their measured figures, training runs, learning curve, ETA.
- results.py: what analysis wrote per video (labeled video, plots, report, outliers).
- labeling.py: the labeler as a page of the app, one per project.
- commands.py: the `poselab` command lines of each job, from validated requests.
- server.py (`create_app`), routes_projects.py, routes_jobs.py, routes_results.py: the HTTP
  API; context.py: what the routes share; web.py: JSON helpers; running.py: `serve` and
  `BackgroundApp`.
- static/: the page (plain HTML, CSS and ES modules; no build step, nothing from a CDN).

Extending: a page is a module in static/ registered in static/app.js's PAGES; its API routes
go in a routes_*.py module listed in server.create_app.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"create_app": "poselab.app.server", "serve": "poselab.app.running",
         "BackgroundApp": "poselab.app.running"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    # Lazy: the job process (child.py) imports this package and must start quickly.
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'poselab.app' has no attribute '{name}'")
