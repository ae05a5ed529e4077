"""The projects the app knows: opened, created, or given on the command line.

A project is named in URLs by a short id (a hash of its config.yaml path), never by its path.
The list is remembered in the state folder (`projects.json`), so the next start shows the
same projects; a remembered project that moved, or that is outside the folders this start
may browse (and was not given on the command line), is left out.

What the Projects page shows is `poselab info` (poselab.io.info.project_info) with a
thumbnail per video (frame 0, decoded by VideoReader). Creating a project is
poselab.io.project.create_project, then the skeleton written through Project.save.

Extending: a new fact about a project goes into `summary`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
from starlette.exceptions import HTTPException

from poselab.app.paths import Roots
from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.project import Project, open_project

THUMB_WIDTH = 240
MAX_REMEMBERED = 50


def project_id(config: Path) -> str:
    return hashlib.sha1(str(config.resolve()).encode()).hexdigest()[:12]


class Projects:
    """Known projects by id; `register` validates a config.yaml and remembers it."""

    def __init__(self, roots: Roots, state_dir: Path, configs: list[str | os.PathLike] = ()):
        self.roots = roots
        self.file = state_dir / "projects.json"
        self._given: set[Path] = set()
        self._known: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._thumbs: OrderedDict[tuple, bytes] = OrderedDict()
        for config in configs:
            path = open_project(config).config_path.resolve()  # one-line error when bad
            self._given.add(path)
            self._known[project_id(path)] = path
        for text in self._remembered():
            path = Path(text)
            if path.is_file() and (path in self._given or roots.contains(path)):
                self._known.setdefault(project_id(path), path)
        self._save()

    def _remembered(self) -> list[str]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [p for p in data.get("projects", []) if isinstance(p, str)]

    def _save(self) -> None:
        paths = [str(p) for p in self._known.values()][-MAX_REMEMBERED:]
        others = [p for p in self._remembered() if p not in paths]  # other roots' projects
        atomic_write_text(self.file, json.dumps({"projects": (others + paths)[-200:]},
                                                indent=1))

    def register(self, config: str | os.PathLike) -> str:
        """Open (validate) a config.yaml inside the roots and remember it; its id."""
        project = open_project(config)
        path = project.config_path.resolve()
        if path not in self._given and not self.roots.contains(path):
            raise HTTPException(403, f"{path}: outside the folders this app was started with")
        with self._lock:
            pid = project_id(path)
            self._known.pop(pid, None)
            self._known[pid] = path  # the newest last
            self._save()
        return pid

    def config(self, pid: str) -> Path:
        path = self._known.get(pid)
        if path is None:
            raise HTTPException(404, f"no project {pid!r} is open in this app")
        return path

    def open(self, pid: str) -> Project:
        """The project, read afresh (config.yaml may have changed since)."""
        config = self.config(pid)
        if not config.is_file():
            raise HTTPException(404, f"{config}: config.yaml is gone (project moved?)")
        return open_project(config)

    def listing(self) -> list[dict]:
        out = []
        for pid, path in reversed(list(self._known.items())):
            item = {"id": pid, "config": str(path), "root": str(path.parent),
                    "name": path.parent.name}
            try:
                item["task"] = open_project(path).task
            except PoselabError as exc:
                item["error"] = str(exc)
            out.append(item)
        return out

    # ------------------------------------------------------------------ facts and images
    def brief(self, pid: str) -> dict:
        """What every page needs: the name, the config and the videos (nothing decoded)."""
        project = self.open(pid)
        return {"id": pid, "task": project.task, "config": str(project.config_path),
                "project_path": str(project.root),
                "videos": [{"id": i, "name": v.path.name, "exists": v.exists}
                           for i, v in enumerate(project.videos)]}

    def summary(self, pid: str) -> dict:
        """`poselab info` facts plus video ids, run and analysis counts."""
        from poselab.io.info import project_info

        project = self.open(pid)
        info = project_info(project.config_path)
        listed = {str(v.path): i for i, v in enumerate(project.videos)}
        for video in info["videos"]:
            video["id"] = listed.get(video["path"])
            video["name"] = Path(video["path"]).name
        models = project.root / "models"
        info["runs"] = (sum((p / "run.yaml").is_file() for p in models.iterdir())
                        if models.is_dir() else 0)
        info["id"] = pid
        return info

    def frame_jpeg(self, pid: str, vid: int, width: int | None = THUMB_WIDTH) -> bytes:
        """Frame 0 of video `vid` (its position in video_sets), full frame, as JPEG; scaled to
        `width` pixels wide (None: full size, e.g. to draw a crop on)."""
        from poselab.io.video import VideoReader

        project = self.open(pid)
        if not 0 <= vid < len(project.videos):
            raise HTTPException(404, f"no video {vid} in this project")
        path = project.videos[vid].path
        if not path.is_file():
            raise HTTPException(404, f"{path}: video not found")
        key = (str(path), path.stat().st_mtime_ns, width)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        with VideoReader(path) as reader:
            frame = reader.read(0)
        if width is not None and frame.shape[1] > width:
            height = max(1, round(frame.shape[0] * width / frame.shape[1]))
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
        with self._lock:
            self._thumbs[key] = data
            while len(self._thumbs) > 200:
                self._thumbs.popitem(last=False)
        return data

    # ------------------------------------------------------------------ creating
    def create(self, payload: dict) -> str:
        """Create a project from the page's form; its id.

        payload: name, experimenter, videos (paths inside the roots), bodyparts (list),
        skeleton (list of [a, b]), copy_videos (bool), directory (inside the roots).
        """
        from poselab.io.project import create_project

        name = str(payload.get("name") or "").strip()
        experimenter = str(payload.get("experimenter") or "").strip()
        videos = payload.get("videos") or []
        bodyparts = [str(b).strip() for b in payload.get("bodyparts") or [] if str(b).strip()]
        skeleton = payload.get("skeleton") or []
        if not isinstance(videos, list) or not all(isinstance(v, str) for v in videos):
            raise HTTPException(400, "videos: a list of file paths")
        if not isinstance(skeleton, list) or not all(
                isinstance(s, list) and len(s) == 2 for s in skeleton):
            raise HTTPException(400, "skeleton: a list of [bodypart, bodypart] pairs")
        skeleton = [[str(a), str(b)] for a, b in skeleton]
        unknown = sorted({b for pair in skeleton for b in pair} - set(bodyparts))
        if unknown:
            raise PoselabError(f"skeleton: {', '.join(unknown)} not among the bodyparts")
        if not payload.get("directory"):
            raise HTTPException(400, "choose the folder to create the project in")
        directory = self.roots.check(payload["directory"], "folder")
        paths = [self.roots.check(v, "video") for v in videos]
        config = create_project(name, experimenter, paths, bodyparts or None,
                                bool(payload.get("copy_videos")), directory)
        if skeleton:
            project = open_project(config)
            project.cfg["skeleton"] = skeleton
            project.save()
        return self.register(config)

    def add_videos(self, pid: str, videos: list[str], copy: bool = False) -> list[str]:
        from poselab.io.project import add_videos

        paths = [self.roots.check(v, "video") for v in videos]
        return [str(p) for p in add_videos(self.config(pid), paths, copy)]
