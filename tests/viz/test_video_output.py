"""Labeled videos and trajectory plots from prediction files, through the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io.predictions import predictions_arrays, write_predictions
from poselab.io.project import create_project
from poselab.io.synthetic import make_synthetic_video
from poselab.io.video import VideoReader
from poselab.viz.trajectory_plots import plot_trajectories
from poselab.viz.video_output import _legend_fits, make_labeled_video

runner = CliRunner()
N, SIZE = 40, (96, 64)


@pytest.fixture
def analyzed(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """A synthetic video and its ground truth as predictions; tailbase below pcutoff."""
    video = tmp_path / "mouse.avi"
    df = make_synthetic_video(video, N, SIZE, seed=0)
    df[("synthetic", "tailbase", "likelihood")] = 0.1
    df.loc[10:14, ("synthetic", slice(None), "likelihood")] = 0.3  # all hidden
    return video, write_predictions(df, tmp_path / "mousesynthetic.h5")[0], df


def _frames(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        return [frame for _, frame in reader.frames()]


def _patch_diff(a: np.ndarray, b: np.ndarray, xy: np.ndarray, r: int = 3) -> float:
    x, y = np.round(xy).astype(int)
    pa, pb = a[y - r:y + r + 1, x - r:x + r + 1], b[y - r:y + r + 1, x - r:x + r + 1]
    return float(np.abs(pa.astype(float) - pb).mean())


def test_labeled_video_draws_confident_keypoints_only(analyzed):
    video, predictions, df = analyzed
    out = make_labeled_video(video, predictions, pcutoff=0.6, dotsize=3)
    assert out == predictions.parent / "mousesynthetic_labeled.mp4"
    assert not list(out.parent.glob(".*tmp*"))  # the temporary file is gone
    before, after = _frames(video), _frames(out)
    assert len(after) == len(before) == N
    assert after[0].shape == (SIZE[1], SIZE[0], 3)
    xy, _, bodyparts = predictions_arrays(df)
    snout, tail = bodyparts.index("snout"), bodyparts.index("tailbase")
    for i in (0, 20, N - 1):
        assert _patch_diff(before[i], after[i], xy[i, snout]) > 30  # drawn
        assert _patch_diff(before[i], after[i], xy[i, tail]) < 12  # below pcutoff: untouched
    # Frame 12 has nothing above pcutoff: only the frame number (bottom rows) is drawn.
    assert np.abs(before[12][:-16].astype(float) - after[12][:-16]).mean() < 4
    assert _patch_diff(before[12], after[12], xy[12, snout]) < 12


def _brighter(a: np.ndarray, b: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    """Mean increase of b over a (summed BGR) at pixels sampled along the middle of p-q."""
    points = [np.round(p + (q - p) * t).astype(int) for t in np.linspace(0.4, 0.6, 3)]
    return float(np.mean([b[y, x].astype(int).sum() - a[y, x].astype(int).sum()
                          for x, y in points]))


def test_config_skeleton_and_trail(tmp_path: Path):
    video = tmp_path / "big.avi"  # keypoints ~10 px apart: room for a line between dots
    df = make_synthetic_video(video, 12, (192, 128), seed=0)
    predictions = write_predictions(df, tmp_path / "bigsynthetic.h5")[0]
    config = create_project("t", "me", [video], ["snout", "leftear", "rightear", "tailbase"],
                            working_dir=tmp_path)
    text = config.read_text().replace("skeleton: []", "skeleton: [[snout, leftear]]")
    config.write_text(text.replace("skeleton_color: black", "skeleton_color: white"))

    def frames(dest: str, **kwargs) -> list[np.ndarray]:
        return _frames(make_labeled_video(video, predictions, dest=tmp_path / dest, dotsize=2,
                                          **kwargs))

    plain, skeleton, trail = frames("a"), frames("b", config=config), frames("c", trail=6)
    xy, _, bodyparts = predictions_arrays(df)
    snout, ear = bodyparts.index("snout"), bodyparts.index("leftear")
    for i in (0, 6, 11):  # a white line from the snout to the left ear
        assert _brighter(plain[i], skeleton[i], xy[i, snout], xy[i, ear]) > 150
    # The right ear's path 3 to 2 frames ago is drawn in its color (light): a faded trail.
    right = bodyparts.index("rightear")
    assert _brighter(plain[11], trail[11], xy[8, right], xy[9, right]) > 40
    assert _brighter(plain[11], trail[11], xy[11, snout], xy[11, ear]) == pytest.approx(0, abs=20)


def test_labeled_video_row_count_mismatch(analyzed, tmp_path: Path):
    video, _, df = analyzed
    short = write_predictions(df.iloc[:N - 1], tmp_path / "short.h5")[0]
    with pytest.raises(PoselabError, match=f"{N - 1} prediction rows .* {N} decodable frames"):
        make_labeled_video(video, short, dest=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_legend_only_where_it_fits():
    assert not _legend_fits(64, 4)
    assert _legend_fits(480, 4)


def test_plot_trajectories(analyzed, tmp_path: Path):
    _, predictions, _ = analyzed
    meta = predictions.with_name("mousesynthetic_meta.json")
    meta.write_text(json.dumps({"fps": 30.0, "width": SIZE[0], "height": SIZE[1]}))
    written = plot_trajectories(predictions, dest=tmp_path / "plots")
    folder = tmp_path / "plots" / "plot-poses" / "mousesynthetic"
    assert sorted(p.name for p in written) == sorted(
        ["trajectory.png", "xy-over-time.png", "likelihood.png", "displacement-histogram.png"])
    for path in written:
        assert path.parent == folder
        image = cv2.imread(str(path))
        assert image is not None and min(image.shape[:2]) > 200
        assert image.std() > 10  # not a blank canvas
    assert not list(folder.glob(".tmp-*"))


def test_cli_labeled_video_and_plots(analyzed, tmp_path: Path):
    video, predictions, df = analyzed
    result = runner.invoke(app, ["labeled-video", str(video), str(predictions), "--trail", "3",
                                 "--dest", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "v" / "mousesynthetic_labeled.mp4").is_file()
    result = runner.invoke(app, ["plot-trajectories", str(predictions), "--pcutoff", "0.2"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "plot-poses" / "mousesynthetic").glob("*.png"))) == 4
    short = write_predictions(df.iloc[:5], tmp_path / "short.h5")[0]
    bad = runner.invoke(app, ["labeled-video", str(video), str(short)])
    assert bad.exit_code == 2 and "5 prediction rows" in bad.output
    assert "Traceback" not in bad.output
    bad = runner.invoke(app, ["plot-trajectories", str(video)])
    assert bad.exit_code == 2 and "predictions" in bad.output
