"""Kalman smoothing of trajectories: a constant-velocity model per keypoint and coordinate.

The model, for each keypoint's x (and, separately, y) over frames t with dt = 1 frame:
    state s_t = (position p_t, velocity v_t),  s_{t+1} = F s_t + w_t,  F = [[1, 1], [0, 1]],
    w_t ~ N(0, q [[1/3, 1/2], [1/2, 1]])   (white-noise acceleration of spectral density q),
    observation y_t = p_t + e_t,  e_t ~ N(0, R_t).
A Kalman filter runs forward and a Rauch-Tung-Striebel smoother backward, so every frame's
estimate uses the whole video. Frames whose x/y are NaN get no update (the filter only
predicts), so gaps are bridged by the smoother's interpolation; frames before a keypoint's
first and after its last observation stay NaN (nothing is invented outside what was seen),
and a keypoint with no observation stays NaN.

Observation noise R_t (px^2, per frame, keypoint and axis) comes from a mixture model of
each predicted point: with probability p it is a good point, within r px of the truth (the
definition of poselab's likelihood, r = `radius_px`), with per-axis variance (r/2)^2, plus
the members' variance around the ensemble mean for an ensemble (a `<stem>_variance.h5`
sidecar, see poselab.analysis.ensemble: disagreeing members make a point less sure); and
otherwise an outlier, spread `outlier_px` per axis around the truth. The prior p is the
likelihood (NaN counts as 0; clipped to [0.001, 0.999]); `observation="variance"` ignores
the likelihood (p = 0.999) and "likelihood" ignores the variance sidecar.
- First round: R is the mixture's variance, p (r/2)^2 + (1 - p) outlier_px^2.
- Then `iterations` rounds (default 2) of outlier re-weighting, an EM for the mixture: each
  point's posterior probability w of being good is computed from its distance to the
  smoothed track (x and y together, Bayes' rule with prior p and the track's posterior
  variance added to both spreads), and R = inlier variance / w. A confident jump to a wrong
  spot is far from the track and gets w ~ 0, so it is ignored even when its likelihood is
  high; good points get w ~ 1 and R = (r/2)^2, so they are not over-smoothed. A single
  Gaussian R per likelihood cannot do both: uncalibrated likelihoods make it either ignore
  good points or follow bad ones.

Process noise q (px^2/frame^3) is chosen per keypoint by maximum likelihood, in every
round: the filter's innovation log-likelihood (x and y together, the first two observations
of each series excluded as they only initialise the state) is evaluated on a grid of q from
1e-4 to 1e3 in quarter decades, all grid values and series at once, and the best is kept. A
keypoint with fewer than 10 observations takes the median q of the others. Videos longer
than FIT_FRAMES (20,000) are fitted on 4 evenly spread blocks of 5,000 frames.

Why the equations are written here instead of taken from a library: pykalman and filterpy
(both install from PyPI, both maintained) loop over frames in Python with general matrix
algebra, one series at a time. Measured here (2 loaded cores) on 10,800 frames of one
coordinate, filter + RTS smoother: filterpy 0.6 s, pykalman 1.7 s; that is 6-17 s per
coordinate of a one-hour video (108,000 frames), so 34 coordinates x 29 grid values x 3
rounds would take hours. With the 2x2 constant-velocity model written out as elementwise
numpy over all keypoints, coordinates and grid values at once, the per-frame Python cost is
shared by every series: 0.45 s for those 10,800 frames, for 1 or 34 coordinates alike. The
equations are checked against filterpy's KalmanFilter and rts_smoother (and the steady-state
error from scipy's Riccati solvers) in tests/analysis/test_smoothing.py. The
ensemble-kalman-smoother package (EKS, 4.6) does this for ensembles, but it brings jax,
tensorflow-probability and opencv-contrib-python (which would clash with poselab's
opencv-python-headless); benchmarks/bench_smoothing.py runs it in its own venv to compare.

Extending: another motion model is another pair of `_forward`/`_backward` functions with
the same array shapes, and a test against a reference implementation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.predictions import (
    predictions_arrays,
    predictions_frame,
    read_predictions,
    read_variance,
    variance_arrays,
    variance_frame,
    variance_path,
    write_predictions,
    write_variance,
)

Q_GRID = 10.0 ** np.arange(-4.0, 3.0001, 0.25)  # candidate process noises, px^2/frame^3
_PRIOR = 1e6  # prior variance of position and velocity before a series' first observation
FIT_FRAMES = 20_000  # process noise is fitted on at most this many frames of a video
_MIN_OBS = 10  # fewer observations than this: q is not fitted, the others' median is used
_EDGE = 1e-3  # prior inlier probabilities stay in [_EDGE, 1 - _EDGE]: no point is certain
_MIN_WEIGHT = 1e-4  # an outlier's variance is at most 1e4 x an inlier's: ignored, not NaN
OBSERVATION = ("auto", "likelihood", "variance", "both")


# ----------------------------------------------------------------------------- noise rules
def likelihood_noise(likelihood: np.ndarray, radius_px: float = 5.0,
                     outlier_px: float = 50.0) -> np.ndarray:
    """Per-axis observation variance (px^2) from a likelihood (see the module docstring)."""
    p = np.clip(np.nan_to_num(np.asarray(likelihood, float), nan=0.0), 0.0, 1.0)
    return p * (radius_px / 2) ** 2 + (1 - p) * outlier_px**2


# ----------------------------------------------------------------------------- the filter
def _prepare(y: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, ...]:
    """Observed mask, NaN-free copies of y and r, and the initial position per series."""
    obs = np.isfinite(y) & np.isfinite(r) & (r > 0)
    first = np.argmax(obs, axis=0)
    start = np.where(obs.any(axis=0), y[first, np.arange(y.shape[1])], 0.0)
    return obs, np.where(obs, y, 0.0), np.where(obs, r, 1.0), start


def _forward(y: np.ndarray, r: np.ndarray, q: np.ndarray, store: bool):
    """Kalman filter over y (T, S) with noise r (T, S) and process noise q (..., S).

    Returns (log-likelihood (..., S), only complete without `store`; filtered arrays (m0, m1,
    p00, p01, p11) each (T, ..., S) when `store`, else None).
    """
    obs, yf, rf, start = _prepare(y, r)
    shape = np.broadcast_shapes(q.shape, y.shape[1:])
    q3, q2 = q / 3, q / 2
    m0, m1 = np.broadcast_to(start, shape).copy(), np.zeros(shape)
    p00, p01, p11 = np.full(shape, _PRIOR), np.zeros(shape), np.full(shape, _PRIOR)
    seen = np.zeros(y.shape[1], np.int64)  # observations so far, per series
    loglik = np.zeros(shape)
    hist = [np.empty((len(y), *shape)) for _ in range(5)] if store else None
    all_obs = obs.all(axis=1)  # frames where every series is observed: the fast path
    # From this frame on every series has had its first two observations (which only
    # initialise the state and are left out of the likelihood).
    counted_from = int(np.argmax(np.cumsum(all_obs) >= 2)) + 1 if all_obs.sum() >= 2 else len(y)
    all_live = False
    for t in range(len(y)):
        # Before its first observation a series' state stays at the prior. The np.where
        # branches are skipped where nothing is masked: most frames of most videos.
        all_live = all_live or bool((seen > 0).all())
        if t and all_live:
            m0 = m0 + m1
            p00, p01, p11 = p00 + 2 * p01 + p11 + q3, p01 + p11 + q2, p11 + q
        elif t and (live := seen > 0).any():
            m0 = np.where(live, m0 + m1, m0)
            p00, p01, p11 = (np.where(live, p00 + 2 * p01 + p11 + q3, p00),
                             np.where(live, p01 + p11 + q2, p01),
                             np.where(live, p11 + q, p11))
        o, rt = obs[t], rf[t]
        s = p00 + rt  # innovation variance
        e = yf[t] - m0  # innovation
        # Written as products (p * r / s), not differences, to keep them positive.
        if all_obs[t]:
            k1 = p01 / s
            m0, m1 = m0 + p00 / s * e, m1 + k1 * e
            p11 = p11 - k1 * p01
            p00, p01 = p00 * rt / s, p01 * rt / s
            if store:
                pass  # the smoothing pass needs no likelihood: save its cost
            elif t >= counted_from:
                loglik -= 0.5 * (np.log(s) + e * e / s)
            else:
                loglik += np.where(seen >= 2, -0.5 * (np.log(s) + e * e / s), 0.0)
        else:
            k0, k1 = np.where(o, p00 / s, 0.0), np.where(o, p01 / s, 0.0)
            m0, m1 = m0 + k0 * e, m1 + k1 * e
            p11 = p11 - k1 * p01
            p00, p01 = np.where(o, p00 * rt / s, p00), np.where(o, p01 * rt / s, p01)
            loglik += np.where(o & (seen >= 2), -0.5 * (np.log(s) + e * e / s), 0.0)
        seen += o
        if store:
            for h, v in zip(hist, (m0, m1, p00, p01, p11), strict=True):
                h[t] = v
    return loglik, hist


def _backward(hist, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rauch-Tung-Striebel smoother from the filtered arrays: (position, its variance)."""
    m0h, m1h, p00h, p01h, p11h = hist
    n = len(m0h)
    pos, var = np.empty_like(m0h), np.empty_like(m0h)
    ms0, ms1, s00, s01, s11 = m0h[-1], m1h[-1], p00h[-1], p01h[-1], p11h[-1]
    pos[-1], var[-1] = ms0, s00
    q3, q2 = q / 3, q / 2
    with np.errstate(all="ignore"):  # frames before a first observation are masked later
        for t in range(n - 2, -1, -1):
            p00, p01, p11 = p00h[t], p01h[t], p11h[t]
            pp00, pp01, pp11 = p00 + 2 * p01 + p11 + q3, p01 + p11 + q2, p11 + q
            det = pp00 * pp11 - pp01 * pp01
            i00, i01, i11 = pp11 / det, -pp01 / det, pp00 / det
            a00, a10 = p00 + p01, p01 + p11  # P F^T = [[a00, p01], [a10, p11]]
            c00, c01 = a00 * i00 + p01 * i01, a00 * i01 + p01 * i11  # gain C = P F^T Pp^-1
            c10, c11 = a10 * i00 + p11 * i01, a10 * i01 + p11 * i11
            d0, d1 = ms0 - (m0h[t] + m1h[t]), ms1 - m1h[t]
            ms0, ms1 = m0h[t] + c00 * d0 + c01 * d1, m1h[t] + c10 * d0 + c11 * d1
            e00, e01, e11 = s00 - pp00, s01 - pp01, s11 - pp11  # Ps' - Pp
            g00, g01 = c00 * e00 + c01 * e01, c00 * e01 + c01 * e11  # C E
            g10, g11 = c10 * e00 + c11 * e01, c10 * e01 + c11 * e11
            s00, s01 = p00 + g00 * c00 + g01 * c01, p01 + g00 * c10 + g01 * c11
            s11 = p11 + g10 * c10 + g11 * c11
            pos[t], var[t] = ms0, s00
    return pos, var


def kalman_smooth(y: np.ndarray, r: np.ndarray, q: np.ndarray | float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity RTS smoothing of series y (T, S) with observation noise r (T, S).

    Args:
        y: observations, NaN = missing.
        r: observation variances (px^2), > 0 where observed.
        q: process noise per series (S,) or one for all.

    Returns:
        (smoothed positions (T, S), their posterior variances (T, S)); NaN before each
        series' first and after its last observation.
    """
    y, r = np.asarray(y, float), np.asarray(r, float)
    q = np.broadcast_to(np.asarray(q, float), y.shape[1:]).copy()
    _, hist = _forward(y, r, q, store=True)
    pos, var = _backward(hist, q)
    obs = np.isfinite(y) & np.isfinite(r) & (r > 0)
    t = np.arange(len(y))[:, None]
    first = np.where(obs.any(0), np.argmax(obs, axis=0), len(y))
    last = len(y) - 1 - np.argmax(obs[::-1], axis=0)
    outside = (t < first) | (t > last)
    pos[outside], var[outside] = np.nan, np.nan
    return pos, var


def _fit_blocks(n: int, max_frames: int) -> list[slice]:
    """All frames, or 4 evenly spread blocks of max_frames / 4 frames in a longer video."""
    if n <= max_frames:
        return [slice(0, n)]
    size = max_frames // 4
    starts = np.linspace(0, n - size, 4).astype(int)
    return [slice(int(a), int(a) + size) for a in starts]


def choose_process_noise(y: np.ndarray, r: np.ndarray, groups: np.ndarray | None = None,
                         grid: np.ndarray = Q_GRID, max_frames: int = FIT_FRAMES
                         ) -> np.ndarray:
    """Maximum-likelihood process noise per group of series, from a grid.

    Args:
        y, r: observations and their variances (T, S), as `kalman_smooth`.
        groups: group id per series (S,) (a keypoint's x and y share one q); default: each
            series its own.
        grid: candidate q values.
        max_frames: longer videos are fitted on 4 evenly spread blocks of max_frames / 4
            frames (their log-likelihoods summed): the choice of one number per keypoint
            needs no more, and it bounds the cost of the grid on hour-long videos.

    Returns:
        q per series (S,): its group's best grid value (the median of the fitted groups for a
        group with fewer than 10 observations per series; 1.0 when no group is fitted).
    """
    y, r = np.asarray(y, float), np.asarray(r, float)
    groups = np.arange(y.shape[1]) if groups is None else np.asarray(groups)
    grid = np.asarray(grid, float)
    blocks = _fit_blocks(len(y), max_frames)
    loglik = sum(_forward(y[b], r[b], grid[:, None], store=False)[0] for b in blocks)  # (G, S)
    n_obs = sum((np.isfinite(y[b]) & np.isfinite(r[b]) & (r[b] > 0)).sum(axis=0)
                for b in blocks)
    ids = list(dict.fromkeys(groups.tolist()))
    best = {}
    for g in ids:
        cols = groups == g
        if n_obs[cols].min() >= _MIN_OBS:
            best[g] = float(grid[np.argmax(loglik[:, cols].sum(axis=1))])
    fallback = float(np.median(list(best.values()))) if best else 1.0
    return np.array([best.get(g, fallback) for g in groups.tolist()])


# ----------------------------------------------------------------------------- tables and files
@dataclass
class Smoothed:
    """What `smooth_frame` returns."""

    predictions: pd.DataFrame  # DeepLabCut layout; likelihood column as in the input
    variance: pd.DataFrame  # posterior variance, sidecar layout (x_var, y_var)
    process_noise: dict[str, float]  # q per bodypart, px^2/frame^3
    observation: str  # the observation-noise rule used


def _inlier_probability(xy: np.ndarray, pos: np.ndarray, pvar: np.ndarray, prior: np.ndarray,
                        inlier: np.ndarray, outlier_px: float) -> np.ndarray:
    """Posterior probability (N, K) that each observed point is an inlier, given the smoothed
    track: Bayes' rule with the prior `prior`, an inlier density N(pos, inlier + pvar) and an
    outlier density N(pos, outlier_px^2 + pvar) per axis, x and y together."""
    res2 = (xy - pos) ** 2
    s_in, s_out = inlier + pvar, outlier_px**2 + pvar
    log_in = -0.5 * (res2 / s_in + np.log(s_in)).sum(axis=-1)
    log_out = -0.5 * (res2 / s_out + np.log(s_out)).sum(axis=-1)
    z = np.log(prior) - np.log1p(-prior) + log_in - log_out
    with np.errstate(invalid="ignore"):
        w = 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))
    return np.nan_to_num(w, nan=1.0)  # unobserved or outside the track: not used anyway


def smooth_frame(
    df: pd.DataFrame, variance: pd.DataFrame | None = None, process_noise: float | None = None,
    observation: str = "auto", radius_px: float = 5.0, outlier_px: float = 50.0,
    iterations: int = 2,
) -> Smoothed:
    """Kalman-smooth a predictions table (see the module docstring for every rule).

    Args:
        df: predictions in DeepLabCut's layout.
        variance: the ensemble's variance table (sidecar layout), if any.
        process_noise: q for every keypoint (default: maximum likelihood per keypoint).
        observation: "auto" (both with a variance table, else likelihood), "likelihood",
            "variance" or "both".
        radius_px: r of the likelihood's definition (within r px of the truth).
        outlier_px: per-axis spread of a prediction that is not within r px.
        iterations: outlier re-weighting rounds after the first smoothing (0: none).

    Raises:
        PoselabError: unknown observation rule, bad numbers, a variance table that does not
            match the predictions, or a rule that needs one without it.
    """
    if observation not in OBSERVATION:
        raise PoselabError(f"unknown observation noise {observation!r}; choose from "
                           f"{', '.join(OBSERVATION)}")
    if not (radius_px > 0 and outlier_px > 0):
        raise PoselabError(f"radius_px and outlier_px must be positive, got {radius_px}, "
                           f"{outlier_px}")
    if process_noise is not None and not process_noise > 0:
        raise PoselabError(f"process noise must be positive, got {process_noise}")
    if not (isinstance(iterations, int) and iterations >= 0):
        raise PoselabError(f"iterations must be a whole number >= 0, got {iterations}")
    rule = observation if observation != "auto" else ("both" if variance is not None
                                                      else "likelihood")
    if rule in ("variance", "both") and variance is None:
        raise PoselabError(f"observation noise {rule!r} needs the ensemble's variance file")
    xy, lik, bodyparts = predictions_arrays(df)
    n, k, _ = xy.shape
    inlier = np.full((n, k, 2), (radius_px / 2) ** 2)  # per-axis variance of a good point
    prior = np.full((n, k), 1 - _EDGE)  # probability of a good point before seeing the track
    if rule in ("likelihood", "both"):
        prior = np.clip(np.nan_to_num(lik, nan=0.0), _EDGE, 1 - _EDGE)
    if rule in ("variance", "both"):
        var, parts = variance_arrays(variance)
        if parts != bodyparts or len(var) != n:
            raise PoselabError(f"the variance file has {len(var)} frames of {parts}, the "
                               f"predictions {n} frames of {bodyparts}")
        inlier = inlier + np.nan_to_num(var, nan=0.0)
    # The first round: the mixture's variance (likelihood_noise, with the inlier variance).
    r = prior[..., None] * inlier + (1 - prior[..., None]) * outlier_px**2
    # Series layout: (T, 2K), all x then all y; a keypoint's x and y share one q.
    y = np.concatenate([xy[..., 0], xy[..., 1]], axis=1)
    groups = np.tile(np.arange(k), 2)
    q = np.full(2 * k, float(process_noise or 1.0))
    pos = pvar = y.copy()
    for round_ in range(iterations + 1) if n else ():
        rr = np.concatenate([r[..., 0], r[..., 1]], axis=1)
        if process_noise is None:
            q = choose_process_noise(y, rr, groups)
        pos, pvar = kalman_smooth(y, rr, q)
        if round_ < iterations:
            w = _inlier_probability(xy, np.stack([pos[:, :k], pos[:, k:]], axis=-1),
                                    np.stack([pvar[:, :k], pvar[:, k:]], axis=-1), prior,
                                    inlier, outlier_px)
            r = inlier / np.maximum(w, _MIN_WEIGHT)[..., None]
    out_xy = np.stack([pos[:, :k], pos[:, k:]], axis=-1)
    out_var = np.stack([pvar[:, :k], pvar[:, k:]], axis=-1)
    scorer = df.columns.get_level_values("scorer")[0]
    out = predictions_frame(out_xy, lik, bodyparts, scorer)
    out.index = df.index
    return Smoothed(out, variance_frame(out_var, bodyparts, scorer),
                    {b: float(q[i]) for i, b in enumerate(bodyparts)}, rule)


def smoothed_path(path: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """`<stem>_smoothed.h5` in dest (default: beside the input)."""
    path = Path(path)
    folder = Path(dest) if dest is not None else path.parent
    return folder / f"{path.stem}_smoothed.h5"


def smooth_predictions(
    path: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    csv: bool = False,
    process_noise: float | None = None,
    observation: str = "auto",
    radius_px: float = 5.0,
    outlier_px: float = 50.0,
    iterations: int = 2,
    echo: Callable[[str], object] | None = None,
) -> Path:
    """Kalman-smooth a predictions file into `<stem>_smoothed.h5`; the input is not touched.

    Uses the ensemble's `<stem>_variance.h5` beside the input when there is one. Writes the
    smoothed positions in DeepLabCut's layout (the likelihood column is the input's, so
    bridged frames keep their NaN or low likelihood and stay hidden below pcutoff) and their
    posterior variance as `<stem>_smoothed_variance.h5`.

    Args:
        path: the predictions .h5 (or .csv) file.
        dest: output folder (default: beside the input).
        csv: also write the .csv twin.
        process_noise: q in px^2/frame^3 for every keypoint (default: maximum likelihood
            per keypoint over a grid).
        observation: "auto", "likelihood", "variance" or "both" (see `smooth_frame`).
        radius_px, outlier_px: the likelihood rule's radius and outlier spread (px).
        iterations: outlier re-weighting rounds after the first smoothing (0: none).
        echo: gets one line naming the observation-noise rule and the q of each keypoint.

    Returns:
        The written .h5 path.

    Raises:
        PoselabError: missing or malformed file, bad options.
    """
    path = Path(path)
    df = read_predictions(path)
    side = variance_path(path)
    variance = read_variance(side) if side.is_file() and observation != "likelihood" else None
    try:
        result = smooth_frame(df, variance, process_noise, observation, radius_px, outlier_px,
                              iterations)
    except PoselabError as exc:
        raise PoselabError(f"{path}: {exc}") from None
    out = smoothed_path(path, dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_variance(result.variance, out)  # the sidecar first: the .h5 marks a finished file
    write_predictions(result.predictions, out, csv=csv)
    if echo is not None:
        qs = ", ".join(f"{b} {q:.3g}" for b, q in result.process_noise.items())
        echo(f"{path.name}: observation noise from {result.observation}; process noise q "
             f"(px^2/frame^3): {qs}")
    return out
