"""Labeled videos: a video's frames with its predicted keypoints drawn on them.

Frames are streamed from VideoReader (the only reader of videos) and written one by one with
cv2.VideoWriter to a temporary file that is renamed at the end, so memory stays flat and an
interrupted run leaves no partial video. Drawing reuses plots.py (colors, keypoints, legend),
so a labeled video uses the same bodypart colors as check-labels and the trajectory plots.

Extending: per-frame decorations go in `_decorate` (it gets the frame, the frame index and
the drawing style); keep them cheap, they run on every frame.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write, ensure_dir
from poselab.progress import progress_bar
from poselab.viz.plots import (
    _SHIFT,
    _fixed,
    bodypart_colors,
    draw_keypoints,
    draw_legend,
    named_color,
)

DEFAULT_COLORMAP = "rainbow"  # also the trajectory plots' default: same colors everywhere


@dataclass
class Style:
    """How keypoints are drawn: one BGR color per bodypart, skeleton index pairs, sizes."""

    bodyparts: list[str]
    colors: list[tuple[int, int, int]]
    skeleton: list[tuple[int, int]]
    skeleton_color: tuple[int, int, int]
    radius: int
    alpha: float


def drawing_style(
    bodyparts: list[str], config: str | os.PathLike | None, dotsize: int | None, height: int
) -> Style:
    """Colors, skeleton and dot size from the project config (if any) or defaults.

    Skeleton pairs naming a bodypart absent from the predictions are skipped.
    """
    colormap, skeleton, skeleton_color, alpha, size = DEFAULT_COLORMAP, [], "black", 0.7, None
    if config is not None:
        from poselab.io.project import open_project

        project = open_project(config)
        colormap = str(project.get("colormap", DEFAULT_COLORMAP) or DEFAULT_COLORMAP)
        index = {b: i for i, b in enumerate(bodyparts)}
        skeleton = [(index[a], index[b]) for a, b in project.skeleton
                    if a in index and b in index]
        skeleton_color = str(project.get("skeleton_color", "black") or "black")
        alpha = float(project.get("alphavalue", 0.7) or 0.7)
        size = project.get("dotsize")
    # Without a configured size, about 1% of the frame height: visible, not covering much.
    radius = int(dotsize or size or max(2, round(height / 100)))
    return Style(bodyparts, bodypart_colors(colormap, len(bodyparts)), skeleton,
                 named_color(skeleton_color), radius, alpha)


def _draw_trails(image: np.ndarray, history: deque, style: Style) -> np.ndarray:
    """Lines through each keypoint's last positions, fading with age (oldest faintest)."""
    points = list(history)
    n = len(points)
    for age, (a, b) in enumerate(zip(points[:-1], points[1:], strict=True)):
        overlay = image.copy()
        drew = False
        for k, color in enumerate(style.colors):
            if np.isfinite(a[k]).all() and np.isfinite(b[k]).all():
                cv2.line(overlay, _fixed(*a[k]), _fixed(*b[k]), color,
                         max(1, style.radius // 2), cv2.LINE_AA, _SHIFT)
                drew = True
        if drew:
            weight = style.alpha * (age + 1) / n  # newer segments are more opaque
            image = cv2.addWeighted(overlay, weight, image, 1 - weight, 0)
    return image


def _decorate(image: np.ndarray, index: int, style: Style, legend: bool) -> None:
    """Frame index (bottom left) and, if it fits, the bodypart legend (top left), in place."""
    h = image.shape[0]
    scale = max(0.3, h / 900)
    cv2.putText(image, f"frame {index}", (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    if legend:
        draw_legend(image, style.bodyparts, style.colors)


def _legend_fits(height: int, k: int) -> bool:
    # draw_legend's row height at this frame size; a legend over half the frame hides the animal.
    step = int(22 * max(0.35, height / 1000) / 0.5)
    return step * k + 8 <= height // 2


def labeled_video_path(video: Path, predictions: Path, scorer: str, dest: Path | None) -> Path:
    """`<video stem><scorer>[_filtered]_labeled.mp4` in dest or beside the predictions."""
    tag = "_filtered" if predictions.stem.endswith("_filtered") else ""
    folder = dest if dest is not None else predictions.parent
    return folder / f"{video.stem}{scorer}{tag}_labeled.mp4"


def make_labeled_video(
    video: str | os.PathLike,
    predictions: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    pcutoff: float | None = None,
    config: str | os.PathLike | None = None,
    trail: int = 0,
    dotsize: int | None = None,
    codec: str = "mp4v",
) -> Path:
    """Draw predictions (likelihood >= pcutoff) on every frame of a video.

    Args:
        video: the analyzed video.
        predictions: its predictions .h5 (or .csv); one row per video frame.
        dest: output folder (default: the predictions' folder).
        pcutoff: keypoints below this likelihood are not drawn (default: the config's
            pcutoff with `config`, else 0.6).
        config: project config.yaml: colormap, skeleton, skeleton_color, dotsize, alphavalue.
        trail: also draw each keypoint's path over this many previous frames (0: none).
        dotsize: keypoint radius in pixels (default: config dotsize, else ~1% of the height).
        codec: FourCC of the written .mp4 (mp4v plays everywhere; avc1 where OpenCV has it).

    Returns:
        The written `<video stem><scorer>_labeled.mp4`.

    Raises:
        PoselabError: missing/unreadable video or predictions, row count != frame count,
            the writer cannot open.
    """
    from poselab.io.predictions import predictions_arrays, read_predictions
    from poselab.io.project import resolve_pcutoff
    from poselab.io.video import VideoReader, check_prediction_rows

    video, predictions = Path(video), Path(predictions)
    if trail < 0:
        raise PoselabError(f"--trail must be >= 0, got {trail}")
    df = read_predictions(predictions)
    xy, likelihood, bodyparts = predictions_arrays(df)
    pcutoff = resolve_pcutoff(pcutoff, config)
    xy = np.where((likelihood >= pcutoff)[..., None], xy, np.nan)  # (N, K, 2); NaN = hidden
    scorer = str(df.columns.get_level_values("scorer")[0])
    out = labeled_video_path(video, predictions, scorer,
                             ensure_dir(dest, create=False) if dest else None)
    with VideoReader(video) as reader:
        n = len(xy)
        check_prediction_rows(reader, n, predictions)
        style = drawing_style(bodyparts, config, dotsize, reader.height)
        legend = _legend_fits(reader.height, len(bodyparts))
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, lambda tmp: _write_video(tmp, reader, xy, n, style, legend, trail,
                                                   codec, predictions))
    return out


def _write_video(tmp: Path, reader, xy: np.ndarray, n: int, style, legend: bool, trail: int,
                 codec: str, predictions) -> None:
    """Draw every frame of `reader` with its row of `xy` into the video file `tmp`.

    A frame that does not decode (in the middle, or past the end of a video that ends early:
    its rows are NaN, see video.check_prediction_rows) is drawn as a lost frame, so the
    output has exactly one frame per prediction row and keeps the video's timing.
    """
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec),
                             reader.fps or 30.0, (reader.width, reader.height))
    try:
        if not writer.isOpened():
            raise PoselabError(f"{tmp}: cv2.VideoWriter cannot open a {codec!r} writer")
        history: deque = deque(maxlen=trail + 1)
        expected = 0

        def lost_until(stop: int) -> None:
            for lost in range(expected, stop):  # undecodable: keep the timing honest
                writer.write(_lost_frame(reader, lost))
                history.append(xy[lost])

        for index, frame in progress_bar(reader.frames(), total=n, desc="labeled-video",
                                         unit="frame"):
            if index >= n:
                raise PoselabError(f"{reader.path}: more frames than the {n} prediction rows "
                                   f"of {predictions}")
            lost_until(index)
            history.append(xy[index])
            image = _draw_trails(frame, history, style) if trail else frame
            image = draw_keypoints(image, xy[index], style.colors, style.skeleton,
                                   style.skeleton_color, style.radius, style.alpha)
            _decorate(image, index, style, legend)
            writer.write(image)
            expected = index + 1
        lost_until(n)  # the video ended early: its last rows are frames that never decoded
    finally:
        writer.release()


def _lost_frame(reader, index: int) -> np.ndarray:
    """A black frame that says the video frame could not be decoded."""
    image = np.zeros((reader.height, reader.width, 3), np.uint8)
    cv2.putText(image, f"frame {index}: undecodable", (4, reader.height // 2),
                cv2.FONT_HERSHEY_SIMPLEX, max(0.3, reader.height / 900), (255, 255, 255), 1,
                cv2.LINE_AA)
    return image
