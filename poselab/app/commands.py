"""The `poselab` command lines of each job, built from a page's request after checking it.

Every value that reaches a command line is checked here first (a number in range, a name
from a fixed list, a video or run of the project), so a bad request is a one-line 400 at
once rather than a failed job later, and nothing the page sends can become an option of
its own (each command line is a list of arguments; no shell is involved).

A `Spec` is what the runner queues: kind, title, steps (arguments after `poselab`), meta.
Extending: a new kind of job is a function here returning a Spec, and a route that submits
it (routes_jobs.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.exceptions import HTTPException

from poselab.app.runs import run_dir
from poselab.app.web import integer, number
from poselab.io.project import Project

METHODS = ("kmeans", "uniform")
SET_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_EPOCHS = 100_000


@dataclass
class Spec:
    kind: str
    title: str
    steps: list[list[str]]
    meta: dict = field(default_factory=dict)


def _video(project: Project, vid: object):
    index = integer(vid, "video", 0, max(len(project.videos) - 1, 0))
    if not project.videos:
        raise HTTPException(409, "this project has no videos yet: add some first")
    return index, project.videos[index]


def extract(project: Project, payload: dict) -> Spec:
    """`poselab extract-frames` for the chosen videos."""
    vids = payload.get("videos")
    if not isinstance(vids, list) or not vids:
        raise HTTPException(400, "videos: pick at least one video")
    picked = [_video(project, v) for v in vids]
    method = payload.get("method", "kmeans")
    if method not in METHODS:
        raise HTTPException(400, f"method must be one of {', '.join(METHODS)}")
    n = payload.get("n")
    n = None if n in (None, "") else integer(n, "number of frames", 1, 1000)
    argv = ["extract-frames", str(project.config_path)]
    for _, video in picked:
        argv += ["-v", video.key]
    argv += (["--n", str(n)] if n is not None else []) + ["--method", method]
    start = number(payload.get("start"), "start", 0.0, 1.0)
    stop = number(payload.get("stop"), "stop", 0.0, 1.0)
    if start is not None:
        argv += ["--start", repr(start)]
    if stop is not None:
        argv += ["--stop", repr(stop)]
    crop = payload.get("crop")
    if crop is not None:
        if len(picked) != 1:
            raise HTTPException(400, "a crop is drawn on one video: pick only that video")
        if not isinstance(crop, list) or len(crop) != 4:
            raise HTTPException(400, "crop: [x1, x2, y1, y2] in pixels")
        values = [integer(c, "crop", 0, 100_000) for c in crop]
        argv += ["--crop", ",".join(map(str, values))]
    seed = integer(payload.get("seed"), "seed", 0, 2**31 - 1, default=0)
    argv += ["--seed", str(seed)]
    names = ", ".join(v.path.name for _, v in picked)
    count = n if n is not None else project.get("numframes2pick", "the configured")
    return Spec("extract", f"extract {count} frames ({method}): {names}", [argv],
                {"videos": [i for i, _ in picked]})


def _sets(payload: dict) -> list[str]:
    sets = payload.get("sets") or []
    if isinstance(sets, str):
        sets = [s for s in sets.splitlines() if s.strip()]
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise HTTPException(400, "options: key=value lines")
    out = []
    for item in sets:
        key, sep, value = item.strip().partition("=")
        if not sep or not SET_KEY.match(key.strip()):
            raise HTTPException(400, f"option {item!r}: write key=value, e.g. lr=0.001")
        out.append(f"{key.strip()}={value.strip()}")
    return out


def train(project: Project, payload: dict) -> Spec:
    """`poselab train` with a preset and options, then `poselab evaluate --plot`."""
    from poselab.pose.train_config import preset_names, resolve_config

    preset = payload.get("preset") or None
    if preset is not None and preset not in preset_names():
        raise HTTPException(400, f"preset must be one of {', '.join(preset_names())}")
    flags = {}
    for key in ("backbone", "weights"):
        value = payload.get(key) or None
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_]+", str(value)):
            raise HTTPException(400, f"{key}: a name such as resnet18 or none")
        flags[key] = value
    epochs = payload.get("epochs")
    epochs = None if epochs in (None, "") else integer(epochs, "epochs", 1, MAX_EPOCHS)
    minutes = number(payload.get("max_minutes"), "max minutes", 0.1, 100_000)
    sets = _sets(payload)
    cfg = resolve_config(preset, flags, sets)  # a bad option is a one-line error now
    if epochs is not None:
        cfg.epochs = epochs
    cfg.validate()
    name = _run_name(project, cfg.backbone)
    argv = ["train", str(project.config_path), "--name", name]
    if preset:
        argv += ["--preset", preset]
    for key, value in flags.items():
        if value is not None:
            argv += [f"--{key}", str(value)]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    if minutes is not None:
        argv += ["--max-minutes", repr(minutes)]
    for item in sets:
        argv += ["--set", item]
    run = project.root / "models" / name
    return Spec("train", f"train {name}" + (f" ({preset})" if preset else ""),
                [argv, ["evaluate", str(run), "--plot"]], {"run": name})


def _run_name(project: Project, backbone: str) -> str:
    base = f"{backbone}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    name, i = base, 1
    while (project.root / "models" / name).exists():
        i += 1
        name = f"{base}-{i}"
    return name


def resume(project: Project, run_name: str, payload: dict) -> Spec:
    """`poselab train --resume RUN` (optionally more epochs), then evaluate."""
    run = run_dir(project.root, run_name)
    argv = ["train", str(project.config_path), "--resume", run.name]
    epochs = payload.get("epochs")
    if epochs not in (None, ""):
        argv += ["--epochs", str(integer(epochs, "epochs", 1, MAX_EPOCHS))]
    return Spec("train", f"resume {run.name}", [argv, ["evaluate", str(run), "--plot"]],
                {"run": run.name, "resume": True})


def evaluate(project: Project, run_name: str) -> Spec:
    run = run_dir(project.root, run_name)
    return Spec("evaluate", f"evaluate {run.name}", [["evaluate", str(run), "--plot"]],
                {"run": run.name})


def analyze(project: Project, payload: dict) -> list[Spec]:
    """One job per video: analyze (+ report), labeled video, trajectory plots."""
    from poselab.analysis.analyze import output_paths
    from poselab.pose.predict import read_run_info, run_scorer

    run = run_dir(project.root, str(payload.get("run") or ""))
    vids = payload.get("videos")
    if not isinstance(vids, list) or not vids:
        raise HTTPException(400, "videos: pick at least one video")
    picked = [_video(project, v) for v in vids]
    scorer = run_scorer(run, read_run_info(run))
    config = str(project.config_path)
    specs = []
    for vid, video in picked:
        h5, _ = output_paths(video.path, scorer)
        first = ["analyze", str(run), str(video.path), "--overwrite"]
        if payload.get("report", True):
            first.append("--report")
        steps = [first,
                 ["labeled-video", str(video.path), str(h5), "--config", config],
                 ["plot-trajectories", str(h5), "--config", config]]
        specs.append(Spec("analyze", f"analyze {video.path.name} with {run.name}", steps,
                          {"video": vid, "run": run.name, "h5": Path(h5).name}))
    return specs


def outliers(project: Project, vid: int, h5: Path, payload: dict) -> Spec:
    """`poselab extract-outliers` of one analysis: frames + machinelabels to correct."""
    _, video = _video(project, vid)
    n = integer(payload.get("n"), "number of frames", 1, 500, default=10)
    argv = ["extract-outliers", str(project.config_path), video.key, str(h5), "--n", str(n)]
    return Spec("outliers", f"extract {n} outlier frames: {video.path.name}", [argv],
                {"video": vid, "h5": h5.name})
