"""Figures of a predictions file: trajectories, x/y and likelihood over time, displacements.

`plot_trajectories` writes PNGs into `<dest or the file's folder>/plot-poses/<file stem>/`.
Bodypart colors come from the project colormap (default 'rainbow', as in labeled videos),
so a bodypart has the same color in every picture. Points below pcutoff are left out of the
position plots and of the displacement histogram; the likelihood plot shows every frame.

Adding a figure: write `_my_figure(plt, data: _Poses) -> Figure` and add it to FIGURES under
its file name; `plot_trajectories` saves and closes it. Add a test in
tests/viz/test_video_output.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poselab.io.fileio import ensure_dir
from poselab.viz.plots import _pyplot, _save_figure, bodypart_colors


@dataclass
class _Poses:
    """Everything a figure needs. xy (N, K, 2) with NaN below pcutoff; likelihood (N, K)."""

    name: str
    xy: np.ndarray
    likelihood: np.ndarray
    bodyparts: list[str]
    colors: list[tuple[float, float, float]]  # matplotlib RGB in 0..1
    pcutoff: float
    fps: float | None
    size: tuple[int, int] | None  # (width, height) of the frames, when known

    @property
    def time(self) -> np.ndarray:
        n = len(self.likelihood)
        return np.arange(n) / self.fps if self.fps else np.arange(n)

    @property
    def time_label(self) -> str:
        return "time (s)" if self.fps else "frame"


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0,
                  frameon=False, markerscale=3)


def _trajectory(plt, data: _Poses):
    fig, ax = plt.subplots(figsize=(6.4, 5))
    for k, (name, color) in enumerate(zip(data.bodyparts, data.colors, strict=True)):
        x, y = data.xy[:, k, 0], data.xy[:, k, 1]
        # A line through NaN breaks: a hidden stretch is not bridged by a straight segment.
        ax.plot(x, y, "-", color=color, lw=0.8, alpha=0.6)
        ax.plot(x, y, ".", color=color, ms=3, label=name)
    if data.size:
        ax.set_xlim(0, data.size[0])
        ax.set_ylim(data.size[1], 0)
    else:
        ax.invert_yaxis()  # image coordinates: y grows downward, as in the video
    ax.set_aspect("equal", adjustable="datalim" if not data.size else "box")
    ax.set(xlabel="x (px)", ylabel="y (px, down)",
           title=f"Trajectories (likelihood >= {data.pcutoff:g})\n{data.name}")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


def _xy_over_time(plt, data: _Poses):
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for c, (ax, label) in enumerate(zip(axes, ("x (px)", "y (px, down)"), strict=True)):
        for k, (name, color) in enumerate(zip(data.bodyparts, data.colors, strict=True)):
            # Small markers keep isolated confident frames (between hidden ones) visible.
            ax.plot(data.time, data.xy[:, k, c], ".-", color=color, lw=1, ms=1.5, label=name)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].invert_yaxis()  # same orientation as the image: up in the plot is up in the video
    axes[0].set_title(f"Position over time (likelihood >= {data.pcutoff:g})\n{data.name}")
    axes[1].set_xlabel(data.time_label)
    _legend(axes[0])
    fig.tight_layout()
    return fig


def _likelihood(plt, data: _Poses):
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for k, (name, color) in enumerate(zip(data.bodyparts, data.colors, strict=True)):
        ax.plot(data.time, data.likelihood[:, k], color=color, lw=1, label=name)
    ax.axhline(data.pcutoff, color="k", ls="--", lw=1, label=f"pcutoff {data.pcutoff:g}")
    ax.set(xlabel=data.time_label, ylabel="likelihood", ylim=(-0.02, 1.02),
           title=f"Likelihood over time\n{data.name}")
    ax.grid(alpha=0.3)
    _legend(ax)
    fig.tight_layout()
    return fig


def _displacement(plt, data: _Poses):
    # Frame-to-frame distance, only where both frames are above pcutoff; big values are jumps.
    step = np.linalg.norm(np.diff(data.xy, axis=0), axis=-1)  # (N-1, K)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    finite = step[np.isfinite(step)]
    # Rare huge jumps would squash the histogram: they are gathered in the last bin.
    top = float(np.percentile(finite, 99.9)) if finite.size else 1.0
    clipped = bool(finite.size and finite.max() > top)
    bins = np.linspace(0, max(top, 1e-6), 40)
    for k, (name, color) in enumerate(zip(data.bodyparts, data.colors, strict=True)):
        values = step[:, k][np.isfinite(step[:, k])]
        if values.size:
            ax.hist(np.clip(values, 0, bins[-1]), bins=bins, histtype="step", color=color,
                    lw=1.5, label=f"{name} (n={values.size})")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set(xlabel="displacement between consecutive frames (px"
           + ("; last bin: that or more)" if clipped else ")"),
           ylabel="frame pairs (log scale)", yscale="log",
           title=f"Frame-to-frame displacement (likelihood >= {data.pcutoff:g})\n{data.name}")
    # Plain 1, 10, 100 tick labels rather than 10^0, 10^1, 10^2.
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


FIGURES: dict[str, Callable] = {
    "trajectory.png": _trajectory,
    "xy-over-time.png": _xy_over_time,
    "likelihood.png": _likelihood,
    "displacement-histogram.png": _displacement,
}


def plot_trajectories(
    predictions: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    pcutoff: float | None = None,
    config: str | os.PathLike | None = None,
) -> list[Path]:
    """PNG figures of a predictions file in `<dest or its folder>/plot-poses/<stem>/`.

    Args:
        predictions: the predictions .h5 (or .csv).
        dest: folder under which plot-poses/ is created (default: the file's folder).
        pcutoff: positions below this likelihood are omitted (and marked on the likelihood
            plot); default: the config's pcutoff with `config`, else 0.6.
        config: project config.yaml, for its colormap (default 'rainbow').

    Returns:
        The written PNG paths: trajectory, x/y over time, likelihood, displacement histogram.
        Time is in seconds when the `<stem>_meta.json` beside the file gives the fps.

    Raises:
        PoselabError: missing or malformed predictions file or config.
    """
    from poselab.io.predictions import predictions_arrays, read_meta, read_predictions
    from poselab.viz.video_output import DEFAULT_COLORMAP

    predictions = Path(predictions)
    df = read_predictions(predictions)
    xy, likelihood, bodyparts = predictions_arrays(df)
    from poselab.io.project import open_project, resolve_pcutoff

    pcutoff = resolve_pcutoff(pcutoff, config)
    colormap = DEFAULT_COLORMAP
    if config is not None:
        colormap = str(open_project(config).get("colormap", colormap) or colormap)
    meta = read_meta(predictions)
    fps = meta.get("fps")
    width, height = meta.get("width"), meta.get("height")
    data = _Poses(
        name=predictions.name,
        xy=np.where((likelihood >= pcutoff)[..., None], xy, np.nan),
        likelihood=likelihood,
        bodyparts=bodyparts,
        colors=[(r / 255, g / 255, b / 255) for b, g, r in bodypart_colors(colormap,
                                                                            len(bodyparts))],
        pcutoff=pcutoff,
        fps=float(fps) if isinstance(fps, int | float) and fps > 0 else None,
        size=(int(width), int(height)) if isinstance(width, int) and isinstance(height, int)
        else None,
    )
    folder = ensure_dir(dest) if dest is not None else predictions.parent
    folder = folder / "plot-poses" / predictions.stem
    plt = _pyplot()
    written = []
    for filename, figure in FIGURES.items():
        fig = figure(plt, data)
        try:
            _save_figure(fig, folder / filename)
        finally:
            plt.close(fig)
        written.append(folder / filename)
    return written
