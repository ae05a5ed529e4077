"""The saturating power law of a learning curve: fit, inversion and a bootstrap interval.

err(n) = a * n^-b + c: the test error after n labeled frames falls as a power of n towards a
floor c that no number of labels goes below (model, training time or label noise set it).

- `fit_power_law`: least squares on log errors (small and large errors weigh alike), with
  a > 0, 0 < b <= 3 and 0 <= c <= the smallest error measured.
- `labels_for`: n = (a / (target - c))^(1/b); infinite when the target is at or below c.
- `estimate_labels`: the labels for a target with a 10th-90th percentile interval from
  `bootstrap_fits` (the runs of each size resampled over seeds with replacement; with one
  seed, the fit's log residuals resampled), 200 refits.

Extending: another curve model is a function beside `power_law` with its own fit and
inversion; test that it recovers known parameters (tests/analysis/test_learning_curve.py).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poselab.errors import PoselabError

BOOTSTRAPS = 200


@dataclass(frozen=True)
class PowerLaw:
    """err(n) = a * n^-b + c; c is the floor that no number of labels goes below."""

    a: float
    b: float
    c: float

    def __call__(self, n):
        return self.a * np.power(np.asarray(n, np.float64), -self.b) + self.c


def power_law(n, a: float, b: float, c: float):
    """a * n^-b + c for an array of sizes n."""
    return a * np.power(np.asarray(n, np.float64), -b) + c


def fit_power_law(sizes: Sequence[float], errors: Sequence[float]) -> PowerLaw:
    """Least-squares fit of log err = log(a n^-b + c) to (size, error) points.

    Args:
        sizes: number of labeled frames of each point (at least 3 distinct values).
        errors: test error of each point (> 0), e.g. several seeds per size.

    Raises:
        PoselabError: fewer than 3 distinct sizes, non-positive errors, or no convergence.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    n = np.asarray(sizes, np.float64)
    e = np.asarray(errors, np.float64)
    keep = np.isfinite(n) & np.isfinite(e)
    n, e = n[keep], e[keep]
    if len(np.unique(n)) < 3:
        raise PoselabError("a power-law fit needs errors at 3 or more sizes")
    if (e <= 0).any() or (n <= 0).any():
        raise PoselabError("a power-law fit needs positive sizes and errors")
    lo = float(e.min())
    c0, b0 = 0.5 * lo, 0.5
    a0 = max(float(np.median(e[n == n.min()])) - c0, 1e-6) * n.min() ** b0
    bounds = ([1e-12, 1e-3, 0.0], [np.inf, 3.0, lo])

    def model(x, a, b, c):
        return np.log(power_law(x, a, b, c))

    try:
        with warnings.catch_warnings():  # the covariance (unused) of an exact fit is inf
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(model, n, np.log(e), p0=[a0, b0, c0], bounds=bounds,
                                  max_nfev=20_000)
    except (RuntimeError, ValueError) as exc:
        raise PoselabError(f"the power-law fit did not converge ({exc})") from None
    return PowerLaw(*(float(p) for p in params))


def labels_for(fit: PowerLaw, target: float) -> float:
    """Labeled frames at which the fitted error reaches `target` (inf below the floor c)."""
    if target <= fit.c:
        return math.inf
    # in logs: a nearly flat curve (b near 0) needs more labels than a float holds
    log_n = math.log(fit.a / (target - fit.c)) / fit.b
    return math.exp(log_n) if log_n < 700 else math.inf


@dataclass
class Estimate:
    """Labels needed for a target error.

    Attributes:
        target_px: the target mean error.
        labels: the fitted curve's answer (inf: the target is at or below its floor).
        low, high: the 10th and 90th percentiles over the bootstrap fits (inf when more
            than that share of them never reach the target).
        reachable: the share of bootstrap fits whose floor lies below the target.
        method: "seeds" (runs resampled over seeds) or "residuals" (one seed).
    """

    target_px: float
    labels: float
    low: float
    high: float
    reachable: float
    method: str


def bootstrap_fits(rows: Sequence[dict], n_boot: int = BOOTSTRAPS, seed: int = 0
                   ) -> list[PowerLaw]:
    """Power laws refitted to resampled curves (see the module docstring); failed fits are
    dropped. `rows` are dicts with size, seed and test_px."""
    rng = np.random.default_rng(seed)
    sizes = sorted({int(r["size"]) for r in rows})
    by_size = {s: np.array([r["test_px"] for r in rows if int(r["size"]) == s]) for s in sizes}
    seeds = {int(r["seed"]) for r in rows}
    fits = []
    if len(seeds) == 1:  # one curve: resample the residuals of its fit, in log space
        n = np.array([int(r["size"]) for r in rows], np.float64)
        e = np.array([r["test_px"] for r in rows], np.float64)
        base = fit_power_law(n, e)
        resid = np.log(e) - np.log(base(n))
    for _ in range(n_boot):
        if len(seeds) == 1:
            errors = np.exp(np.log(base(n)) + rng.choice(resid, len(resid)))
            x = n
        else:
            x = np.concatenate([np.full(len(by_size[s]), s, np.float64) for s in sizes])
            errors = np.concatenate([rng.choice(by_size[s], len(by_size[s])) for s in sizes])
        try:
            fits.append(fit_power_law(x, errors))
        except PoselabError:
            continue
    return fits


def estimate_labels(rows: Sequence[dict], fit: PowerLaw, target: float,
                    n_boot: int = BOOTSTRAPS) -> Estimate:
    """Labels needed for `target` px with its bootstrap interval (10th-90th percentile)."""
    needed = np.array([labels_for(f, target) for f in bootstrap_fits(rows, n_boot)])
    if not needed.size:
        needed = np.array([labels_for(fit, target)])
    # "nearest": actual bootstrap values, never an interpolation towards inf (nan)
    low, high = np.percentile(needed, [10, 90], method="nearest")
    method = "residuals" if len({int(r["seed"]) for r in rows}) == 1 else "seeds"
    return Estimate(float(target), labels_for(fit, target), float(low), float(high),
                    float(np.isfinite(needed).mean()), method)
