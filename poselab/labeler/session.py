"""What one labeler server works on: the project, its label stores and its videos.

`Labeler` opens config.yaml once, then lazily one FolderStore per labeled-data folder and one
VideoSource per video of video_sets. It builds the JSON the page starts from (bodyparts,
colours, marker size, folders with counts, videos, suggestions) and resolves image requests
to files, serving only regular files that resolve inside the project.

Extending: a new per-project setting for the page goes into `project_json`; a new per-folder
one into `folder_json`.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from starlette.exceptions import HTTPException

from poselab.errors import PoselabError
from poselab.io.frames import FRAME_NAME
from poselab.io.project import open_project
from poselab.io.suggestions import read_suggestions
from poselab.labeler.store import FolderStore
from poselab.labeler.videos import VideoSource

# DeepLabCut's and poselab's placeholder bodyparts of a new config.yaml.
PLACEHOLDER = re.compile(r"bodypart\d*|object[A-Z]?|objectA\d*", re.IGNORECASE)
DEFAULT_DOTSIZE = 6


class Labeler:
    """The project being labeled, its folders (lazy FolderStores) and videos (lazy sources)."""

    def __init__(self, config: str | os.PathLike, folder: str | None = None):
        self.project = open_project(config)
        self.root = self.project.root.resolve()
        names = [v.stem for v in self.project.videos]
        self.videos = [VideoSource(i, v, self.project.labeled_data_dir, self.project.bodyparts,
                                   names) for i, v in enumerate(self.project.videos)]
        if not self.project.labeled_folders() and not self.videos:
            raise PoselabError(
                f"{self.project.config_path}: no labeled-data/<video> folders and no videos "
                "yet; add videos with `poselab add-videos`, then `poselab extract-frames`")
        self.initial = self._resolve_folder(folder) if folder else None
        self._stores: dict[str, FolderStore] = {}
        self._lock = threading.Lock()

    def folder_paths(self) -> dict[str, Path]:
        return {p.name: p for p in self.project.labeled_folders()}

    def _resolve_folder(self, folder: str) -> str:
        """`labeled-data/<stem>`, `<stem>` or a path -> the folder's name (validated)."""
        names = self.folder_paths()
        given = Path(str(folder).replace("\\", "/").rstrip("/"))
        parent_ok = (given.parent in (Path("."), Path("labeled-data"))
                     or given.parent.resolve() == self.project.labeled_data_dir.resolve())
        if given.name not in names or not parent_ok:
            raise PoselabError(f"--folder {folder}: not a folder of "
                               f"{self.project.labeled_data_dir} (have: {', '.join(names)})")
        return given.name

    def store(self, name: str) -> FolderStore:
        """The store of folder `name`; 404 for anything that is not a labeled-data folder."""
        with self._lock:
            if name not in self._stores:
                path = self.folder_paths().get(name)
                if path is None:
                    raise HTTPException(404, f"no labeled-data folder named {name!r}")
                p = self.project
                self._stores[name] = FolderStore(path, p.scorer, p.bodyparts)
            return self._stores[name]

    def video(self, vid: str) -> VideoSource:
        """The video with id `vid` (its position in video_sets); 404 otherwise."""
        if not vid.isdigit() or int(vid) >= len(self.videos):
            raise HTTPException(404, f"no video {vid!r} in this project")
        return self.videos[int(vid)]

    def video_of(self, folder: str) -> VideoSource | None:
        """The video a labeled-data folder was extracted from (same stem), if listed."""
        return next((v for v in self.videos if v.video.stem == folder), None)

    def image_file(self, store: FolderStore, name: str) -> Path:
        """The file of image `name` of a folder: a name from the folder listing, a regular
        file, resolving inside the project (a symlink to elsewhere is refused)."""
        path = store.folder / name
        if name not in store.images or not path.is_file():
            raise HTTPException(404, f"no image {name!r} in {store.name}")
        if not path.resolve().is_relative_to(self.root):
            raise HTTPException(403, f"{store.name}/{name} points outside the project")
        return path

    # ------------------------------------------------------------------ JSON for the page
    def project_json(self) -> dict:
        import matplotlib

        from poselab.viz.plots import bodypart_colors, named_color

        p = self.project
        notices = []
        cmap = str(p.get("colormap", "rainbow"))
        if cmap not in matplotlib.colormaps:
            notices.append(f"config.yaml colormap {cmap!r} is not a matplotlib colormap; "
                           "showing rainbow")
            cmap = "rainbow"
        bgr = bodypart_colors(cmap, len(p.bodyparts))
        dotsize = p.get("dotsize", DEFAULT_DOTSIZE)
        if isinstance(dotsize, bool) or not isinstance(dotsize, (int, float)) or not (
                1 <= dotsize <= 60):
            notices.append(f"config.yaml dotsize {dotsize!r} is not a size in pixels "
                           f"(1-60); using {DEFAULT_DOTSIZE}")
            dotsize = DEFAULT_DOTSIZE
        folders = []
        for name in self.folder_paths():
            store = self.store(name)
            video = self.video_of(name)
            folders.append({"name": name, **store.counts(), "error": store.error,
                            "video": video.id if video else None,
                            "n_suggestions": len(self._suggestions(store)[0])})
        names = [f["name"] for f in folders]
        return {
            "task": p.task,
            "scorer": p.scorer,
            "root": str(p.root),
            "config": str(p.config_path),
            "bodyparts": p.bodyparts,
            "placeholders": [b for b in p.bodyparts if PLACEHOLDER.fullmatch(b)],
            "colors": [_hex(c) for c in bgr],
            "skeleton": [list(pair) for pair in p.skeleton],
            "skeleton_color": _hex(named_color(str(p.get("skeleton_color", "black")))),
            "pcutoff": p.pcutoff,
            "dotsize": float(dotsize),
            "folders": folders,
            "videos": [v.summary() for v in self.videos],
            "initial_folder": self.initial or (names[0] if names else None),
            "folder_option": self.initial is not None,
            "notices": notices,
        }

    def _suggestions(self, store: FolderStore) -> tuple[list[dict], str | None]:
        """(suggested frames of the folder that exist, error): the sidecar's, or else every
        frame of the folder's machinelabels files."""
        try:
            items = read_suggestions(store.folder)
            error = None
        except PoselabError as exc:
            items, error = [], f"{exc}"
        if not items and error is None:
            items = [{"image": name, "score": None, "reason": f"predictions in {file}",
                      "source": "machinelabels"} for name, file in store.machinelabel_frames()]
        images = set(store.images)
        return [s for s in items if s["image"] in images], error

    def folder_json(self, store: FolderStore) -> dict:
        with store.lock:
            values = store.frame_values()
            suggestions, error = self._suggestions(store)
            video = self.video_of(store.name)
            notices = list(store.notices)
            if error:
                notices.append(error)
            return {
                "name": store.name,
                "images": store.images,
                "indices": {n: int(m.group(1)) for n in store.images
                            if (m := FRAME_NAME.fullmatch(n))},
                "values": {f: {b: (list(v) if isinstance(v, tuple) else v)
                               for b, v in e.items()} for f, e in values.items()},
                "version": store.version,
                "label_file": store.label_file(),
                "notices": notices,
                "error": store.error,
                "counts": store.counts(),
                "predictions": store.predictions(),
                "suggestions": suggestions,
                "video": video.id if video else None,
                "disk_changed": store.disk_changed(),
            }

    def close(self) -> None:
        for v in self.videos:
            v.close()


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"
