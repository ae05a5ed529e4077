"""Keypoint error metrics: pure numpy functions on predictions and ground truth.

Notation: N frames, K keypoints. `pred` and `gt` are (N, K, 2) pixels, `likelihood` (N, K);
NaN in `gt` means "not labeled" and is excluded from every figure. A labeled keypoint whose
prediction is NaN (nothing predicted) cannot have a pixel error: it is left out of the error
means, counted in `missing_predictions`, and counted as a miss in PCK, so a model that
predicts nothing can never look accurate.

DeepLabCut reports the *mean* Euclidean error and calls it RMSE; here `mean_px_error` is that
figure and `rmse` is the true root mean square, so both can be compared with published
numbers. Adding a metric: compute it in `keypoint_metrics` from `err` and `labeled`.
"""

from __future__ import annotations

import numpy as np

PCK_RADIUS = 5.0  # pixels


def _nanmean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


def keypoint_metrics(
    pred: np.ndarray, likelihood: np.ndarray, gt: np.ndarray, pcutoff: float,
    bodyparts: list[str] | None = None, absent: np.ndarray | None = None,
    radius: float = PCK_RADIUS,
) -> dict:
    """Pixel-error metrics of one split.

    Returns:
        A JSON-ready dict: n_frames, n_keypoints (labeled), missing_predictions (labeled
        keypoints with no prediction), mean_px_error, rmse (both over predicted keypoints),
        mean_px_error_pcutoff, rmse_pcutoff, kept_pcutoff (fraction of labeled keypoints
        predicted above pcutoff), pck5 (fraction of labeled keypoints within 5 px; missing
        ones are misses), per_bodypart {name: {mean_px_error, rmse, pck5, n, missing}},
        calibration.
    """
    labeled = np.isfinite(gt).all(axis=-1)  # (N, K)
    err = np.linalg.norm(pred - np.nan_to_num(gt), axis=-1)  # (N, K)
    err = np.where(labeled & np.isfinite(err), err, np.nan)
    valid = labeled & np.isfinite(err)
    confident = valid & (likelihood >= pcutoff)
    e, ec = err[valid], err[confident]
    n_labeled = int(labeled.sum())
    out = {
        "n_frames": int(gt.shape[0]),
        "n_keypoints": n_labeled,
        "missing_predictions": int((labeled & ~valid).sum()),
        "mean_px_error": _nanmean(e),
        "rmse": float(np.sqrt(np.mean(e**2))) if e.size else float("nan"),
        "mean_px_error_pcutoff": _nanmean(ec),
        "rmse_pcutoff": float(np.sqrt(np.mean(ec**2))) if ec.size else float("nan"),
        "kept_pcutoff": float(confident.sum() / n_labeled) if n_labeled else float("nan"),
        "pcutoff": float(pcutoff),
        "pck5": float((e <= PCK_RADIUS).sum() / n_labeled) if n_labeled else float("nan"),
    }
    names = bodyparts or [f"kp{k}" for k in range(gt.shape[1])]
    per = {}
    for k, name in enumerate(names):
        ek = err[valid[:, k], k]
        nk = int(labeled[:, k].sum())
        per[name] = {
            "mean_px_error": _nanmean(ek),
            "rmse": float(np.sqrt(np.mean(ek**2))) if ek.size else float("nan"),
            "pck5": float((ek <= PCK_RADIUS).sum() / nk) if nk else float("nan"),
            "n": nk,
            "missing": nk - int(ek.size),
        }
    out["per_bodypart"] = per
    # Calibration: the likelihood should be P(visible and within `radius` px). Keypoints a
    # labeler marked not visible are, by that definition, never correct.
    gone = absent.astype(bool) & ~labeled if absent is not None else np.zeros_like(labeled)
    lik = np.concatenate([likelihood[valid], likelihood[gone]])
    err_all = np.concatenate([e, np.full(int(gone.sum()), np.inf)])
    ok = np.isfinite(lik)
    out["calibration"] = likelihood_calibration(lik[ok], err_all[ok], radius=radius)
    out["n_absent"] = int(gone.sum())
    return out


def likelihood_calibration(likelihood: np.ndarray, err: np.ndarray, bins: int = 10,
                           radius: float = PCK_RADIUS) -> dict:
    """Does likelihood mean something? Per likelihood bin, the fraction within `radius`.

    A calibrated model has `fraction_correct` close to `mean_likelihood` in every bin; `ece`
    is the count-weighted mean gap (expected calibration error, `bins` equal-width bins);
    `auroc` is how well the likelihood separates errors > radius from the rest (0.5 =
    chance, 1 = perfect; NaN when one of the two groups is empty).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    table, gap = [], 0.0
    correct = err <= radius
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (likelihood >= lo) & ((likelihood < hi) | (hi == 1.0))
        n = int(inside.sum())
        if n == 0:
            continue
        mean_lik, frac = float(likelihood[inside].mean()), float(correct[inside].mean())
        gap += n * abs(mean_lik - frac)
        finite = err[inside][np.isfinite(err[inside])]
        table.append({"bin": [float(lo), float(hi)], "n": n, "mean_likelihood": mean_lik,
                      "fraction_correct": frac,
                      "mean_px_error": float(finite.mean()) if finite.size else float("nan")})
    return {"criterion": f"error <= {radius:g} px", "bins": table,
            "ece": gap / max(len(err), 1) if len(err) else float("nan"),
            "auroc": auroc(likelihood, correct)}


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `score` for `positive` (ties count half): the probability
    that a random positive scores above a random negative."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def format_metrics(name: str, m: dict) -> str:
    """Two lines of a split's headline figures plus the per-bodypart table."""
    lines = [
        f"{name}: {m['n_frames']} frames, {m['n_keypoints']} labeled keypoints"
        + (f", {m['missing_predictions']} missing predictions (count as PCK misses)"
           if m.get("missing_predictions") else ""),
        f"  mean pixel error {m['mean_px_error']:.2f} px (DeepLabCut 'RMSE'), "
        f"RMSE {m['rmse']:.2f} px, PCK@5px {m['pck5']:.1%}",
        f"  with likelihood >= {m['pcutoff']:.2f} ({m['kept_pcutoff']:.0%} kept): "
        f"mean {m['mean_px_error_pcutoff']:.2f} px, RMSE {m['rmse_pcutoff']:.2f} px",
        f"  {'bodypart':<14}{'mean px':>9}{'RMSE':>9}{'PCK@5':>8}{'n':>6}",
    ]
    for bp, v in m["per_bodypart"].items():
        lines.append(f"  {bp:<14}{v['mean_px_error']:>9.2f}{v['rmse']:>9.2f}"
                     f"{v['pck5']:>8.1%}{v['n']:>6d}")
    cal = m["calibration"]
    lines.append(f"  likelihood calibration ({cal['criterion']}): ECE {cal['ece']:.3f}, "
                 f"AUROC {cal.get('auroc', float('nan')):.3f}; "
                 + ", ".join(f"[{b['bin'][0]:.1f},{b['bin'][1]:.1f}] "
                             f"{b['mean_likelihood']:.2f}->{b['fraction_correct']:.2f}"
                             f" (n={b['n']})" for b in cal["bins"]))
    return "\n".join(lines)
