"""`poselab info`: counts from the project and its label files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import numpy as np
import pytest

from poselab.errors import LabelFileError
from poselab.io.info import format_info, project_info
from poselab.io.labels import empty_labels, write_labels
from poselab.io.project import create_project


def test_openfield_info(openfield_dir: Path):
    info = project_info(openfield_dir / "config.yaml")
    assert info["task"] == "openfield" and info["scorer"] == "Pranav"
    assert info["bodyparts"] == ["snout", "leftear", "rightear", "tailbase"]
    assert info["labeled_frames"] == 116
    (folder,) = info["folders"]
    assert folder["name"] == "m4s1" and folder["images"] == 116
    assert folder["per_bodypart"] == {"snout": 116, "leftear": 116, "rightear": 116,
                                      "tailbase": 116}
    video = next(v for v in info["videos"] if v["path"].endswith("m3v1mp4.mp4"))
    assert (video["frames"], video["width"], video["height"]) == (2330, 640, 480)
    assert video["fps"] == pytest.approx(30.0, abs=0.01)
    assert "116 labeled frames" in format_info(info)


def _labeled_project(tmp_path: Path, tiny_video: Path) -> Path:
    config = create_project("p", "ann", [tiny_video], ["a", "b"], working_dir=tmp_path,
                            date=dt.date(2026, 5, 1))
    folder = config.parent / "labeled-data" / "mouse1"
    names = [f"img{i:02d}.png" for i in range(3)]
    for n in names:
        cv2.imwrite(str(folder / n), np.zeros((48, 64, 3), np.uint8))
    df = empty_labels("ann", ["a", "b"], "mouse1", names)
    df.iloc[0] = [1.0, 2.0, 3.0, 4.0]
    df.iloc[1, :2] = [5.0, 6.0]  # only a on the second frame
    write_labels(df, folder / "CollectedData_ann.h5")
    return config


def test_counts_per_bodypart(tmp_path: Path, tiny_video: Path):
    info = project_info(_labeled_project(tmp_path, tiny_video))
    (folder,) = info["folders"]
    assert folder["images"] == 3 and folder["labeled_frames"] == 2
    assert folder["per_bodypart"] == {"a": 2, "b": 1}
    assert info["labeled_frames"] == 2
    assert info["videos"][0]["frames"] == 12 and info["videos"][0]["status"] == "ok"


def test_label_file_disagreeing_with_config(tmp_path: Path, tiny_video: Path):
    config = _labeled_project(tmp_path, tiny_video)
    config.write_text(config.read_text().replace("- b\n", ""))  # drop bodypart b
    with pytest.raises(LabelFileError, match=r"\['b'\] are not in config.yaml"):
        project_info(config)


def test_unreadable_video_is_reported(tmp_path: Path, tiny_video: Path):
    config = _labeled_project(tmp_path, tiny_video)
    (config.parent / "videos" / "mouse1.avi").unlink()
    (config.parent / "videos" / "mouse1.avi").write_bytes(b"junk" * 100)
    info = project_info(config)
    assert info["videos"][0]["status"].startswith("unreadable")
