"""Active learning: which frames of a project's videos to label next.

`suggest_frames(config, run, n)` scores candidate frames of the project's videos with a
trained run, picks n that are both uncertain and unlike each other (and unlike the frames
already extracted), and writes them exactly as `extract_frames` does
(labeled-data/<video stem>/img<index>.png, the same zero-padding and pixels), with the
run's predictions as machine labels for correction in the labeler (machinelabels-iter<N>.h5,
as `extract_outliers`) and an entry in the labeler's suggestions sidecar (score and reason).

Scoring (`score_frames`), per frame, higher = more worth labeling:
- an ensemble run (`poselab train --ensemble N`): the members' disagreement, the mean over
  keypoints of sqrt(var_x + var_y) in pixels (their RMS distance from the ensemble mean);
- a single model: the mean over keypoints of 1 - likelihood. With a calibrated run
  (calibration.json) 1 - likelihood is the probability that the keypoint is off by more
  than the calibration radius (or not visible), so the score is the expected fraction of
  wrong keypoints; uncalibrated, it is the raw heatmap peak's complement (still a ranking).

Diversity (`pick_diverse`): among the most uncertain quarter of the candidates (at least 4n
of them; the others only when those run out), a greedy pick of the candidate with the
largest
    value = uncertainty rank / candidates * min(1, d / d_ref)
where d is the distance (of 32x24 grayscale thumbnails, like extract-frames' k-means, with
their brightness and contrast normalized: see `frame_features`)
to the nearest frame picked so far or already extracted, and d_ref the median distance
between two candidates: a frame much like one already chosen counts for less, an identical
one (d = 0) never counts. Ranks, not raw scores, so that uncertainty weighs as much as
novelty however narrow the scores' range. Frames closer in time to a pick of the same video than
MIN_GAP_SECONDS (or, in a short video, its length / 2n) are not picked either.

Cost: candidates are at most `candidates` frames per video, evenly spread over the frames
not yet extracted; one pass decodes the video (converting only the candidates), scores
them in batches and keeps only their scores, predictions and thumbnails (bounded memory),
and a second pass writes the picks (about one decode in all, like extract-frames).

Extending: a new uncertainty measure is a branch of `score_frames` returning per-keypoint
values (higher = less certain) and a reason; test it in tests/analysis/test_suggest.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import PoselabError
from poselab.io.frames import FRAME_NAME, _listdir, _select, name_digits, write_frame
from poselab.io.project import open_project
from poselab.io.suggestions import write_suggestions
from poselab.io.video import VideoReader
from poselab.progress import progress_bar

DEFAULT_CANDIDATES = 1000  # frames scored per video: ~1 min of CPU inference for Lite0
FEATURE_SIZE = (32, 24)  # (w, h) of the grayscale thumbnails that measure likeness
MIN_GAP_SECONDS = 1.0  # picks of one video are at least this far apart in time
TOP_SHARE = 0.25  # picks come from the most uncertain quarter of the candidates (or 4n)
SOURCE = "suggest"  # the suggestions sidecar's name for this ranking


@dataclass
class Scores:
    """A batch of frames scored by `score_frames`.

    Attributes:
        xy: predictions float32 (N, K, 2) in frame pixels.
        likelihood: float32 (N, K).
        keypoint: per-keypoint uncertainty float32 (N, K): px of disagreement (ensemble)
            or 1 - likelihood (single model).
        score: float64 (N,), the mean of `keypoint` over keypoints.
        kind: "ensemble" or "likelihood".
    """

    xy: np.ndarray
    likelihood: np.ndarray
    keypoint: np.ndarray
    score: np.ndarray
    kind: str


@dataclass
class Suggestion:
    """One suggested frame: video (config video_sets key), frame index, score, reason and the
    PNG written (None when it could not be written)."""

    video: str
    index: int
    score: float
    reason: str
    path: Path | None = None


@dataclass
class SuggestResult:
    """What `suggest_frames` did.

    Attributes:
        suggestions: the picks, most worth labeling first.
        scored: frames scored per video (video_sets key).
        machinelabels: machinelabels files written.
        messages: human-readable notes.
    """

    suggestions: list[Suggestion] = field(default_factory=list)
    scored: dict[str, int] = field(default_factory=dict)
    machinelabels: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def score_frames(predictor, frames_bgr: np.ndarray) -> Scores:
    """Uncertainty of a trained run on BGR uint8 frames (B, H, W, 3) (see module docstring).

    Args:
        predictor: a `Predictor` or `EnsemblePredictor` (Predictor.from_dir).
        frames_bgr: equally sized frames, as VideoReader gives them.
    """
    rgb = np.ascontiguousarray(np.asarray(frames_bgr)[..., ::-1])
    if hasattr(predictor, "predict_rgb_with_variance"):  # an ensemble run
        xy, lik, var = predictor.predict_rgb_with_variance(rgb)
        keypoint = np.sqrt(np.nan_to_num(var, nan=0.0).sum(axis=-1))
        kind = "ensemble"
    else:
        xy, lik = predictor.predict_rgb(rgb)
        keypoint = 1.0 - np.nan_to_num(lik, nan=0.0)
        kind = "likelihood"
    keypoint = keypoint.astype(np.float32)
    return Scores(xy, lik, keypoint, keypoint.mean(axis=1).astype(np.float64), kind)


def frame_features(frames_bgr: Iterable[np.ndarray]) -> np.ndarray:
    """What a frame shows, for measuring likeness: int16 (N, 32 * 24).

    Every frame, whatever its size, is shrunk to FEATURE_SIZE grey levels with area
    averaging (so frames of different videos and extracted PNGs compare), then standardized
    (zero mean, unit contrast; x32, rounded): content counts, not global lighting. Lighting
    that troubles the model shows in its uncertainty instead; without this, one labeled dark
    frame would make every dark frame look already covered. Integers keep distances exact.
    """
    rows = []
    for frame in frames_bgr:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        small = cv2.resize(gray, FEATURE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64)
        z = (small - small.mean()) / max(small.std(), 1.0)
        rows.append(np.clip(np.round(32.0 * z), -512, 512).astype(np.int16).ravel())
    return np.stack(rows) if rows else np.zeros((0, FEATURE_SIZE[0] * FEATURE_SIZE[1]),
                                                np.int16)


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(x), len(y)) of `frame_features`.

    Integer features make |x|^2 + |y|^2 - 2 x.y exact in float64 (every partial sum is an
    integer below 2^53: 768 * 512^2), so identical frames are at distance 0, never 1e-7.
    """
    x, y = x.astype(np.float64), y.astype(np.float64)
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.sqrt(np.clip(d2, 0.0, None))


def _reference_distance(features: np.ndarray, seed: int = 0) -> float:
    """Median distance between two candidates (from at most 256 of them: cheap, seeded)."""
    rng = np.random.default_rng(seed)
    sample = features if len(features) <= 256 else features[
        np.sort(rng.choice(len(features), 256, replace=False))]
    d = _distances(sample, sample)[np.triu_indices(len(sample), 1)]
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def pick_diverse(
    score: np.ndarray, features: np.ndarray, n: int, covered: np.ndarray | None = None,
    groups: np.ndarray | None = None, times: np.ndarray | None = None,
    min_gap: float | np.ndarray = 0.0,
) -> list[int]:
    """Up to n candidates, greedily by uncertainty rank times novelty, from the most
    uncertain quarter first (see the module docstring).

    Args:
        score: uncertainty per candidate (N,), >= 0, higher = more worth labeling.
        features: `frame_features` of the candidates (N, D).
        n: how many to pick.
        covered: features of frames already extracted (M, D): novelty is measured from
            them too, and a candidate identical to one is never picked.
        groups, times: per candidate, its video (any label) and frame index; with min_gap,
            two picks of one group are at least min_gap frames apart.
        min_gap: frames, one for all or one per candidate (its video's).

    Returns:
        Candidate positions, in the order picked (most worth labeling first); fewer than n
        when fewer candidates are distinct (never two identical frames).
    """
    from scipy.stats import rankdata

    score = np.nan_to_num(np.asarray(score, np.float64), nan=0.0)
    m = len(score)
    if m == 0 or n <= 0:
        return []
    # Ranks, not raw scores: uncertainties often differ by a few percent between frames,
    # which novelty (0..1) would drown; ties share their rank (all equal: novelty decides).
    u = rankdata(score) / m  # (0, 1]
    eligible = u > 1.0 - max(TOP_SHARE, 4 * n / m)
    d_ref = _reference_distance(features)
    nearest = np.full(m, np.inf)
    if covered is not None and len(covered):
        nearest = _distances(features, covered).min(axis=1)
    allowed = nearest > 0
    gaps = np.broadcast_to(np.asarray(min_gap, np.float64), (m,))
    picks: list[int] = []
    while len(picks) < n:
        value = np.where(allowed & eligible, u * np.minimum(1.0, nearest / d_ref), -np.inf)
        i = int(np.argmax(value))
        if not np.isfinite(value[i]):
            if eligible.all():
                break
            eligible[:] = True  # the most uncertain are used up: take the others
            continue
        picks.append(i)
        nearest = np.minimum(nearest, _distances(features, features[i:i + 1])[:, 0])
        allowed &= nearest > 0  # identical to a pick: never again
        if groups is not None and times is not None and gaps[i] > 0:
            allowed &= ~((groups == groups[i]) & (np.abs(times - times[i]) < gaps[i]))
    return picks


@dataclass
class _Candidates:
    """What the scoring pass keeps of one video: small arrays only."""

    key: str
    stem: str
    indices: np.ndarray  # frame indices scored (C,)
    features: np.ndarray  # (C, D)
    xy: np.ndarray  # (C, K, 2)
    likelihood: np.ndarray  # (C, K)
    keypoint: np.ndarray  # (C, K)
    score: np.ndarray  # (C,)
    kind: str
    min_gap: float


def _check_n(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PoselabError(f"--{name} {value!r}: must be a positive integer")
    return value


def suggest_frames(
    config_path: str | os.PathLike,
    run,
    n: int = 20,
    videos: Sequence[str | os.PathLike] | None = None,
    candidates: int = DEFAULT_CANDIDATES,
    device: str = "auto",
    batch_size: int = 8,
    progress: bool = True,
) -> SuggestResult:
    """Pick the n frames most worth labeling next and extract them for correction.

    Args:
        config_path: the project's config.yaml (or its folder).
        run: a trained run of this project (models/<run>; an ensemble run scores by the
            members' disagreement), or one already loaded (`Predictor.from_dir`), which
            saves reloading it in a loop.
        n: frames to suggest, over all the chosen videos together.
        videos: videos of the project's video_sets (key, file name, stem or path); None for
            all.
        candidates: at most this many frames scored per video, evenly spread over the frames
            not extracted yet.
        device: "auto", "cpu", "cuda" or "mps".
        batch_size: frames per forward pass.
        progress: show progress bars (on a terminal).

    Returns:
        SuggestResult; the PNGs, machinelabels-iter<N>.h5 rows and suggestions entries are
        written under labeled-data/<video stem>/.

    Raises:
        PoselabError: bad option, unknown video, not a run, a run whose bodyparts differ
            from the project's, an unreadable video. Nothing is written then.
    """
    from poselab.pose.predict import Predictor

    project = open_project(config_path)
    n, candidates = _check_n(n, "n"), _check_n(candidates, "candidates")
    chosen = _select(project, videos)
    batch_size = _check_n(batch_size, "batch-size")
    if hasattr(run, "predict_rgb"):
        predictor, run = run, getattr(run, "run", "the predictor")
    else:
        predictor = Predictor.from_dir(run, device=device, batch_size=batch_size)
    if sorted(predictor.bodyparts) != sorted(project.bodyparts):
        raise PoselabError(f"{run}: trained on bodyparts {predictor.bodyparts}, but "
                           f"{project.config_path} lists {project.bodyparts}")
    order = [predictor.bodyparts.index(b) for b in project.bodyparts]
    for video in chosen:  # every video opens before any scoring (and nothing is written)
        VideoReader(video.path, video.crop).close()
    result = SuggestResult()
    scanned = []
    for video in chosen:
        found = _scan(project, video, predictor, candidates, n, progress)
        result.scored[video.key] = len(found.indices)
        if not len(found.indices):
            result.messages.append(f"{video.stem}: no frame left to suggest (all extracted "
                                   "or undecodable)")
            continue
        found.xy, found.likelihood = found.xy[:, order], found.likelihood[:, order]
        found.keypoint = found.keypoint[:, order]
        scanned.append(found)
    if not scanned:
        return result
    allc = {name: np.concatenate([getattr(c, name) for c in scanned])
            for name in ("indices", "features", "score")}
    groups = np.concatenate([np.full(len(c.indices), g) for g, c in enumerate(scanned)])
    covered = _extracted_features(project)
    gaps = np.concatenate([np.full(len(c.indices), c.min_gap) for c in scanned])
    picks = pick_diverse(allc["score"], allc["features"], n, covered, groups, allc["indices"],
                         gaps)
    if len(picks) < n:
        result.messages.append(f"only {len(picks)} new frames unlike each other and far "
                               f"enough apart among {len(groups)} candidates for --n {n}: "
                               "taking them all")
    starts = np.cumsum([0] + [len(c.indices) for c in scanned])
    for rank, p in enumerate(picks, start=1):
        g = int(groups[p])
        c, j = scanned[g], int(p - starts[g])
        result.suggestions.append(Suggestion(
            c.key, int(c.indices[j]), float(c.score[j]),
            _reason(c, j, project.bodyparts, rank, len(picks))))
    _write(project, chosen, scanned, result, predictor.scorer, progress)
    return result


def _scan(project, video, predictor, limit: int, n: int, progress: bool) -> _Candidates:
    """Score up to `limit` frames of one video in one decoding pass (bounded memory)."""
    folder = project.labeled_data_dir / video.stem
    existing = {int(m.group(1)) for p in _listdir(folder) if (m := FRAME_NAME.fullmatch(p))}
    with VideoReader(video.path, video.crop) as reader:
        total = reader.n_frames or reader.count_frames()
        pool = np.setdiff1d(np.arange(total), [*existing, *reader.decode_errors])
        step = max(1, math.ceil(len(pool) / limit))
        wanted = pool[::step]
        fps = reader.fps if reader.fps > 0 else 30.0
        # A second apart, or closer in a short video: 2n picks always fit.
        gap = min(fps * MIN_GAP_SECONDS, len(pool) / (2 * n))
        indices, features, parts, batch, got = [], [], [], [], []
        with progress_bar(total=len(wanted), desc=f"{video.stem}: score", unit="frame",
                          progress=progress) as bar:
            def flush() -> None:
                frames = np.stack(batch)
                parts.append(score_frames(predictor, frames))
                features.append(frame_features(frames))
                indices.extend(got)
                bar.update(len(batch))
                batch.clear()
                got.clear()

            for i, frame in reader.frames(wanted):
                batch.append(frame)
                got.append(i)
                if len(batch) == predictor.batch_size:
                    flush()
            if batch:
                flush()
    k = len(project.bodyparts)
    if not parts:
        empty = np.zeros((0, k), np.float32)
        return _Candidates(video.key, video.stem, np.zeros(0, int), frame_features([]),
                           np.zeros((0, k, 2), np.float32), empty, empty, np.zeros(0), "", gap)
    return _Candidates(
        video.key, video.stem, np.asarray(indices), np.concatenate(features),
        np.concatenate([s.xy for s in parts]), np.concatenate([s.likelihood for s in parts]),
        np.concatenate([s.keypoint for s in parts]), np.concatenate([s.score for s in parts]),
        parts[0].kind, gap)


def _extracted_features(project) -> np.ndarray | None:
    """Thumbnails of every frame already in labeled-data (labeled or about to be), read one
    image at a time and converted as the video frames are (BGR -> gray)."""
    images = [p for folder in project.labeled_folders() for p in sorted(folder.iterdir())
              if FRAME_NAME.fullmatch(p.name)]
    frames = (img for p in images if (img := cv2.imread(str(p), cv2.IMREAD_COLOR)) is not None)
    features = frame_features(frames)
    return features if len(features) else None


def _reason(c: _Candidates, j: int, bodyparts: list[str], rank: int, total: int) -> str:
    worst = int(np.argmax(c.keypoint[j]))
    if c.kind == "ensemble":
        what = (f"ensemble disagreement {c.score[j]:.1f} px on average, most on "
                f"{bodyparts[worst]} ({c.keypoint[j, worst]:.1f} px)")
    else:
        what = (f"likelihood {1 - c.score[j]:.2f} on average, lowest "
                f"{c.likelihood[j, worst]:.2f} ({bodyparts[worst]})")
    return f"{what}; suggestion {rank} of {total}"


def _write(project, chosen, scanned: list[_Candidates], result: SuggestResult, scorer: str,
           progress: bool) -> None:
    """Write the picks video by video: PNGs, machine labels and suggestions entries."""
    from poselab.analysis.outliers import _merge_machinelabels

    by_video = {c.key: c for c in scanned}
    iteration = project.get("iteration", 0)
    for video in chosen:
        mine = [s for s in result.suggestions if s.video == video.key]
        if not mine:
            continue
        c = by_video[video.key]
        folder = project.labeled_data_dir / video.stem
        folder.mkdir(parents=True, exist_ok=True)
        position = {int(i): j for j, i in enumerate(c.indices)}
        with VideoReader(video.path, video.crop) as reader, progress_bar(
                total=len(mine), desc=f"{video.stem}: write", unit="frame",
                progress=progress) as bar:
            digits = name_digits(folder, reader.n_frames or reader.count_frames())
            wanted = {s.index: s for s in mine}
            for i, frame in reader.frames(sorted(wanted)):
                wanted[i].path = write_frame(folder, i, frame, digits)
                bar.update()
        written = [s for s in mine if s.path is not None]
        if len(written) < len(mine):
            result.messages.append(f"{folder}: wrote {len(written)} of {len(mine)} frames (the "
                                   "others appeared meanwhile or failed to decode)")
        if not written:
            continue
        rows = [position[s.index] for s in written]
        values = np.concatenate([c.xy[rows], c.likelihood[rows, :, None]],
                                axis=2).reshape(len(rows), -1).astype(np.float64)
        path = _merge_machinelabels(
            folder / f"machinelabels-iter{iteration}.h5", values, scorer, project.bodyparts,
            [("labeled-data", video.stem, s.path.name) for s in written])
        result.machinelabels.append(path)
        write_suggestions(folder, [{"image": s.path.name, "score": s.score, "reason": s.reason}
                                   for s in written], SOURCE)
        result.messages.append(f"{video.stem}: wrote {len(written)} frames and their "
                               f"predictions to {path}")
