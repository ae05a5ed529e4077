"""Drawing: keypoints on frames (check-labels, labeled videos) and figures.

Colors come from the project's `colormap` (a matplotlib colormap name), one per bodypart in
config order, so every picture of a project uses the same color for the same bodypart.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from poselab.errors import PoselabError

# Sub-pixel drawing: cv2 takes fixed-point coordinates with this many fractional bits.
_SHIFT = 4


def bodypart_colors(colormap: str, k: int) -> list[tuple[int, int, int]]:
    """K distinct BGR colors from a matplotlib colormap name (falls back to 'rainbow')."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError:
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
    from poselab.labels import labels_to_arrays, load_project_labels
    from poselab.project import open_project

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
    for path, xy in tqdm(list(zip(frames.paths, frames.keypoints, strict=True)),
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
        tmp = dest.with_name(f".tmp-{dest.name}")
        cv2.imwrite(str(tmp), out)
        os.replace(tmp, dest)
        written.append(dest)
    return written
