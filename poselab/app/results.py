"""What the Analyze page shows: each analysis of a project video and what came out of it.

An analysis is found by the metadata `poselab analyze` writes beside its predictions
(`<video stem><scorer>_meta.json`, which names the scorer, the run and the speed). Beside
it: the predictions `<stem><scorer>.h5`, the labeled video (`..._labeled.mp4`, from
`poselab labeled-video`), the trajectory plots (`plot-poses/<h5 stem>/*.png`, from
`poselab plot-trajectories`) and the quality report (`<h5 stem>_report.html`, from
`poselab report` or `analyze --report`). The outlier frames are those
poselab.analysis.outliers.find_candidates flags (a jump or a likelihood under pcutoff),
the ones with the lowest likelihood first.

The labeled video plays in the page as JPEG frames decoded on the server by VideoReader
(`FrameSource`): poselab writes MPEG-4 part 2 (mp4v), which plays in desktop players but not
in browsers, and this way any codec OpenCV reads will do.

Extending: another output of analysis gets a key in `_outputs` and a route that serves it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from starlette.exceptions import HTTPException

from poselab.io.project import Project, Video

OUTLIER_JUMP_PX = 20.0  # extract-outliers' default
MAX_OUTLIERS_SHOWN = 24
JPEG_QUALITY = 90


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def analyses_of(project: Project, vid: int) -> list[dict]:
    """The analyses of video `vid` (newest first)."""
    video = project.videos[vid]
    folder, stem = video.path.parent, video.path.stem
    if not folder.is_dir():
        return []
    found = []
    for meta_path in folder.iterdir():
        name = meta_path.name
        if not (name.startswith(stem) and name.endswith("_meta.json")):
            continue
        meta = _read_json(meta_path)
        scorer = meta.get("scorer")
        if not isinstance(scorer, str) or name != f"{stem}{scorer}_meta.json":
            continue  # another video whose name starts with this stem, or not an analysis
        h5 = folder / f"{stem}{scorer}.h5"
        if h5.is_file():
            found.append(_outputs(vid, video, h5, meta))
    return sorted(found, key=lambda a: a["date"] or "", reverse=True)


def _outputs(vid: int, video: Video, h5: Path, meta: dict) -> dict:
    scorer = meta["scorer"]
    labeled = h5.with_name(f"{video.path.stem}{scorer}_labeled.mp4")
    plots = h5.parent / "plot-poses" / h5.stem
    report = h5.with_name(f"{h5.stem}_report.html")
    return {
        "video": vid, "video_name": video.path.name, "h5": h5.name, "scorer": scorer,
        "run": Path(str(meta.get("run", ""))).name, "date": meta.get("date"),
        "rows": meta.get("rows"), "fps": meta.get("fps"),
        "frames_per_second": meta.get("frames_per_second"),
        "missing_frames": meta.get("missing_frames"),
        "labeled_video": labeled.name if labeled.is_file() else None,
        "plots": sorted(p.name for p in plots.glob("*.png")) if plots.is_dir() else [],
        "report": report.name if report.is_file() else None,
    }


def find_analysis(project: Project, vid: int, h5_name: str) -> tuple[Video, Path, dict]:
    """(video, predictions file, outputs) of one analysis; 404 when it is not one."""
    if not 0 <= vid < len(project.videos):
        raise HTTPException(404, f"no video {vid} in this project")
    for item in analyses_of(project, vid):
        if item["h5"] == h5_name:
            video = project.videos[vid]
            return video, video.path.parent / h5_name, item
    raise HTTPException(404, f"no analysis {h5_name!r} of video {vid}")


def outlier_frames(h5: Path, pcutoff: float) -> dict:
    """Frames to correct: {"count", "n_frames", "frames": [{index, likelihood, jump, low}]}."""
    from poselab.analysis.outliers import find_candidates
    from poselab.io.predictions import predictions_arrays, read_predictions

    xy, likelihood, _ = predictions_arrays(read_predictions(h5))
    jumps = set(find_candidates(xy, likelihood, ["jump"], OUTLIER_JUMP_PX, pcutoff).tolist())
    low = set(find_candidates(xy, likelihood, ["likelihood"], OUTLIER_JUMP_PX,
                              pcutoff).tolist())
    flagged = sorted(jumps | low)
    with np.errstate(all="ignore"):
        worst = np.nan_to_num(np.nanmin(likelihood, axis=1), nan=-1.0)  # (N,)
    shown = sorted(sorted(flagged, key=lambda i: worst[i])[:MAX_OUTLIERS_SHOWN])
    return {"count": len(flagged), "n_frames": len(xy), "pcutoff": pcutoff,
            "jump_px": OUTLIER_JUMP_PX,
            "frames": [{"index": int(i), "likelihood": float(worst[i]), "jump": i in jumps,
                        "low": i in low} for i in shown]}


class FrameSource:
    """JPEG frames of one video for the page's player (thread-safe, a few frames cached).

    Unlike the labeler's VideoSource it does not count the frames first (a decoding pass
    over the whole video, seconds for a long one): the player starts at once, reading
    forward; the container's frame count is exact for the videos poselab writes.
    """

    def __init__(self, path: Path, keep: int = 64):
        self.path, self.keep = path, keep
        self.lock = threading.Lock()
        self._reader = None
        self._jpegs: OrderedDict[int, bytes] = OrderedDict()

    def _open(self):
        from poselab.io.video import VideoReader

        if self._reader is None:
            self._reader = VideoReader(self.path)
        return self._reader

    def info(self) -> dict:
        with self.lock:
            r = self._open()
            return {"name": self.path.name, "n_frames": r.n_frames, "fps": r.fps,
                    "width": r.width, "height": r.height}

    def jpeg(self, index: int) -> bytes:
        with self.lock:
            if index in self._jpegs:
                self._jpegs.move_to_end(index)
                return self._jpegs[index]
            frame = self._open().read(index)  # VideoError (one line) past the end
            data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1]
            self._jpegs[index] = data.tobytes()
            while len(self._jpegs) > self.keep:
                self._jpegs.popitem(last=False)
            return self._jpegs[index]

    def close(self) -> None:
        with self.lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


class Players:
    """Frame sources of labeled videos (and of originals), opened once, kept a while."""

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._sources: OrderedDict[tuple, FrameSource] = OrderedDict()
        self._lock = threading.Lock()

    def source(self, path: Path) -> FrameSource:
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key not in self._sources:
                self._sources[key] = FrameSource(path)
                while len(self._sources) > self.keep:
                    self._sources.popitem(last=False)[1].close()
            self._sources.move_to_end(key)
            return self._sources[key]

    def close(self) -> None:
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()
