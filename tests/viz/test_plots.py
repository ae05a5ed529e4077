"""check-labels: labeled frames drawn with bodypart colors and skeleton."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from poselab.errors import PoselabError
from poselab.viz.plots import bodypart_colors, check_labels, draw_keypoints


def test_draw_keypoints_marks_the_right_pixels():
    image = np.zeros((40, 60, 3), np.uint8)
    colors = [(0, 0, 255), (0, 255, 0)]
    xy = np.array([[10.0, 20.0], [np.nan, np.nan]])
    out = draw_keypoints(image, xy, colors, radius=3, alpha=1.0)
    assert tuple(out[20, 10]) == (0, 0, 255)  # BGR red at (x=10, y=20)
    assert out[:, 30:].max() == 0  # the NaN keypoint draws nothing
    assert image.max() == 0  # input untouched


def test_colors_follow_colormap():
    jet = bodypart_colors("jet", 4)
    assert len(set(jet)) == 4
    assert bodypart_colors("no-such-map", 3) == bodypart_colors("rainbow", 3)


def test_check_labels_openfield(openfield_copy: Path):
    config = openfield_copy / "config.yaml"
    config.write_text(config.read_text().replace("skeleton: []", "skeleton:\n- [snout, tailbase]"))
    written = check_labels(config)
    assert len(written) == 116
    out_dir = openfield_copy / "labeled-data" / "m4s1_labeled"
    assert written[0].parent == out_dir
    drawn = cv2.imread(str(written[0]))
    original = cv2.imread(str(openfield_copy / "labeled-data" / "m4s1" / written[0].name))
    assert drawn.shape == original.shape and not np.array_equal(drawn, original)


def test_check_labels_without_labels(tmp_path: Path, tiny_video: Path):
    from poselab.io.project import create_project

    config = create_project("p", "ann", [tiny_video], working_dir=tmp_path)
    with pytest.raises(PoselabError, match="no labeled frames"):
        check_labels(config)
