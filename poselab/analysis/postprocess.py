"""Post-processing of prediction files: reading them back and filtering trajectories.

A predictions file is DeepLabCut's layout (see labels.py): integer frame index 0..N-1,
columns (scorer, bodyparts, coords) with coords x, y, likelihood, .h5 key df_with_missing.

Filtering is likelihood-aware and edge-aware, unlike DeepLabCut's median filter (which uses
scipy.signal.medfilt and so zero-pads: the first and last window/2 frames are pulled toward
(0, 0)). For every bodypart and coordinate:
1. points with likelihood < pcutoff (or a non-finite x/y) become missing (NaN);
2. interior gaps of at most `max_gap` frames are linearly interpolated; longer gaps and
   gaps at the start or end stay NaN: nothing is invented where the data has no support;
3. each contiguous run of valid frames is filtered on its own, with edge-aware modes
   (running median with 'nearest' edges, Savitzky-Golay with polynomial fits at the edges),
   so a gap never bleeds into its neighbours;
4. x and y are replaced by the filtered values; the likelihood column is kept as it was, so
   interpolated points keep their low likelihood and stay hidden at the same pcutoff;
5. by default the output is complete, as DeepLabCut's filtered files are (tools that read
   them expect coordinates in every row): what steps 1-3 left missing (long gaps, the start
   and end) gets the filtered raw predictions, and frames without any prediction (an
   undecodable frame) are interpolated from their neighbours (the nearest value at the
   ends). `mask_below_pcutoff` keeps those points NaN instead.

Adding a filter: write `_myfilter(series, window, polyorder) -> series` for one 1-D run with
no NaN (len(series) >= window is guaranteed; return it unchanged if it cannot be filtered),
add it to FILTERS under its CLI name, and add a test in tests/analysis/test_postprocess.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.fileio import ensure_dir
from poselab.io.predictions import DEFAULT_PCUTOFF, read_predictions, write_predictions
from poselab.io.project import check_pcutoff


# ----------------------------------------------------------------------------- filters
def _median(series: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    # 'nearest' repeats the edge value: a constant or linear start stays where it is, where
    # medfilt's zero padding would drag the first window/2 frames toward 0.
    return median_filter(series, size=window, mode="nearest")


def _savgol(series: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    from scipy.signal import savgol_filter

    if window <= polyorder:  # a short run: no smoothing polynomial fits, keep it as it is
        return series
    # mode='interp' fits the polynomial to the first/last window: no padding artefacts.
    return savgol_filter(series, window, polyorder, mode="interp")


FILTERS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "median": _median,
    "savgol": _savgol,
}


def _fill_short_gaps(series: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate interior NaN runs of at most max_gap frames; others stay NaN."""
    out = series.copy()
    valid = np.flatnonzero(np.isfinite(series))
    if valid.size < 2:
        return out
    for a, b in zip(valid[:-1], valid[1:], strict=True):
        if 1 < b - a <= max_gap + 1:
            out[a + 1:b] = np.interp(np.arange(a + 1, b), [a, b], series[[a, b]])
    return out


def filter_series(
    series: np.ndarray, method: str = "median", window: int = 5, polyorder: int = 3,
    max_gap: int | None = None,
) -> np.ndarray:
    """Filter one coordinate over time (N,), NaN = missing (see the module docstring)."""
    max_gap = window if max_gap is None else max_gap
    filled = _fill_short_gaps(np.asarray(series, dtype="float64"), max_gap)
    out = np.full_like(filled, np.nan)
    finite = np.isfinite(filled)
    # Boundaries of contiguous finite runs: each run is filtered independently.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        run = filled[start:stop]
        # A run shorter than the window gets the largest odd window that fits it.
        w = min(window, len(run) if len(run) % 2 else len(run) - 1)
        out[start:stop] = FILTERS[method](run, w, polyorder) if w >= 3 else run
    return out


def _check_options(method: str, window: int, polyorder: int, n: int, where: str) -> None:
    if method not in FILTERS:
        raise PoselabError(f"{where}unknown filter {method!r}; choose from {', '.join(FILTERS)}")
    if window < 3 or window % 2 == 0:
        raise PoselabError(f"{where}window must be an odd number >= 3, got {window}")
    if window > n:
        raise PoselabError(f"{where}window {window} is longer than the {n} frames of the file")
    if method == "savgol" and not 0 <= polyorder < window:
        raise PoselabError(f"{where}polyorder must be in 0..window-1 ({window - 1}), "
                           f"got {polyorder}")


def _complete(masked: np.ndarray, raw: np.ndarray, method: str, window: int,
              polyorder: int) -> np.ndarray:
    """`masked` with its NaN replaced by the filtered raw predictions (every finite raw
    value counts, whatever its likelihood); frames with no raw value at all are linearly
    interpolated, the nearest value at the ends. All NaN only when `raw` has no finite value."""
    if np.isfinite(masked).all():
        return masked
    valid = np.flatnonzero(np.isfinite(raw))
    if valid.size == 0:
        return masked
    # np.interp holds the end values beyond the first/last valid frame
    full = np.interp(np.arange(len(raw)), valid, raw[valid])
    filled = filter_series(full, method, window, polyorder, max_gap=0)
    return np.where(np.isfinite(masked), masked, filled)


def filter_frame(
    df: pd.DataFrame, method: str = "median", window: int = 5, polyorder: int = 3,
    pcutoff: float = DEFAULT_PCUTOFF, max_gap: int | None = None,
    mask_below_pcutoff: bool = False,
) -> pd.DataFrame:
    """A filtered copy of a predictions table: same index, columns and dtypes (see the
    module docstring; `mask_below_pcutoff` leaves uncovered points NaN)."""
    _check_options(method, window, polyorder, len(df), "")
    out = df.copy()
    scorer = df.columns.get_level_values("scorer")[0]
    for bodypart in dict.fromkeys(df.columns.get_level_values("bodyparts")):
        lik = df[(scorer, bodypart, "likelihood")].to_numpy("float64")
        x = df[(scorer, bodypart, "x")].to_numpy("float64")
        y = df[(scorer, bodypart, "y")].to_numpy("float64")
        # NaN likelihood compares False: such points are treated as missing too.
        bad = ~(lik >= pcutoff) | ~np.isfinite(x) | ~np.isfinite(y)
        for coord, values in (("x", x), ("y", y)):
            col = (scorer, bodypart, coord)
            filtered = filter_series(np.where(bad, np.nan, values), method, window, polyorder,
                                     max_gap)
            if not mask_below_pcutoff:
                filtered = _complete(filtered, values, method, window, polyorder)
            out[col] = filtered.astype(df[col].dtype)
    return out


def filter_predictions(
    path: str | os.PathLike,
    method: str = "median",
    window: int = 5,
    polyorder: int = 3,
    pcutoff: float | None = None,
    dest: str | os.PathLike | None = None,
    csv: bool = False,
    max_gap: int | None = None,
    mask_below_pcutoff: bool = False,
) -> Path:
    """Filter a predictions file into `<stem>_filtered.h5` (+ .csv); the input is not touched.

    Args:
        path: the predictions .h5 (or .csv) file.
        method: "median" (running median, removes isolated jumps) or "savgol"
            (Savitzky-Golay, smooths jitter while keeping curved paths).
        window: filter length in frames: odd, >= 3 and at most the number of frames.
        polyorder: Savitzky-Golay polynomial order (< window); ignored by "median".
        pcutoff: points below this likelihood are treated as missing (default 0.6; pass the
            project's pcutoff to match it).
        dest: output folder (default: beside the input).
        csv: also write the .csv twin.
        max_gap: longest run of missing frames that is interpolated before filtering
            (default: `window`); longer gaps get the filtered raw predictions.
        mask_below_pcutoff: leave points below pcutoff that no interpolation covers (and
            frames without predictions) NaN, instead of DeepLabCut's complete coordinates.

    Returns:
        The written .h5 path.

    Raises:
        PoselabError: missing or malformed file, unknown method, bad window or polyorder.
    """
    path = Path(path)
    df = read_predictions(path)
    _check_options(method, window, polyorder, len(df), f"{path}: ")
    if max_gap is not None and max_gap < 0:
        raise PoselabError(f"{path}: max_gap must be >= 0, got {max_gap}")
    cutoff = DEFAULT_PCUTOFF if pcutoff is None else check_pcutoff(pcutoff)
    filtered = filter_frame(df, method, window, polyorder, cutoff, max_gap,
                            mask_below_pcutoff)
    folder = ensure_dir(dest) if dest is not None else path.parent
    return write_predictions(filtered, folder / f"{path.stem}_filtered.h5", csv=csv)[0]
