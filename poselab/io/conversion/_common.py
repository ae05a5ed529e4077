"""Pieces every format module shares: predictions and labels as arrays, a project made from
imported labels, and the output-path rules."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import PoselabError


@dataclass
class Predictions:
    """One video's predictions: xy (N, K, 2) and likelihood (N, K) in frame pixels, NaN x, y
    where there is no prediction."""

    xy: np.ndarray
    likelihood: np.ndarray
    bodyparts: list[str]
    scorer: str
    video: Path | None = None  # the analyzed video, when known
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)
    skeleton: list[tuple[str, str]] | None = None
    source: Path | None = None  # the file they were read from


def read_prediction_file(path: Path, video: Path | None = None) -> Predictions:
    """A poselab/DeepLabCut predictions .h5 or .csv, with what its _meta.json knows."""
    from poselab.io.predictions import predictions_arrays, read_meta, read_predictions

    df = read_predictions(path)
    xy, lik, bodyparts = predictions_arrays(df)
    meta = read_meta(path)
    if video is None and meta.get("video"):
        video = Path(meta["video"])
    size = (int(meta["width"]), int(meta["height"])) if meta.get("width") else None
    return Predictions(xy, lik, bodyparts, str(df.columns.get_level_values("scorer")[0]),
                       video, float(meta["fps"]) if meta.get("fps") else None, size,
                       source=path)


def write_prediction_file(pred: Predictions, out: Path, csv: bool = False) -> Path:
    """Predictions in DeepLabCut's layout (.h5, + .csv), written atomically."""
    from poselab.io.predictions import predictions_frame, write_predictions

    df = predictions_frame(pred.xy, pred.likelihood, pred.bodyparts, pred.scorer)
    return write_predictions(df, out, csv=csv)[0]


def imported_name(video_stem: str, scorer: str, folder: Path) -> Path:
    """`<video stem><scorer>.h5`: the name DeepLabCut's tools look for beside a video."""
    return folder / f"{video_stem}{scorer}.h5"


def project_labels(config: Path):
    """(project, canonical labels of all its folders, in config.yaml's bodyparts)."""
    from poselab.io.labels import load_project_labels
    from poselab.io.project import open_project

    project = open_project(config)
    df = load_project_labels(project)
    if df.empty:
        raise PoselabError(f"{project.config_path}: no labeled frames to convert")
    return project, df


def labels_xy(df: pd.DataFrame, bodyparts: list[str]) -> np.ndarray:
    """(N, K, 2) float64 of a canonical labels table, NaN = not labeled."""
    scorer = df.columns.get_level_values("scorer")[0]
    xs = df.loc[:, [(scorer, b, "x") for b in bodyparts]].to_numpy("float64")
    ys = df.loc[:, [(scorer, b, "y") for b in bodyparts]].to_numpy("float64")
    return np.stack([xs, ys], axis=-1)


def labels_table(xy: np.ndarray, images: list[tuple[str, str, str]], bodyparts: list[str],
                 scorer: str) -> pd.DataFrame:
    """A canonical labels table from xy (N, K, 2) and (labeled-data, folder, image) rows."""
    from poselab.io.labels import COLUMN_NAMES

    columns = pd.MultiIndex.from_product([[scorer], bodyparts, ["x", "y"]], names=COLUMN_NAMES)
    index = pd.MultiIndex.from_tuples(images, names=[None, None, None])
    return pd.DataFrame(xy.reshape(len(images), -1).astype("float64"), index=index,
                        columns=columns)


def make_project(out: Path, df: pd.DataFrame, locate: Callable[[tuple], Path], task: str,
                 skeleton: list[list[str]] | None = None,
                 videos: list[Path] | None = None) -> Path:
    """A new poselab/DeepLabCut project at `out` holding the labels `df` (canonical, rows
    ("labeled-data", folder, image)) and copies of their images (`locate(row)` says where
    each one is now). Nothing is left behind on failure.

    Returns:
        The new config.yaml.
    """
    from poselab.io.labels import label_bodyparts, write_labels
    from poselab.io.project import add_videos, create_empty_project

    missing = [locate(row) for row in df.index if not locate(row).is_file()]
    if missing:
        raise PoselabError(f"{missing[0]}: image not found ({len(missing)} of {len(df)} "
                           "missing)")
    scorer = str(df.columns.get_level_values("scorer")[0])
    config = create_empty_project(out, task, scorer, label_bodyparts(df), skeleton)
    try:
        if videos:  # first: a video is refused beside a folder that already holds frames
            add_videos(config, videos)
        for folder, rows in df.groupby(level=1, sort=False):
            dest = config.parent / "labeled-data" / str(folder)
            dest.mkdir(parents=True, exist_ok=True)
            for row in rows.index:
                shutil.copy2(locate(row), dest / row[2])
            write_labels(rows, dest / f"CollectedData_{scorer}.h5")
    except BaseException:
        shutil.rmtree(config.parent, ignore_errors=True)
        raise
    return config


def default_out(src: Path, suffix: str) -> Path:
    """`src` with another suffix, beside it (a folder keeps its name plus the suffix)."""
    return src.with_suffix(suffix) if src.is_file() else src.with_name(src.name + suffix)


def relative_posix(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()
