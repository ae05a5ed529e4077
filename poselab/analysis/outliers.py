"""Outlier frames: predictions worth correcting, extracted for labeling (active learning).

`extract_outliers` reads a video's predictions (integer index 0..N-1, one row per frame of
the video), flags candidate frames with the chosen criteria, picks up to n diverse ones with
the k-means picker of poselab.io.frames (nearest member to each centroid of downsampled gray
frames), and writes them like `extract_frames`: labeled-data/<video stem>/img<index>.png,
never overwriting an image (frames already extracted are not candidates). The predictions of
the written frames go to labeled-data/<video stem>/machinelabels-iter<iteration>.h5 (labels
layout, coords x, y, likelihood, key df_with_missing), merged into an existing file of the
same iteration without replacing its rows; the labeler shows them as hollow markers.
CollectedData files are never touched.

Criteria (a frame is a candidate if any selected criterion flags it):
- jump: some keypoint moved more than jump_px from the previous frame (DeepLabCut's "jump";
  frame 0 and NaN coordinates are never flagged);
- likelihood: some keypoint has likelihood < pcutoff (NaN likelihood is not flagged).

Adding a criterion: write `_<name>(xy, likelihood, options) -> bool (N,)` (xy (N, K, 2),
likelihood (N, K), options an `_Options`), add it to CRITERIA, and test it in
tests/analysis/test_outliers.py.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write
from poselab.io.frames import FRAME_NAME, METHODS, _listdir, _select, _write_png
from poselab.io.labels import COLUMN_NAMES, H5_KEY, read_machine_labels
from poselab.io.predictions import predictions_arrays, read_predictions
from poselab.io.project import check_pcutoff, open_project
from poselab.io.suggestions import write_suggestions
from poselab.io.video import VideoReader, check_prediction_rows
from poselab.progress import progress_bar


@dataclass
class OutlierResult:
    """What `extract_outliers` did.

    Attributes:
        candidates: every flagged frame index (sorted), before excluding extracted frames.
        frames: the new PNGs written.
        machinelabels: the machinelabels file written, or None when nothing was written.
        messages: human-readable notes (no candidates, fewer candidates than n, ...).
    """

    candidates: list[int] = field(default_factory=list)
    frames: list[Path] = field(default_factory=list)
    machinelabels: Path | None = None
    messages: list[str] = field(default_factory=list)


@dataclass
class _Options:
    jump_px: float
    pcutoff: float


def _jump(xy: np.ndarray, likelihood: np.ndarray, options: _Options) -> np.ndarray:
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)  # (N-1, K); NaN compares False
    return np.concatenate([[False], (step > options.jump_px).any(axis=1)])


def _likelihood(xy: np.ndarray, likelihood: np.ndarray, options: _Options) -> np.ndarray:
    # A point without a position (an undecodable frame: x, y NaN, likelihood 0) is missing,
    # not a low-likelihood prediction to correct.
    seen = np.isfinite(xy).all(axis=-1)
    return (seen & (likelihood < options.pcutoff)).any(axis=1)


CRITERIA = {"jump": _jump, "likelihood": _likelihood}


def find_candidates(
    xy: np.ndarray, likelihood: np.ndarray, criteria: list[str], jump_px: float, pcutoff: float
) -> np.ndarray:
    """Sorted indices of the frames flagged by any of `criteria` (see the module docstring)."""
    unknown = [c for c in criteria if c not in CRITERIA]
    if unknown or not criteria:
        raise PoselabError(f"--criteria {','.join(criteria)}: use one or more of "
                           f"{', '.join(CRITERIA)}")
    options = _Options(float(jump_px), float(pcutoff))
    flags = np.zeros(len(likelihood), bool)
    for name in criteria:
        flags |= CRITERIA[name](xy, likelihood, options)
    return np.flatnonzero(flags)


def extract_outliers(
    config_path: str | os.PathLike,
    video: str | os.PathLike,
    predictions: str | os.PathLike,
    n: int | None = None,
    criteria: list[str] | tuple[str, ...] = ("jump", "likelihood"),
    jump_px: float = 20.0,
    pcutoff: float | None = None,
    seed: int = 0,
    progress: bool = True,
) -> OutlierResult:
    """Extract up to n outlier frames of a project video and their predictions for correction.

    Args:
        config_path: the project's config.yaml (or its folder).
        video: a video of the project's video_sets (key, file name, stem or path).
        predictions: its predictions .h5 (or .csv), full-frame pixel coordinates.
        n: frames to extract (default: config numframes2pick). With fewer candidates than n,
            all candidates are taken and a message says so.
        criteria: names from CRITERIA ("jump", "likelihood").
        jump_px: jump threshold in pixels.
        pcutoff: likelihood threshold (default: config pcutoff).
        seed: k-means seed; the same seed gives the same frames.
        progress: show progress bars (on a terminal).

    Returns:
        OutlierResult; with no new candidate nothing is written.

    Raises:
        PoselabError: bad option, unknown video, unreadable predictions, predictions whose
            rows differ from the video's frame count or whose bodyparts differ from the
            config's. Nothing is written then.
    """
    project = open_project(config_path)
    n = project.get("numframes2pick", 20) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PoselabError(f"--n {n!r}: the number of frames must be a positive integer")
    if not (isinstance(jump_px, (int, float)) and jump_px > 0):
        raise PoselabError(f"--jump-px {jump_px!r}: must be a positive number of pixels")
    pcutoff = project.pcutoff if pcutoff is None else check_pcutoff(pcutoff)
    entry = _select(project, [video])[0]
    df = read_predictions(predictions)
    xy, likelihood, bodyparts = predictions_arrays(df)
    if sorted(bodyparts) != sorted(project.bodyparts):
        raise PoselabError(f"{predictions}: bodyparts {bodyparts} differ from config.yaml "
                           f"bodyparts {project.bodyparts}")
    order = [bodyparts.index(b) for b in project.bodyparts]
    xy, likelihood = xy[:, order], likelihood[:, order]
    found = find_candidates(xy, likelihood, list(criteria), jump_px, pcutoff)
    result = OutlierResult(candidates=[int(i) for i in found])
    folder = project.labeled_data_dir / entry.stem
    existing = {int(m.group(1)): m.group(1) for p in _listdir(folder)
                if (m := FRAME_NAME.fullmatch(p))}
    with VideoReader(entry.path, entry.crop) as reader:
        true_count = check_prediction_rows(reader, len(df), predictions)
        # Rows past an early end are frames that never decoded: nothing there to label.
        found = found[found < true_count] if true_count is not None else found
        candidates = np.setdiff1d(found, [*existing, *reader.decode_errors])
        result.messages.append(f"{entry.stem}: {len(found)} candidate frames "
                               f"({', '.join(criteria)}), {len(found) - len(candidates)} "
                               "already extracted or undecodable")
        if not len(candidates):
            result.messages.append(f"{entry.stem}: no new outlier frames; nothing written")
            return result
        if len(candidates) <= n:
            picks = [int(i) for i in candidates]
            if len(candidates) < n:
                result.messages.append(f"{entry.stem}: only {len(candidates)} new candidates "
                                       f"for --n {n}: taking them all")
        else:
            with progress_bar(desc=f"{entry.stem}: k-means", unit="frame",
                              progress=progress) as bar:
                picks = METHODS["kmeans"](reader, candidates, n, seed, bar)
        width = {len(s) for s in existing.values()}  # keep the folder's padding if it has one
        digits = width.pop() if len(width) == 1 else math.ceil(math.log10(len(df)))
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for i, frame in reader.frames(picks):
            path = folder / f"img{str(i).zfill(digits)}.png"
            if not path.exists():  # never overwrite, even a file that appeared meanwhile
                _write_png(path, frame)
                written[i] = path
        offset = (reader.crop[0], reader.crop[2]) if reader.crop else (0, 0)
    result.frames = list(written.values())
    if not written:
        result.messages.append(f"{entry.stem}: no frame could be written")
        return result
    rows = list(written)
    scorer = str(df.columns.get_level_values("scorer")[0])
    values = np.concatenate([xy[rows] - np.asarray(offset, float), likelihood[rows, :, None]],
                            axis=2).reshape(len(rows), -1)
    result.machinelabels = _merge_machinelabels(
        folder / f"machinelabels-iter{project.get('iteration', 0)}.h5", values, scorer,
        project.bodyparts, [("labeled-data", entry.stem, p.name) for p in written.values()])
    # The labeler lists these frames in its suggestions panel (poselab.io.suggestions).
    write_suggestions(folder, [_suggestion(i, p.name, xy, likelihood, project.bodyparts, jump_px,
                                           pcutoff) for i, p in written.items()], "outliers")
    result.messages.append(f"{entry.stem}: wrote {len(written)} frames and their predictions "
                           f"to {result.machinelabels}")
    return result


def _suggestion(i: int, image: str, xy: np.ndarray, likelihood: np.ndarray,
                bodyparts: list[str], jump_px: float, pcutoff: float) -> dict:
    """The suggestions entry of outlier frame i: why it was flagged; score = 1 - the lowest
    likelihood (higher = more suspect), None when no likelihood is known."""
    reasons, lik = [], likelihood[i]
    known = np.isfinite(lik)
    if known.any() and np.nanmin(lik) < pcutoff:
        k = int(np.nanargmin(lik))
        reasons.append(f"likelihood {lik[k]:.2f} ({bodyparts[k]}) < pcutoff {pcutoff:g}")
    step = np.linalg.norm(xy[i] - xy[i - 1], axis=-1) if i else np.full(len(lik), np.nan)
    if np.isfinite(step).any() and np.nanmax(step) > jump_px:
        k = int(np.nanargmax(step))
        reasons.append(f"jump {step[k]:.0f} px ({bodyparts[k]})")
    score = 1.0 - float(np.nanmin(lik)) if known.any() else None
    return {"image": image, "score": score, "reason": "; ".join(reasons) or "outlier"}


def _merge_machinelabels(path: Path, values: np.ndarray, scorer: str, bodyparts: list[str],
                         index: list[tuple[str, str, str]]) -> Path:
    """Add rows to machinelabels `path`, keeping the rows it already has."""
    old = read_machine_labels(path) if path.is_file() else None
    if old is not None and len(old.columns):
        scorer = str(old.columns.get_level_values("scorer")[0])  # one scorer per file
        extra = set(old.columns.get_level_values("bodyparts")) - set(bodyparts)
        if extra:
            raise PoselabError(f"{path}: bodyparts {sorted(extra)} are not in config.yaml")
    columns = pd.MultiIndex.from_product([[scorer], bodyparts, ["x", "y", "likelihood"]],
                                         names=COLUMN_NAMES)
    new = pd.DataFrame(values, index=pd.MultiIndex.from_tuples(index), columns=columns)
    if old is not None:
        old = old.reindex(columns=columns)
        new = pd.concat([old, new[~new.index.isin(old.index)]])
    new = new.astype("float64")
    new.index = new.index.set_names([None, None, None])
    return atomic_write(path, lambda tmp: new.to_hdf(tmp, key=H5_KEY, mode="w"))
