"""`poselab demo`: the workflow on a synthetic video, with no network and no labels needed.

Stages so far: render a synthetic video with known keypoints, create a project from it,
and summarize it. Later stages (extract, label from ground truth, train, analyze) append
themselves to `run_demo` as they land.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import pandas as pd

from poselab.errors import PoselabError
from poselab.info import format_info, project_info
from poselab.labels import empty_labels, predictions_arrays, write_labels, write_predictions
from poselab.project import create_project, open_project
from poselab.synthetic import SYNTHETIC_BODYPARTS, SYNTHETIC_SKELETON, make_synthetic_video
from poselab.video import VideoReader

DEMO_DATE = dt.date(2026, 1, 1)  # fixed so re-running the demo finds its own project


def write_synthetic_video(
    path: str | os.PathLike, n_frames: int = 300, size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> tuple[Path, Path]:
    """Render a synthetic video and write its ground truth beside it.

    Returns:
        (video path, ground-truth .h5 path `<stem>_groundtruth.h5`, predictions layout).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth = make_synthetic_video(path, n_frames, size, seed)
    (h5,) = write_predictions(truth, path.with_name(f"{path.stem}_groundtruth.h5"))
    return path, h5


def label_from_truth(
    config_path: str | os.PathLike, video: str | os.PathLike, truth: pd.DataFrame,
    indices: list[int],
) -> Path:
    """Stand in for a person: write frames `indices` of `video` and their true keypoints.

    Frames go to labeled-data/<stem>/img<index>.png (DeepLabCut naming) and the keypoints to
    CollectedData_<scorer>.h5/.csv, exactly as after labeling by hand.

    Returns:
        The CollectedData .h5 path.
    """
    project = open_project(config_path)
    video = Path(video)
    folder = project.labeled_data_dir / video.stem
    folder.mkdir(parents=True, exist_ok=True)
    xy, _, bodyparts = predictions_arrays(truth)
    if bodyparts != project.bodyparts:
        raise PoselabError(f"ground truth bodyparts {bodyparts} differ from the project's")
    with VideoReader(video) as reader:
        digits = max(1, math.ceil(math.log10(max(reader.n_frames, 2))))
        names = {}
        for i, frame in reader.frames(indices):
            names[i] = f"img{i:0{digits}d}.png"
            cv2.imwrite(str(folder / names[i]), frame)
    missing = sorted(set(indices) - set(names))
    if missing:
        raise PoselabError(f"{video}: frames {missing[:5]} could not be decoded")
    order = sorted(names)
    df = empty_labels(project.scorer, project.bodyparts, video.stem, [names[i] for i in order])
    df.loc[:, :] = xy[order].reshape(len(order), -1)
    h5, _ = write_labels(df, project.label_file(folder))
    return h5


def make_synthetic_project(
    root: str | os.PathLike, name: str, video_name: str = "mouse.avi", n_frames: int = 48,
    size: tuple[int, int] = (96, 64), seed: int = 0, label_every: int = 4,
    experimenter: str = "gt",
) -> tuple[Path, Path, Path]:
    """A project on a synthetic video with every `label_every`-th frame labeled from truth.

    Returns:
        (config.yaml, video, ground-truth .h5).
    """
    root = Path(root)
    video, truth = write_synthetic_video(root / video_name, n_frames, size, seed)
    config = create_project(name, experimenter, [video], list(SYNTHETIC_BODYPARTS),
                            working_dir=root, date=DEMO_DATE)
    label_from_truth(config, video, pd.read_hdf(truth), list(range(0, n_frames, label_every)))
    return config, video, truth


def run_demo(out: str | os.PathLike, echo: Callable[[str], None] = print) -> Path:
    """Run the demo in `out` and return the project's config.yaml."""
    out = Path(out)
    echo(f"[1/3] rendering a synthetic video (300 frames, 320x240) in {out}")
    video, truth = write_synthetic_video(out / "synthetic-mouse.mp4")
    echo(f"      video {video}\n      ground truth {truth}")
    config = out / f"demo-poselab-{DEMO_DATE.isoformat()}" / "config.yaml"
    if config.is_file():
        echo(f"[2/3] reusing the project {config.parent}")
    else:
        echo("[2/3] creating a project from it")
        config = create_project("demo", "poselab", [video], list(SYNTHETIC_BODYPARTS),
                                working_dir=out, date=DEMO_DATE)
        project = open_project(config)
        project.cfg["skeleton"] = [list(pair) for pair in SYNTHETIC_SKELETON]
        project.save()
    echo("[3/3] poselab info " + str(config))
    echo(format_info(project_info(config)))
    return config
