"""`poselab demo`: the workflow on a synthetic video, with no network and no labels needed.

`run_demo` walks the whole workflow on a synthetic video whose keypoints are known exactly,
so labeling is done from the ground truth and the result can be checked against it. The
helpers here (`write_synthetic_video`, `label_from_truth`, `make_synthetic_project`) also
build the small projects the tests train on.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.frames import FRAME_NAME
from poselab.io.info import format_info, project_info
from poselab.io.labels import empty_labels, write_labels
from poselab.io.predictions import predictions_arrays, write_predictions
from poselab.io.project import create_project, open_project
from poselab.io.synthetic import SYNTHETIC_BODYPARTS, SYNTHETIC_SKELETON, make_synthetic_video
from poselab.io.video import VideoReader

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
    indices: list[int] | None = None,
) -> Path:
    """Stand in for a person: label frames of `video` with their true keypoints.

    With `indices`, frames are first written to labeled-data/<stem>/img<index>.png
    (DeepLabCut naming); without, the frames already there (e.g. from `extract_frames`) are
    labeled. The keypoints go to CollectedData_<scorer>.h5/.csv, exactly as after labeling
    by hand.

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
    if indices is None:
        names = {int(m.group(1)): p.name for p in sorted(folder.iterdir())
                 if (m := FRAME_NAME.fullmatch(p.name))}
    else:
        names = _write_frames(video, folder, indices)
    if not names:
        raise PoselabError(f"{folder}: no frames to label")
    beyond = [i for i in names if i >= len(xy)]
    if beyond:
        raise PoselabError(f"{folder}: frames {beyond[:5]} are beyond the ground truth's "
                           f"{len(xy)} frames")
    order = sorted(names)
    df = empty_labels(project.scorer, project.bodyparts, video.stem, [names[i] for i in order])
    df.loc[:, :] = xy[order].reshape(len(order), -1)
    h5, _ = write_labels(df, project.label_file(folder))
    return h5


def _write_frames(video: Path, folder: Path, indices: list[int]) -> dict[int, str]:
    """Write frames `indices` as img<index>.png; returns {index: file name}."""
    with VideoReader(video) as reader:
        digits = max(1, math.ceil(math.log10(max(reader.n_frames, 2))))
        names = {}
        for i, frame in reader.frames(indices):
            names[i] = f"img{i:0{digits}d}.png"
            cv2.imwrite(str(folder / names[i]), frame)
    missing = sorted(set(indices) - set(names))
    if missing:
        raise PoselabError(f"{video}: frames {missing[:5]} could not be decoded")
    return names


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


DEMO_FRAMES, DEMO_SIZE, DEMO_LABELED = 300, (320, 240), 50
DEMO_RUN = "demo"
_STAGES = 11


def run_demo(
    out: str | os.PathLike, echo: Callable[[str], None] = print, epochs: int | None = None,
) -> dict[str, Path | float]:
    """The whole workflow on a synthetic video; re-running continues where it stopped.

    Every stage calls the same API function as its `poselab` command, so the demo is also a
    map of the workflow. Training uses the `demo` preset (configs/demo.yaml).

    Args:
        out: folder for everything the demo writes.
        echo: where progress lines go.
        epochs: override the preset's training epochs.

    Returns:
        Paths of what it made ("config", "run", "predictions", "filtered", "labeled_video",
        "plots") and the errors ("test_px_error" from evaluation, "video_px_error": median
        error of the filtered predictions against the ground truth over the whole video).
    """
    from poselab.analysis.analyze import analyze_videos
    from poselab.analysis.postprocess import filter_predictions
    from poselab.io.frames import extract_frames
    from poselab.io.predictions import read_meta
    from poselab.pose.evaluation import evaluate, format_evaluation
    from poselab.pose.train_config import resolve_config
    from poselab.pose.training import train
    from poselab.viz.trajectory_plots import plot_trajectories
    from poselab.viz.video_output import make_labeled_video

    out = Path(out)
    cfg = resolve_config("demo", {"epochs": epochs})  # a bad --epochs fails before any work
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoselabError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    started = time.monotonic()
    step = _Steps(echo)
    step(f"rendering a synthetic video ({DEMO_FRAMES} frames, {DEMO_SIZE[0]}x{DEMO_SIZE[1]}) "
         "with known keypoints")
    video = out / "synthetic-mouse.mp4"
    truth_h5 = video.with_name(f"{video.stem}_groundtruth.h5")
    if not (video.is_file() and truth_h5.is_file()):
        write_synthetic_video(video, DEMO_FRAMES, DEMO_SIZE)
    echo(f"      {video}\n      ground truth: {truth_h5}")
    truth = pd.read_hdf(truth_h5, "df_with_missing")

    config = out / f"demo-poselab-{DEMO_DATE.isoformat()}" / "config.yaml"
    step("poselab new: creating a project from it")
    if config.is_file():
        echo(f"      reusing the project {config.parent}")
    else:
        config = create_project("demo", "poselab", [video], list(SYNTHETIC_BODYPARTS),
                                working_dir=out, date=DEMO_DATE)
        project = open_project(config)
        project.cfg["skeleton"] = [list(pair) for pair in SYNTHETIC_SKELETON]
        project.save()
    echo(format_info(project_info(config)))
    project = open_project(config)
    labeled = project.labeled_data_dir / video.stem
    label_file = project.label_file(labeled)

    step(f"poselab extract-frames: picking {DEMO_LABELED} diverse keyframes (k-means)")
    if labeled.is_dir() and any(FRAME_NAME.fullmatch(p.name) for p in labeled.iterdir()):
        echo("      already extracted")  # extracting again would add 50 more frames
    else:
        # a bar on a terminal, a line every ~30 s in a log (poselab.progress)
        extract_frames(config, n=DEMO_LABELED, method="kmeans")
        echo(f"      frames in {labeled}")

    step("labeling the keyframes from the ground truth (standing in for you: on your own "
         "videos this is `poselab label`)")
    if not label_file.is_file():
        label_from_truth(config, video, truth)
    echo(f"      labels: {label_file}")

    run = project.root / "models" / DEMO_RUN
    step(f"poselab train --preset demo: EfficientNet-Lite0 (ImageNet weights), "
         f"{cfg.epochs} epochs")
    if (run / "last.pt").is_file():
        echo(f"      continuing {run}")
        train(config, resume=run, epochs=epochs)
    else:
        if run.is_dir():  # stopped before its first checkpoint: nothing to keep
            shutil.rmtree(run)
        train(config, cfg, name=DEMO_RUN)  # bars on a terminal, epoch lines always
    echo(f"      run: {run} (learning curve: {run / 'learning-curve.png'})")

    step("poselab evaluate: pixel error on the held-out labeled frames")
    result = evaluate(run, plot=True)
    echo(format_evaluation(result))

    step("poselab analyze: predicting every frame of the video")
    dest = out / "analysis"
    (predictions,) = analyze_videos(run, [video], dest=dest, overwrite=True)  # model may be new
    meta = read_meta(predictions)
    echo(f"      {meta['rows']} frames at {meta['frames_per_second']:.0f} frames/s: {predictions}")

    step("poselab filter: median filter over time")
    filtered = filter_predictions(predictions, method="median", window=5)

    step("poselab labeled-video: drawing the predictions on the video")
    labeled_video = make_labeled_video(video, filtered, dest=dest, config=config, trail=5)

    step("poselab plot-trajectories: plots of the filtered predictions")
    plots = plot_trajectories(filtered, dest=dest, config=config)

    video_error = _median_error(filtered, truth)
    test_error = float(result["test"]["mean_px_error"])
    minutes = (time.monotonic() - started) / 60
    step(f"done in {minutes:.1f} min; everything is under {out}")
    for label, path in [("project", config), ("trained model", run),
                        ("evaluation", run / "evaluation"), ("predictions", predictions),
                        ("filtered", filtered), ("labeled video", labeled_video),
                        ("plots", plots[0].parent)]:
        echo(f"      {label + ':':15s}{_shown(path)}")
    echo(f"      test pixel error (held-out labeled frames): {test_error:.2f} px")
    echo(f"      median error over all {len(truth)} frames vs ground truth: "
         f"{video_error:.2f} px")
    if not test_error < 3.0:
        echo("      note: the test error is above the demo's usual < 3 px; train longer "
             "with `poselab demo --epochs 150`")
    return {"config": config, "run": run, "predictions": predictions, "filtered": filtered,
            "labeled_video": labeled_video, "plots": plots[0].parent,
            "test_px_error": test_error, "video_px_error": video_error}


class _Steps:
    """Numbered stage headers: "[3/11] ..."."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo, self.n = echo, 0

    def __call__(self, text: str) -> None:
        self.n += 1
        self.echo(f"[{self.n}/{_STAGES}] {text}")


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is under it, else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _median_error(predictions: Path, truth: pd.DataFrame) -> float:
    """Median Euclidean distance (px) between predicted and true keypoints, all frames."""
    from poselab.io.predictions import read_predictions

    pred_xy = predictions_arrays(read_predictions(predictions))[0]
    true_xy = predictions_arrays(truth)[0]
    return float(np.nanmedian(np.linalg.norm(pred_xy - true_xy, axis=-1)))
