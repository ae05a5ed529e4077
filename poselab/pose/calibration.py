"""Likelihoods that mean a probability.

Definition: the likelihood of a keypoint is the probability that the keypoint is visible AND
its prediction is within r pixels of where a labeler would put it (r = TrainConfig
calibration_radius, 5 px by default). The raw likelihood, sigmoid of the heatmap peak, is a
score with that ordering but not those values; a calibration map fitted on held-out
predictions (the validation split: never the test split, never the training frames the model
has seen) turns it into that probability:

- "platt": p = sigmoid(a * logit(raw) + b), two parameters, stable with few points;
- "isotonic": a monotone piecewise-linear map (scikit-learn's IsotonicRegression), for
  validation sets with enough keypoints of both kinds;
- "auto" picks isotonic from 400 points with at least 40 of each kind, else platt.

The fitted map is saved as `calibration.json` in the run and applied by evaluation, video
analysis (Predictor) and export (recorded in preprocessing.json). Keypoints a labeler marked
not visible count as "not correct" when fitting.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text

FILE = "calibration.json"
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass
class Calibration:
    """A fitted map from raw likelihood to calibrated probability (JSON-able)."""

    method: str  # platt | isotonic
    radius: float  # the r of "within r pixels"
    source: str  # what it was fitted on, e.g. "validation split: 48 keypoints"
    params: dict = field(default_factory=dict)  # platt: a, b; isotonic: x, y knots

    def apply(self, likelihood: np.ndarray) -> np.ndarray:
        """Calibrated likelihoods, same shape and dtype; NaN stays NaN."""
        raw = np.asarray(likelihood)
        if self.method == "platt":
            z = self.params["a"] * _logit(raw) + self.params["b"]
            out = _sigmoid(z)
        elif self.method == "isotonic":
            out = np.interp(raw, self.params["x"], self.params["y"])
        else:
            raise PoselabError(f"unknown calibration method {self.method!r}")
        out = np.where(np.isnan(raw), np.nan, out)
        return out.astype(raw.dtype if raw.dtype.kind == "f" else np.float64)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(**data)


def heldout_outcomes(pred: dict, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(raw likelihood, correct) of every keypoint a labeler saw in held-out predictions
    (evaluation.evaluate_split's dict): labeled ones, correct when within `radius` px, and
    the ones marked not visible, never correct. Unlabeled keypoints say nothing."""
    labeled = np.isfinite(pred["gt"]).all(axis=-1)
    err = np.linalg.norm(pred["xy"] - np.nan_to_num(pred["gt"]), axis=-1)
    seen = labeled | pred["absent"].astype(bool)
    correct = labeled & (err <= radius)
    likelihood = pred.get("raw_likelihood", pred["likelihood"])
    return likelihood[seen], correct[seen]


def fit_calibration(likelihood: np.ndarray, correct: np.ndarray, radius: float, source: str,
                    method: str = "auto") -> Calibration:
    """Fit a map raw likelihood -> P(correct) on held-out keypoints.

    Args:
        likelihood: (n,) raw likelihoods in [0, 1].
        correct: (n,) bool: visible and within `radius` px of the label.
        radius: r, recorded with the map.
        source: where the points come from, recorded with the map.
        method: "auto", "platt" or "isotonic".

    Raises:
        PoselabError: fewer than 8 points, or only one kind of outcome.
    """
    lik = np.asarray(likelihood, np.float64)
    ok = np.asarray(correct, bool)
    keep = np.isfinite(lik)
    lik, ok = lik[keep], ok[keep]
    n_ok, n_bad = int(ok.sum()), int((~ok).sum())
    if len(lik) < 8 or min(n_ok, n_bad) == 0:
        raise PoselabError(f"cannot calibrate on {len(lik)} held-out keypoints ({n_ok} within "
                           f"{radius:g} px, {n_bad} not): need both kinds and at least 8")
    if method == "auto":
        method = "isotonic" if len(lik) >= 400 and min(n_ok, n_bad) >= 40 else "platt"
    if method == "platt":
        a, b = _fit_platt(_logit(lik), ok)
        return Calibration("platt", float(radius), source, {"a": a, "b": b})
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(lik, ok.astype(np.float64))
        x, y = iso.X_thresholds_, iso.y_thresholds_
        return Calibration("isotonic", float(radius), source,
                           {"x": [float(v) for v in x], "y": [float(v) for v in y]})
    raise PoselabError(f"calibration method {method!r}: use auto, platt or isotonic")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) without exp overflow warnings for large |z| (the limit is exact)."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def _fit_platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic regression of y on z (one feature), by Newton's method with a tiny ridge."""
    a, b = 1.0, 0.0
    t = y.astype(np.float64)
    for _ in range(100):
        p = _sigmoid(a * z + b)
        w = np.maximum(p * (1 - p), 1e-9)
        grad = np.array([np.sum((p - t) * z) + 1e-3 * a, np.sum(p - t)])
        hess = np.array([[np.sum(w * z * z) + 1e-3, np.sum(w * z)],
                         [np.sum(w * z), np.sum(w)]])
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    if not (math.isfinite(a) and math.isfinite(b)):
        raise PoselabError("calibration did not converge")
    return float(a), float(b)


def save_calibration(run: str | os.PathLike, calibration: Calibration) -> Path:
    return atomic_write_text(Path(run) / FILE, json.dumps(calibration.to_dict(), indent=1))


def load_calibration(run: str | os.PathLike) -> Calibration | None:
    """The run's calibration map, or None (runs without one keep raw likelihoods).

    Raises:
        PoselabError: a calibration file that cannot be read.
    """
    path = Path(run) / FILE
    if not path.is_file():
        return None
    try:
        return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise PoselabError(f"{path}: not a readable calibration file ({exc})") from exc
