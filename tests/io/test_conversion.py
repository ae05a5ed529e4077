"""poselab convert: predictions and labels to SLEAP, NWB (ndx-pose), COCO and Lightning Pose
and back, each result read with the other tool's own reader (sleap-io, pynwb/ndx-pose,
movement), round trips exact."""

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
from poselab.io.conversion import convert
from poselab.io.labels import load_project_labels, write_labels
from poselab.io.predictions import predictions_frame, read_predictions, write_predictions
from poselab.io.project import add_videos, create_empty_project, open_project
from tests.conftest import write_video

sio = pytest.importorskip("sleap_io")
BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]
N = 30


@pytest.fixture
def predictions(tmp_path: Path) -> Path:
    """A predictions .h5 as analysis writes it: 30 frames, a frame without any prediction
    (x, y NaN, likelihood 0), one point without a position, and its _meta.json."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 64, (N, len(BODYPARTS), 2))
    lik = rng.uniform(0, 1, (N, len(BODYPARTS)))
    xy[7], lik[7] = np.nan, 0.0  # undecodable frame
    xy[12, 2] = np.nan  # one point lost, its likelihood kept
    video = write_video(tmp_path / "mouse1.avi", n_frames=N)
    scorer = "poselab_resnet18_run"
    h5 = write_predictions(predictions_frame(xy, lik, BODYPARTS, scorer),
                           tmp_path / f"mouse1{scorer}.h5")[0]
    meta = {"video": str(video), "fps": 30.0, "width": 64, "height": 48, "scorer": scorer}
    h5.with_name(h5.stem + "_meta.json").write_text(json.dumps(meta))
    return h5


def _table(path: Path) -> pd.DataFrame:
    return read_predictions(path)


def test_predictions_to_slp_and_back(predictions: Path, tmp_path: Path):
    from movement.io import load_poses

    (slp,) = convert(predictions, "slp")
    assert slp == predictions.with_suffix(".slp")
    labels = sio.load_slp(str(slp), open_videos=False)
    assert labels.skeletons[0].node_names == BODYPARTS
    assert labels.videos[0].filename == str(tmp_path / "mouse1.avi")
    first = labels.labeled_frames[0]
    points = first.instances[0].numpy(scores=True)
    df = _table(predictions)
    np.testing.assert_array_equal(points[:, :2], df.iloc[0].to_numpy().reshape(-1, 3)[:, :2])
    assert len(labels.labeled_frames) == N - 1  # the frame without predictions has none
    ds = load_poses.from_sleap_file(slp, fps=30)
    assert ds.position.shape[:3] == (N, 2, len(BODYPARTS))
    np.testing.assert_allclose(ds.position.values[0, :, 1, 0], points[1, :2])
    (back,) = convert(slp, "dlc", tmp_path / "back")
    assert back == tmp_path / "back" / predictions.name  # <video stem><scorer>.h5
    pd.testing.assert_frame_equal(_table(back), df)  # exact, NaN rows included


def test_predictions_to_nwb_and_back(predictions: Path, tmp_path: Path):
    import pynwb
    from movement.io import load_poses

    (nwb,) = convert(predictions, "nwb", tmp_path / "mouse1.nwb")
    with pynwb.NWBHDF5IO(str(nwb), "r") as io:
        estimation = io.read().processing["behavior"]["PoseEstimation"]
        series = estimation.pose_estimation_series["leftear"]
        df = _table(predictions)
        np.testing.assert_array_equal(series.data[:], df.xs("leftear", axis=1, level=1)
                                      .to_numpy()[:, :2])
        np.testing.assert_array_equal(series.confidence[:],
                                      df.xs("leftear", axis=1, level=1).to_numpy()[:, 2])
        assert series.rate == 30.0 and estimation.scorer == "poselab_resnet18_run"
        assert list(estimation.skeleton.nodes[:]) == BODYPARTS
        assert list(estimation.source_video.external_file[:]) == [str(tmp_path / "mouse1.avi")]
        assert list(estimation.source_video.dimension[:]) == [64, 48]
    ds = load_poses.from_nwb_file(nwb)  # movement lists the series by name
    assert ds.position.shape[0] == N and sorted(ds.keypoints.values) == sorted(BODYPARTS)
    np.testing.assert_array_equal(ds.position.sel(keypoints="leftear").values[:, :, 0],
                                  df.xs("leftear", axis=1, level=1).to_numpy()[:, :2])
    (back,) = convert(nwb, "dlc", tmp_path / "back", csv=True)
    pd.testing.assert_frame_equal(_table(back), df)
    assert back.with_suffix(".csv").is_file()


def test_imported_predictions_read_by_movement_as_deeplabcut(predictions: Path,
                                                            tmp_path: Path):
    from movement.io import load_poses

    (slp,) = convert(predictions, "slp", tmp_path / "p.slp")
    (h5,) = convert(slp, "dlc", tmp_path / "dlc")
    ds = load_poses.from_dlc_file(h5, fps=30)
    df = _table(predictions)
    np.testing.assert_array_equal(ds.confidence.values[:, :, 0], df.xs(
        "likelihood", axis=1, level=2).to_numpy())


def _project(tmp_path: Path) -> Path:
    """A project with 2 labeled folders of PNGs (a missing label, an unlabeled image),
    a skeleton and a video."""
    config = create_empty_project(tmp_path / "mice", "mice", "ann", BODYPARTS,
                                  skeleton=[["snout", "tailbase"], ["leftear", "rightear"]])
    root = config.parent
    add_videos(config, [write_video(tmp_path / "mouse1.avi")])
    rng = np.random.default_rng(1)
    for folder, n in (("mouse1", 3), ("mouse2", 2)):
        (root / "labeled-data" / folder).mkdir(exist_ok=True)
        rows = []
        for i in range(n):
            name = f"img{i:03d}.png"
            cv2.imwrite(str(root / "labeled-data" / folder / name),
                        rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
            rows.append(("labeled-data", folder, name))
        columns = pd.MultiIndex.from_product([["ann"], BODYPARTS, ["x", "y"]],
                                             names=["scorer", "bodyparts", "coords"])
        values = rng.uniform(0, 60, (n, 2 * len(BODYPARTS))).round(3)
        values[0, 2:4] = np.nan  # leftear not labeled in the first image
        if folder == "mouse2":
            values[1] = np.nan  # an image with no label at all
        df = pd.DataFrame(values, index=pd.MultiIndex.from_tuples(rows), columns=columns)
        write_labels(df, root / "labeled-data" / folder / "CollectedData_ann.h5")
    return config


def _labels(config: Path) -> pd.DataFrame:
    return load_project_labels(open_project(config))


def test_labels_to_coco_and_back(tmp_path: Path):
    config = _project(tmp_path)
    (path,) = convert(config, "coco", tmp_path / "coco.json")
    coco = json.loads(path.read_text())
    assert len(coco["images"]) == 5 and len(coco["annotations"]) == 4  # 1 image unlabeled
    category = coco["categories"][0]
    assert category["keypoints"] == BODYPARTS and category["skeleton"] == [[1, 4], [2, 3]]
    first = coco["annotations"][0]
    assert first["keypoints"][3:6] == [0, 0, 0] and first["num_keypoints"] == 3
    assert coco["images"][0]["file_name"] == "labeled-data/mouse1/img000.png"
    (new,) = convert(path, "dlc", tmp_path / "imported", images=config.parent)
    pd.testing.assert_frame_equal(_labels(new), _labels(config))
    project = open_project(new)
    assert project.skeleton == [("snout", "tailbase"), ("leftear", "rightear")]
    image = new.parent / "labeled-data" / "mouse2" / "img001.png"
    assert (image.read_bytes() == (config.parent / "labeled-data" / "mouse2" / "img001.png")
            .read_bytes())


def test_labels_to_lightning_pose_and_back(tmp_path: Path):
    config = _project(tmp_path)
    (csv,) = convert(config, "lightning-pose", tmp_path / "lp")
    assert csv == tmp_path / "lp" / "CollectedData.csv"
    table = pd.read_csv(csv, header=[0, 1, 2], index_col=0)  # as Lightning Pose reads it
    assert list(table.index)[:2] == ["labeled-data/mouse1/img000.png",
                                     "labeled-data/mouse1/img001.png"]
    assert (tmp_path / "lp" / "labeled-data" / "mouse2" / "img001.png").is_file()
    assert (tmp_path / "lp" / "videos" / "mouse1.avi").is_file()
    assert not (tmp_path / "lp" / "config.yaml").exists()
    (new,) = convert(tmp_path / "lp", "dlc", tmp_path / "from-lp")
    pd.testing.assert_frame_equal(_labels(new), _labels(config))
    project = open_project(new)
    assert project.bodyparts == BODYPARTS and project.scorer == "ann"
    assert [v.path.name for v in project.videos] == ["mouse1.avi"] and project.videos[0].exists
    assert Path(project.videos[0].key).is_absolute()


def test_labels_to_slp_and_back(tmp_path: Path):
    config = _project(tmp_path)
    (slp,) = convert(config, "slp", tmp_path / "labels.slp")
    labels = sio.load_slp(str(slp))
    assert len(labels.videos) == 2 and len(labels.labeled_frames) == 4
    assert labels.videos[0].shape[0] == 3  # an image sequence of the folder's PNGs
    user = labels.labeled_frames[0].instances[0]
    np.testing.assert_array_equal(user.numpy()[0], _labels(config).iloc[0, :2].to_numpy())
    (new,) = convert(slp, "dlc", tmp_path / "from-slp")
    expected = _labels(config).dropna(how="all")  # SLEAP keeps labeled frames only
    pd.testing.assert_frame_equal(_labels(new), expected)


def test_routes_and_errors(predictions: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["convert", str(predictions), "--to", "coco"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {predictions} (predictions) cannot be converted to coco: predictions "
        "convert to slp or nwb"]
    result = runner.invoke(app, ["convert", str(predictions), "--to", "tflite"])
    assert result.exit_code == 2 and "--to 'tflite': choose one of slp" in result.output
    bad = tmp_path / "bad.slp"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(PoselabError, match="not a readable SLEAP file"):
        convert(bad, "dlc")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(PoselabError, match="neither a project"):
        convert(tmp_path / "nothing", "dlc")
    ok = runner.invoke(app, ["convert", str(predictions), "--to", "nwb"])
    assert ok.exit_code == 0 and "wrote" in ok.output
    assert predictions.with_suffix(".nwb").is_file()
