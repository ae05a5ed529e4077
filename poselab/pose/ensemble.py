"""Ensembles: N models trained on the same split with different seeds, used as one.

An ensemble run is a folder `models/<run>/` holding `ensemble.yaml` (the member folders) and
one ordinary run dir per member (`member-0/`, `member-1/`, ...). Members share the split
(TrainConfig.split_seed) and differ in initialisation, augmentation and batch order
(TrainConfig.seed). Their predictions combine by `combine_arrays`: the likelihood-weighted
mean position, the mean likelihood, and the per-axis spread of the members around that mean
(the observation noise a smoother needs, written beside the predictions as a variance file).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import yaml

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text

ENSEMBLE_FILE = "ensemble.yaml"
_MIN_WEIGHT = 1e-6  # a member reporting likelihood 0 still counts, a little


def is_ensemble(run: str | os.PathLike) -> bool:
    return (Path(run) / ENSEMBLE_FILE).is_file()


def ensemble_members(run: str | os.PathLike) -> list[Path]:
    """The members' run dirs, in order.

    Raises:
        PoselabError: a malformed ensemble.yaml or a member without run.yaml.
    """
    path = Path(run) / ENSEMBLE_FILE
    try:
        names = yaml.safe_load(path.read_text(encoding="utf-8"))["members"]
        members = [Path(run) / str(n) for n in names]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise PoselabError(f"{path}: not a readable ensemble description ({exc})") from exc
    missing = [m for m in members if not (m / "run.yaml").is_file()]
    if missing or not members:
        raise PoselabError(f"{path}: member {missing[0] if missing else '(none)'} is not a "
                           "trained run (resume the ensemble to finish it)")
    return members


def write_ensemble(run: Path, members: list[str], seeds: list[int]) -> None:
    atomic_write_text(run / ENSEMBLE_FILE, yaml.safe_dump(
        {"members": members, "seeds": seeds}, sort_keys=False))


def combine_arrays(xy: np.ndarray, likelihood: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ensemble of M members from xy (M, N, K, 2) and likelihood (M, N, K).

    Returns:
        (mean xy (N, K, 2), mean likelihood (N, K), variance (N, K, 2)). Per frame and
        keypoint: x, y are the likelihood-weighted mean of the members with a finite
        position (weights clipped to >= 1e-6 so members that all report 0 still average);
        the likelihood is the plain mean of the finite ones; the variance is the mean
        squared distance of those members from the mean, per axis (one member: 0). NaN
        where no member has a position.
    """
    finite = np.isfinite(xy).all(axis=-1)  # (M, N, K)
    w = np.where(finite, np.clip(np.nan_to_num(likelihood, nan=0.0), _MIN_WEIGHT, None), 0.0)
    total = w.sum(axis=0)  # (N, K)
    seen = total > 0
    safe = np.where(seen, total, 1.0)[..., None]
    pos = np.where(finite[..., None], xy, 0.0)
    mean = (w[..., None] * pos).sum(axis=0) / safe
    n = finite.sum(axis=0)[..., None]  # members with a position, (N, K, 1)
    dev2 = np.where(finite[..., None], (pos - mean) ** 2, 0.0).sum(axis=0) / np.maximum(n, 1)
    mean[~seen] = np.nan
    dev2[~seen] = np.nan
    with warnings.catch_warnings():  # an all-NaN column is NaN on purpose, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        lik = np.nanmean(likelihood, axis=0)
    return mean, lik, dev2
