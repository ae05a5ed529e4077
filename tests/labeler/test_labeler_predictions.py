"""Correcting predictions in the page: machinelabels shown, flagged, accepted (Enter, drag)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poselab.errors import LabelFileError
from poselab.io.labels import read_labels
from poselab.io.predictions import predictions_frame

from .labeler_support import BODYPARTS

pytestmark = pytest.mark.browser

# Frames 0 and 2 of mouse1 have predictions (as `extract-outliers` writes: some frames only).
# config pcutoff is 0.6: leftear (0.3) is under it.
PRED_XY = [[10.25, 10.5], [20.5, 12.75], [30.0, 14.25], [40.75, 16.5]]
PRED_P = [0.95, 0.3, 0.8, 0.7]


def _write_machinelabels(config: Path) -> Path:
    xy = np.array([PRED_XY, PRED_XY], dtype=float)
    xy[1] += 1.0  # frame 2 predicts other positions
    df = predictions_frame(xy, np.array([PRED_P, PRED_P]), BODYPARTS, "DLC_resnet50_x")
    df.index = pd.MultiIndex.from_tuples(
        [("labeled-data", "mouse1", f"img{i:04d}.png") for i in (0, 2)])
    path = config.parent / "labeled-data" / "mouse1" / "machinelabels-iter0.h5"
    df.to_hdf(path, key="df_with_missing", mode="w")
    return path


def _collected(config: Path) -> tuple[Path, Path]:
    base = config.parent / "labeled-data" / "mouse1" / "CollectedData_tester"
    return base.with_suffix(".h5"), base.with_suffix(".csv")


def _row(df: pd.DataFrame, frame: str = "img0000.png") -> dict:
    """{bodypart: (x, y)} of one frame, NaN kept."""
    row = df.loc[("labeled-data", "mouse1", frame)]
    scorer = df.columns.get_level_values(0)[0]
    return {bp: (row[(scorer, bp, "x")], row[(scorer, bp, "y")]) for bp in BODYPARTS}


def _on_disk_within(config: Path, check, timeout: float = 1.0) -> dict:
    """Poll until the .h5 and .csv are equal and `check(row)` holds; fail after `timeout`."""
    h5, csv = _collected(config)
    t0 = time.monotonic()
    while True:
        try:
            a, b = read_labels(h5), read_labels(csv)
            pd.testing.assert_frame_equal(a, b)
            if check(_row(a)):
                return _row(a)
        except (AssertionError, OSError, KeyError, ValueError, LabelFileError):
            pass  # not (completely) written yet
        assert time.monotonic() - t0 < timeout, f"CollectedData not as expected in {timeout} s"
        time.sleep(0.005)


def _close(a, b, tol: float = 1e-6) -> bool:
    return all(math.isclose(u, v, abs_tol=tol) for u, v in zip(a, b, strict=True))


def test_predictions_are_in_state_and_low_likelihood_is_flagged(project, serve, lpage):
    path = _write_machinelabels(project)
    lp = lpage.open(serve(project))
    s = lp.state()
    assert s["predictions"] == {bp: [*xy, p] for bp, xy, p in
                                zip(BODYPARTS, PRED_XY, PRED_P, strict=True)}
    assert s["low_likelihood"] == ["leftear"]
    flagged = lp.js("[...document.querySelectorAll('#legend .bp.low-likelihood')]"
                    ".map(e => e.dataset.bodypart)")
    assert flagged == ["leftear"]
    assert lp.js("document.querySelector('#legend [data-bodypart=leftear] .state')"
                 ".dataset.pred") == "pred 0.30 ?"
    # existing fields are unchanged; a frame without predictions has none and no flags
    assert s["points"] == dict.fromkeys(BODYPARTS) and s["frame_name"] == "img0000.png"
    lp.press("d")
    s = lp.painted()
    assert s["predictions"] == dict.fromkeys(BODYPARTS) and s["low_likelihood"] == []
    assert lp.js("document.querySelectorAll('#legend .bp.low-likelihood').length") == 0
    lp.press("d")
    s = lp.painted()
    assert s["predictions"]["tail"] == [PRED_XY[3][0] + 1, PRED_XY[3][1] + 1, 0.7]
    lp.press("?")
    assert "Enter" in lp.js("document.getElementById('help').textContent")
    lp.press("Escape")
    assert not list(path.parent.glob("CollectedData*"))  # looking writes nothing
    assert lp.errors == []


def test_enter_accepts_predictions_into_empty_bodyparts_as_one_undo_step(project, serve, lpage):
    path = _write_machinelabels(project)
    data = path.read_bytes()
    lp = lpage.open(serve(project))
    lp.click_image(5.0, 40.0)  # snout labeled by hand
    lp.press("3", "x")  # rightear: not visible
    s = lp.saved()
    depth = s["undo_depth"]
    assert s["points"]["snout"] == pytest.approx([5.0, 40.0], abs=0.05)
    assert s["not_visible"] == ["rightear"]

    lp.press("Enter")  # at or above pcutoff only: tail (0.7), not leftear (0.3)
    s = lp.state()
    assert s["points"]["snout"] == pytest.approx([5.0, 40.0], abs=0.05)  # kept
    assert s["points"]["tail"] == PRED_XY[3] and s["points"]["leftear"] is None
    assert "under pcutoff" in lp.js("document.getElementById('toast').textContent")
    assert s["points"]["rightear"] is None and s["not_visible"] == ["rightear"]
    assert s["undo_depth"] == depth + 1
    row = _on_disk_within(project, lambda r: _close(r["tail"], PRED_XY[3]))
    assert np.isnan(row["leftear"]).all() and _close(row["snout"], (5.0, 40.0), 0.05)
    assert np.isnan(row["rightear"]).all()
    lp.press("Enter")  # nothing at or above pcutoff is left: no new undo step
    assert lp.state()["undo_depth"] == depth + 1
    lp.press("Shift+Enter")  # every prediction: leftear too
    s = lp.state()
    assert s["points"]["leftear"] == PRED_XY[1] and s["undo_depth"] == depth + 2
    row = _on_disk_within(project, lambda r: _close(r["leftear"], PRED_XY[1]))
    lp.press("Shift+Enter")  # nothing empty is left
    assert lp.state()["undo_depth"] == depth + 2

    lp.press("Control+z", "Control+z")  # each accept is one step
    s = lp.wait("s => s.points.tail === null")
    assert s["points"]["leftear"] is None and s["undo_depth"] == depth
    assert s["points"]["snout"] == pytest.approx([5.0, 40.0], abs=0.05)
    assert s["not_visible"] == ["rightear"]
    row = _on_disk_within(project, lambda r: np.isnan(r["tail"]).all())
    assert np.isnan(row["leftear"]).all() and _close(row["snout"], (5.0, 40.0), 0.05)
    lp.press("Control+Shift+z", "Control+Shift+z")  # and redo brings both back
    s = lp.saved()
    assert s["points"]["leftear"] == PRED_XY[1] and s["points"]["tail"] == PRED_XY[3]
    assert path.read_bytes() == data
    assert lp.errors == []


def test_dragging_a_prediction_stores_it_at_the_drop_position(project, serve, lpage):
    path = _write_machinelabels(project)
    data = path.read_bytes()
    lp = lpage.open(serve(project))
    page = lp.page
    depth = lp.state()["undo_depth"]
    origin = lp.to_client(0.0, 0.0)
    # grab the tail prediction 1.5 px off its centre: the point must not jump to the pointer
    px, py = lp.to_client(*PRED_XY[3])
    target = (47.37, 31.21)
    tx, ty = lp.to_client(*target)
    page.mouse.move(px + 1.5, py - 1.0)
    page.mouse.down()
    page.mouse.move(tx + 1.5, ty - 1.0, steps=6)
    page.mouse.up()
    s = lp.state()
    assert s["points"]["tail"] == pytest.approx(list(target), abs=0.05)
    assert s["undo_depth"] == depth + 1
    assert s["predictions"]["tail"] == [*PRED_XY[3], 0.7]  # the prediction itself stays
    assert all(s["points"][bp] is None for bp in BODYPARTS[:3])  # nothing else accepted
    assert lp.to_client(0.0, 0.0) == pytest.approx(origin)  # a drag, not a pan
    row = _on_disk_within(project, lambda r: not np.isnan(r["tail"]).any())
    assert np.abs(np.array(row["tail"]) - target).max() <= 0.05
    assert all(np.isnan(row[bp]).all() for bp in BODYPARTS[:3])
    assert path.read_bytes() == data
    assert lp.errors == []
