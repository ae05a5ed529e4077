"""Keyframe selection (uniform, k-means) and PNG export to labeled-data/<video stem>/.

`extract_frames` plans every video first (open, check, pick indices) and writes only when all
of them are valid, so bad input writes nothing. Frames are named img<index>.png with the
absolute frame index zero-padded to ceil(log10(n_frames)) digits, like DeepLabCut. Indices
already extracted are never candidates again, so a re-run adds new frames and never touches
existing images or label files.

Methods (candidates = indices in [floor(start * N), floor(stop * N)) not yet extracted and
decodable, m of them):
- uniform: candidate number floor((2k + 1) * m / (2n)) for k = 0..n-1, the centres of n equal
  bins (exact, evenly spaced; DeepLabCut's "uniform" is random).
- kmeans: one decoding pass downsamples each candidate to a ~32-pixel-wide grayscale
  thumbnail (at most MAX_CANDIDATES, evenly subsampled, so memory does not grow with the
  video); MiniBatchKMeans(n, random_state=seed) clusters them and each cluster contributes its
  member nearest the centroid. A second pass decodes only up to the picked frames, converting
  only those, so the whole costs about one plain decode.

Adding a selection method: write `_pick_<name>(reader, candidates, n, seed, bar) -> list[int]`
returning n distinct candidate indices (raise PoselabError when it cannot), add it to METHODS,
and test it in tests/io/test_frames.py.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write
from poselab.io.project import Project, Video, open_project
from poselab.io.video import VideoReader, parse_crop
from poselab.progress import progress_bar

log = logging.getLogger(__name__)

MAX_CANDIDATES = 10_000  # thumbnails held for k-means: 10k x 32x24 bytes, whatever the length
FRAME_NAME = re.compile(r"img(\d+)\.(png|jpe?g)$", re.IGNORECASE)


@dataclass
class ExtractResult:
    """What `extract_frames` did: new PNGs per video (config video_sets key) and warnings."""

    frames: dict[str, list[Path]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    video: Video
    reader: VideoReader
    folder: Path
    indices: list[int]
    digits: int


def _pick_uniform(reader: VideoReader, candidates: np.ndarray, n: int, seed: int, bar) -> list:
    m = len(candidates)
    return [int(candidates[(2 * k + 1) * m // (2 * n)]) for k in range(n)]


def _pick_kmeans(reader: VideoReader, candidates: np.ndarray, n: int, seed: int, bar) -> list:
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    step = math.ceil(len(candidates) / MAX_CANDIDATES)
    bar.reset(total=int(candidates[-1] - candidates[0]) + 1)
    tw, th, _ = reader.thumbnail_size()
    thumbs = np.empty((len(candidates[::step]), th * tw), np.uint8)
    index, last = [], int(candidates[0]) - 1
    for i, img in reader.thumbnails(candidates[::step]):
        thumbs[len(index)] = img.ravel()
        index.append(i)
        bar.update(i - last)
        last = i
    if len(index) < n:
        raise PoselabError(f"{reader.path}: cannot pick {n} frames from {len(index)} "
                           "decodable candidate frames")
    x = thumbs[: len(index)].astype(np.float32)
    # One thread: on 2 cores OpenMP oversubscription makes k-means ~20x slower, and a fixed
    # thread count keeps the float sums, hence the picks, identical on every machine.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct frames than n
        km = MiniBatchKMeans(n, random_state=seed, n_init=3, batch_size=256).fit(x)
    dist = ((x - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    picks = [members[np.argmin(dist[members])] for c in range(n)
             if (members := np.flatnonzero(km.labels_ == c)).size]
    # Empty clusters (e.g. many identical frames): add the thumbnails farthest from the picks.
    while len(picks) < n:
        far = np.min([((x - x[p]) ** 2).sum(axis=1) for p in picks], axis=0)
        far[picks] = -1
        picks.append(int(np.argmax(far)))
    return sorted(index[p] for p in picks)


METHODS = {"uniform": _pick_uniform, "kmeans": _pick_kmeans}


def extract_frames(
    config_path: str | os.PathLike,
    videos: Sequence[str | os.PathLike] | None = None,
    n: int | None = None,
    method: str = "kmeans",
    start: float | None = None,
    stop: float | None = None,
    crop: str | Sequence[int] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ExtractResult:
    """Add n keyframes per video to labeled-data/<video stem>/img<index>.png.

    Args:
        config_path: the project's config.yaml (or its folder).
        videos: videos of the project's video_sets (key, file name, stem or a path to the
            same file); None for all.
        n: new frames per video (default: config numframes2pick).
        method: "kmeans" (diverse frames) or "uniform" (evenly spaced).
        start, stop: fraction of the video to use, 0 <= start < stop <= 1 (default: config).
        crop: "x1,x2,y1,y2" applied to the chosen videos and recorded in config video_sets;
            None uses each video's recorded crop (the full frame unless changed).
        seed: k-means seed; the same seed gives the same frames.
        progress: show a progress bar per video (on a terminal).

    Returns:
        ExtractResult with the new PNG paths per video (video_sets key) and warnings.

    Raises:
        PoselabError: bad option, unknown video, unreadable or empty video, crop outside the
            frame, or fewer candidate frames than n. Nothing is written then.
    """
    project = open_project(config_path)
    n, start, stop = _settings(project, n, start, stop, method)
    new_crop = parse_crop(crop, where="--crop: ")
    result, plans = ExtractResult(), []
    try:
        for video in _select(project, videos):
            plans.append(_plan(project, video, n, method, start, stop, new_crop, seed, progress))
        for plan in plans:  # everything checked: now write
            written = result.frames[plan.video.key] = _write(plan, progress)
            problems = [plan.reader.report()]
            if len(written) < len(plan.indices):
                problems.append(f"{plan.folder}: wrote {len(written)} of {len(plan.indices)} "
                                "frames (the others appeared meanwhile or failed to decode)")
            for problem in filter(None, problems):
                log.warning(problem)
                result.warnings.append(problem)
    finally:
        for plan in plans:
            plan.reader.close()
    if new_crop is not None:
        sets = project.cfg["video_sets"]
        for plan in plans:
            text = ", ".join(map(str, new_crop))
            if sets[plan.video.key] is None:
                sets[plan.video.key] = {"crop": text}
            else:
                sets[plan.video.key]["crop"] = text
        project.save()
    return result


def _settings(project: Project, n, start, stop, method: str) -> tuple[int, float, float]:
    where = project.config_path
    if method not in METHODS:
        raise PoselabError(f"--method {method!r}: unknown; use one of {', '.join(METHODS)}")
    n = project.get("numframes2pick", 20) if n is None else n
    start = project.get("start", 0) if start is None else start
    stop = project.get("stop", 1) if stop is None else stop
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PoselabError(f"--n {n!r}: the number of frames must be a positive integer")
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise PoselabError(f"{where}: {name} {value!r} must be a fraction in [0, 1] "
                               f"(--{name} or config {name})")
    if start >= stop:
        raise PoselabError(f"{where}: start {start} must be less than stop {stop} "
                           "(--start/--stop or config start/stop)")
    return n, float(start), float(stop)


def _select(project: Project, names: Sequence[str | os.PathLike] | None) -> list[Video]:
    listed = project.videos
    if not listed:
        raise PoselabError(f"{project.config_path}: video_sets lists no videos; add one with "
                           "`poselab add-videos`")
    if names is None:
        return listed
    chosen: list[Video] = []
    for name in names:
        path = Path(os.fsdecode(name))
        match = [v for v in listed if v.key == str(name)] or [
            v for v in listed if path.exists() and v.exists and path.samefile(v.path)
        ] or [v for v in listed if str(name) in (v.path.name, v.stem)]
        if len(match) != 1:
            known = ", ".join(v.path.name for v in listed)
            raise PoselabError(f"{name}: not a video of this project ({known}); add it with "
                               "`poselab add-videos`")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen


def _plan(project, video: Video, n, method, start, stop, crop, seed, progress) -> _Plan:
    reader = VideoReader(video.path, crop if crop is not None else video.crop)
    try:
        folder = project.labeled_data_dir / video.stem
        existing = {int(m.group(1)): m.group(1) for p in _listdir(folder)
                    if (m := FRAME_NAME.fullmatch(p))}
        with progress_bar(total=reader.n_frames or None, desc=f"{video.stem}: scan",
                          unit="frame", progress=progress) as bar:
            while True:
                if method == "uniform" or not reader.n_frames:  # needs the exact count
                    reader.count_frames(bar.update)
                total = reader.count_known or reader.n_frames
                first, last = math.floor(start * total), math.floor(stop * total)
                skip = [*existing, *reader.decode_errors]
                candidates = np.setdiff1d(np.arange(first, last), skip)
                if len(candidates) < n:
                    raise PoselabError(
                        f"{video.path}: cannot add {n} frames: only {len(candidates)} candidate "
                        f"frames in [{start}, {stop}) of {total} ({len(existing)} already "
                        "extracted); lower --n or widen --start/--stop")
                picks = METHODS[method](reader, candidates, n, seed, bar)
                if reader.count_known is None or reader.count_known >= last:
                    break  # else the container declared too many frames: redo with the truth
        return _Plan(video, reader, folder, picks, name_digits(folder, reader.n_frames or total))
    except BaseException:
        reader.close()
        raise


def _listdir(folder: Path) -> list[str]:
    return os.listdir(folder) if folder.is_dir() else []


def _write(plan: _Plan, progress: bool) -> list[Path]:
    plan.folder.mkdir(parents=True, exist_ok=True)
    written = []
    with progress_bar(total=len(plan.indices), desc=f"{plan.video.stem}: write", unit="frame",
                      progress=progress) as bar:
        for i, frame in plan.reader.frames(plan.indices):
            if (path := write_frame(plan.folder, i, frame, plan.digits)) is not None:
                written.append(path)
            bar.update()
    return written


def name_digits(folder: Path, n_frames: int) -> int:
    """Zero-padding of img<index>.png in `folder`: the folder's own when all its frames share
    one, else ceil(log10(n_frames)) digits (DeepLabCut's rule)."""
    width = {len(m.group(1)) for p in _listdir(folder) if (m := FRAME_NAME.fullmatch(p))}
    return width.pop() if len(width) == 1 else math.ceil(math.log10(max(n_frames, 1)))


def write_frame(folder: Path, index: int, frame: np.ndarray, digits: int) -> Path | None:
    """Write frame `index` as folder/img<index>.png (zero-padded to `digits`), as
    extract_frames does; None when that file exists (it is never overwritten)."""
    path = folder / f"img{str(index).zfill(digits)}.png"
    if path.exists():  # never overwrite, even a file that appeared meanwhile
        return None
    _write_png(path, frame)
    return path


def _write_png(path: Path, frame: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", frame)
    if not ok:
        raise PoselabError(f"{path}: could not encode the frame as PNG")
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))  # never a partial image
