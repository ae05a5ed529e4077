"""Ensembles: combine the predictions of N models of the same video into one table.

`combine_predictions(members)` takes N prediction tables (same frames, same bodyparts) and
returns the ensemble in DeepLabCut's layout plus its per-keypoint variance (the sidecar
layout of poselab.io.predictions: coords x_var, y_var in px^2). Per frame and keypoint:

- x, y: the likelihood-weighted mean of the members that have a finite position; a
  member's weight is its likelihood (clipped to >= 1e-6, so members that all report 0
  still average, and a NaN likelihood counts as that floor);
- likelihood: the plain mean of the members' finite likelihoods;
- x_var, y_var: the mean squared distance of those members from the reported (weighted)
  mean, per axis: the disagreement of the members around the position written, which is
  what a smoother needs as observation noise. One member left gives 0; none gives NaN.

`combine_prediction_files(paths, dest)` reads the members' files and writes
`dest` (.h5) plus its `<stem>_variance.h5` sidecar.

Extending: another combination rule (a median, a trimmed mean) is a function with the same
signature as `combine_predictions`, tested in tests/analysis/test_ensemble.py against
numbers computed by hand.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.predictions import (
    predictions_arrays,
    predictions_frame,
    read_predictions,
    variance_frame,
    write_predictions,
    write_variance,
)
from poselab.pose.ensemble import combine_arrays  # the rule itself lives with the model


def _stack(members: Sequence[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """xy (M, N, K, 2), likelihood (M, N, K), bodyparts, scorer of the first member."""
    if len(members) < 1:
        raise PoselabError("an ensemble needs at least one member's predictions")
    arrays = [predictions_arrays(df) for df in members]
    bodyparts = arrays[0][2]
    for i, (xy, _, parts) in enumerate(arrays[1:], start=1):
        if parts != bodyparts:
            raise PoselabError(f"ensemble member {i} has bodyparts {parts}, member 0 has "
                               f"{bodyparts}")
        if len(xy) != len(arrays[0][0]):
            raise PoselabError(f"ensemble member {i} has {len(xy)} frames, member 0 has "
                               f"{len(arrays[0][0])}")
    scorer = members[0].columns.get_level_values("scorer")[0]
    xy = np.stack([a[0] for a in arrays])
    lik = np.stack([a[1] for a in arrays])
    return xy, lik, bodyparts, scorer


def combine_predictions(
    members: Sequence[pd.DataFrame], scorer: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ensemble of several models' predictions of the same video.

    Args:
        members: prediction tables in DeepLabCut's layout, same frames and bodyparts.
        scorer: scorer of the output (default: the first member's).

    Returns:
        (ensemble predictions in DeepLabCut's layout, variance table with coords x_var,
        y_var in px^2), both indexed by frame number.

    Raises:
        PoselabError: no member, or members that disagree on bodyparts or frame count.
    """
    xy, lik, bodyparts, first = _stack(members)
    mean, mean_lik, var = combine_arrays(xy, lik)
    scorer = scorer or first
    return (predictions_frame(mean, mean_lik, bodyparts, scorer),
            variance_frame(var, bodyparts, scorer))


def combine_prediction_files(
    paths: Sequence[str | os.PathLike], dest: str | os.PathLike, scorer: str | None = None,
    csv: bool = False,
) -> tuple[Path, Path]:
    """Combine members' prediction files into `dest` (.h5) and its variance sidecar.

    Args:
        paths: the members' predictions files (.h5 or .csv) of one video.
        dest: the ensemble's predictions file (its .h5 suffix is enforced).
        scorer: scorer of the output (default: the first member's).
        csv: also write the .csv twin of the predictions.

    Returns:
        (predictions .h5, variance sidecar `<stem>_variance.h5`).

    Raises:
        PoselabError: a missing or malformed member, or members that disagree.
    """
    members = [read_predictions(p) for p in paths]
    mean, var = combine_predictions(members, scorer)
    dest = Path(dest).with_suffix(".h5")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The sidecar first: a predictions file present means its sidecar is complete too.
    side = write_variance(var, dest)
    (h5, *_) = write_predictions(mean, dest, csv=csv)
    return h5, side
