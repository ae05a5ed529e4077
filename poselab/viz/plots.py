"""Drawing: keypoints on frames (check-labels, labeled videos) and figures.

Colors come from the project's `colormap` (a matplotlib colormap name), one per bodypart in
config order, so every picture of a project uses the same color for the same bodypart.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write
from poselab.progress import progress_bar

log = logging.getLogger(__name__)

# Sub-pixel drawing: cv2 takes fixed-point coordinates with this many fractional bits.
_SHIFT = 4


def bodypart_colors(colormap: str, k: int) -> list[tuple[int, int, int]]:
    """K distinct BGR colors from a matplotlib colormap name (an unknown name is said, and
    'rainbow' used)."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
        near = difflib.get_close_matches(colormap, list(matplotlib.colormaps), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        log.warning("colormap %r is not a matplotlib colormap%s; using 'rainbow'", colormap,
                    hint)
        cmap = matplotlib.colormaps["rainbow"]
    rgba = cmap(np.linspace(0, 1, max(k, 1)))[:k]
    return [(int(b * 255), int(g * 255), int(r * 255)) for r, g, b, _ in rgba]


def named_color(name: str) -> tuple[int, int, int]:
    """BGR of a matplotlib color name ('black', 'w', '#ff0000')."""
    import matplotlib.colors as mcolors

    try:
        r, g, b = mcolors.to_rgb(name)
    except ValueError:
        r, g, b = 0.0, 0.0, 0.0
    return int(b * 255), int(g * 255), int(r * 255)


def _fixed(x: float, y: float) -> tuple[int, int]:
    return int(round(x * (1 << _SHIFT))), int(round(y * (1 << _SHIFT)))


def draw_keypoints(
    image: np.ndarray,
    xy: np.ndarray,
    colors: list[tuple[int, int, int]],
    skeleton: list[tuple[int, int]] = (),
    skeleton_color: tuple[int, int, int] = (0, 0, 0),
    radius: int = 5,
    alpha: float = 0.7,
) -> np.ndarray:
    """Draw keypoints xy (K, 2) (NaN = skip) and skeleton index pairs on a BGR image copy."""
    overlay = image.copy()
    for a, b in skeleton:
        if np.isfinite(xy[[a, b]]).all():
            cv2.line(overlay, _fixed(*xy[a]), _fixed(*xy[b]), skeleton_color, max(1, radius // 3),
                     cv2.LINE_AA, _SHIFT)
    for (x, y), color in zip(xy, colors, strict=False):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(overlay, _fixed(x, y), radius << _SHIFT, color, -1, cv2.LINE_AA, _SHIFT)
    out = cv2.addWeighted(overlay, alpha, image, 1 - alpha, 0)
    for (x, y), color in zip(xy, colors, strict=False):  # crisp outline at full opacity
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(out, _fixed(x, y), radius << _SHIFT, color, 1, cv2.LINE_AA, _SHIFT)
    return out


def draw_legend(image: np.ndarray, names: list[str], colors: list[tuple[int, int, int]]) -> None:
    """A small legend (colored dot + name per bodypart) in the top-left corner, in place."""
    scale = max(0.35, min(image.shape[:2]) / 1000)
    step = int(22 * scale / 0.5)
    width = int(max(len(n) for n in names) * 10 * scale / 0.5) + step * 2 if names else 0
    box = image[4:8 + step * len(names), 4:4 + width]
    box[:] = (0.45 * box).astype(np.uint8)  # darken for contrast on any background
    for i, (name, color) in enumerate(zip(names, colors, strict=True)):
        cy = 4 + step // 2 + step * i + 2
        cv2.circle(image, (4 + step // 2, cy), max(3, step // 4), color, -1, cv2.LINE_AA)
        cv2.putText(image, name, (4 + step, cy + step // 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)


def check_labels(config_path: str | os.PathLike) -> list[Path]:
    """Draw every labeled frame with its keypoints into labeled-data/<stem>_labeled/.

    Returns:
        The written image paths.
    """
    from poselab.io.labels import labels_to_arrays, load_project_labels
    from poselab.io.project import open_project

    project = open_project(config_path)
    df = load_project_labels(project)
    df = df[df.notna().any(axis=1)]
    if df.empty:
        raise PoselabError(f"{project.config_path}: no labeled frames to draw yet")
    frames = labels_to_arrays(df, project.root)
    colors = bodypart_colors(str(project.get("colormap", "rainbow")), len(project.bodyparts))
    index = {b: i for i, b in enumerate(project.bodyparts)}
    skeleton = [(index[a], index[b]) for a, b in project.skeleton]
    radius = int(project.get("dotsize", 6) or 6)
    alpha = float(project.get("alphavalue", 0.7) or 0.7)
    written = []
    for path, xy in progress_bar(list(zip(frames.paths, frames.keypoints, strict=True)),
                                 desc="check-labels", unit="frame"):
        image = cv2.imread(str(path))
        if image is None:
            raise PoselabError(f"{path}: labeled image missing or unreadable")
        out = draw_keypoints(image, xy, colors, skeleton,
                             named_color(str(project.get("skeleton_color", "black"))), radius,
                             alpha)
        draw_legend(out, project.bodyparts, colors)
        dest = path.parent.with_name(path.parent.name + "_labeled") / path.name
        dest.parent.mkdir(exist_ok=True)
        atomic_write(dest, lambda tmp, image=out: cv2.imwrite(str(tmp), image))
        written.append(dest)
    return written


# ----------------------------------------------------------------------------- figures
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; works on headless machines
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))


def plot_learning_curve(metrics_csv: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Loss and train/test pixel error per epoch, from a run's metrics.csv."""
    import pandas as pd

    plt = _pyplot()
    df = pd.read_csv(metrics_csv)
    epochs = df["epoch"] + 1
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, df["loss"], label="total")
    for column in ("heatmap_loss", "locref_loss"):
        if column in df and df[column].notna().any():
            ax_loss.plot(epochs, df[column], label=column.replace("_", " "), alpha=0.7)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="Loss")
    ax_loss.legend()
    for column, label in (("train_px_error", "train"), ("test_px_error", "test")):
        if column in df and df[column].notna().any():
            ok = df[column].notna()
            ax_err.plot(epochs[ok], df[column][ok], marker="o", ms=3, label=label)
    ax_err.set(xlabel="epoch", ylabel="mean pixel error (px)", yscale="log",
               title="Pixel error (lower is better)")
    from matplotlib.ticker import FormatStrFormatter

    for axis in (ax_err.yaxis,):  # plain numbers (2, 3, 5 px), not 2x10^0 on a log axis
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter("%g"))
    ax_err.grid(True, which="both", alpha=0.3)
    if ax_err.lines:
        ax_err.legend()
    fig.tight_layout()
    _save_figure(fig, Path(out))
    plt.close(fig)
    return Path(out)


def plot_calibration(calibration: dict, out: str | os.PathLike) -> Path:
    """Reliability diagram: fraction of correct keypoints vs mean likelihood per bin."""
    plt = _pyplot()
    bins = calibration["bins"]
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    if bins:
        ax.plot([b["mean_likelihood"] for b in bins], [b["fraction_correct"] for b in bins],
                "o-", label=f"model (ECE {calibration['ece']:.3f})")
        for b in bins:
            ax.annotate(f"n={b['n']}", (b["mean_likelihood"], b["fraction_correct"]),
                        fontsize=7, xytext=(3, -10), textcoords="offset points")
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="likelihood",
           ylabel=f"fraction with {calibration['criterion']}", title="Likelihood calibration")
    ax.legend(loc="upper left", fontsize=8)
    _save_figure(fig, Path(out))
    plt.close(fig)
    return Path(out)


def draw_comparisons(frames, pred: dict, info: dict, out_dir: Path) -> list[Path]:
    """Ground truth (filled dots) vs prediction (rings + line to the truth) per image."""
    bodyparts = info["bodyparts"]
    colors = bodypart_colors("rainbow", len(bodyparts))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row, i in enumerate(pred["index"].astype(int)):
        image = cv2.imread(str(frames.paths[i]))
        if image is None:
            continue
        gt, xy = pred["gt"][row], pred["xy"][row]
        out = draw_keypoints(image, gt, colors, radius=4, alpha=0.8)
        for k, color in enumerate(colors):
            if np.isfinite(xy[k]).all():
                if np.isfinite(gt[k]).all():
                    cv2.line(out, _fixed(*gt[k]), _fixed(*xy[k]), color, 1, cv2.LINE_AA, _SHIFT)
                cv2.circle(out, _fixed(*xy[k]), 7 << _SHIFT, color, 2, cv2.LINE_AA, _SHIFT)
        draw_legend(out, [f"{b} (dot: truth, ring: prediction)" if n == 0 else b
                          for n, b in enumerate(bodyparts)], colors)
        path = out_dir / f"{frames.paths[i].parent.name}_{frames.paths[i].name}"
        cv2.imwrite(str(path), out)
        written.append(path)
    return written
