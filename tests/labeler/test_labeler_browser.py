"""The labeling page in headless Chromium: placement precision, keys, persistence, safety."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from poselab.io.labels import read_labels, write_labels

from .labeler_support import BODYPARTS, MARKED_PIXEL, make_project

pytestmark = pytest.mark.browser


def _files(config: Path, folder: str = "mouse1", scorer: str = "tester"):
    base = config.parent / "labeled-data" / folder / f"CollectedData_{scorer}"
    return base.with_suffix(".h5"), base.with_suffix(".csv")


def _point(df: pd.DataFrame, frame: str, bp: str, folder: str = "mouse1"):
    row = df.loc[("labeled-data", folder, frame)]
    scorer = df.columns.get_level_values(0)[0]
    return row[(scorer, bp, "x")], row[(scorer, bp, "y")]


def _visible_image_box(lp) -> tuple[float, float, float, float]:
    """Image-coordinate box that is both on the image and on screen (with a margin)."""
    box = lp.js("(() => { const r = document.getElementById('overlay-canvas')"
                ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })()")
    x0, y0 = lp.to_image(box[0] + 20, box[1] + 20)
    x1, y1 = lp.to_image(box[2] - 20, box[3] - 20)
    return max(x0, 0.0), max(y0, 0.0), min(x1, 63.0), min(y1, 47.0)


def _right_drag(page, start, end) -> None:
    page.mouse.move(*start)
    page.mouse.down(button="right")
    page.mouse.move(*end, steps=4)
    page.mouse.up(button="right")


def test_page_opens_on_the_first_frame_folder_and_bodypart(project, serve, lpage):
    url = serve(project)
    lp = lpage.open(url)
    s = lp.state()
    assert s["folder"] == "mouse1" and s["frame_index"] == 0 and s["frame_name"] == "img0000.png"
    assert s["n_frames"] == 6 and s["active_bodypart"] == "snout" and s["mode"] == "sequential"
    assert s["saved"] is True and s["points"] == dict.fromkeys(BODYPARTS)
    assert lp.legend_active() == "snout" and lp.badge() == "snout"
    assert lp.js("document.querySelectorAll('#folders li').length") == 2
    assert lp.js("document.querySelectorAll('#strip .cell').length") == 6
    lp.press("?")
    assert lp.js("!document.getElementById('help').hidden")
    assert "Ctrl+Z" in lp.js("document.getElementById('help').textContent")
    lp.press("Escape")
    assert lp.js("document.getElementById('help').hidden")
    # brightness/contrast change the display only
    lp.page.fill("#brightness", "2")
    lp.page.fill("#contrast", "1.5")
    assert lp.js("getComputedStyle(document.getElementById('image-canvas')).filter") == \
        "brightness(2) contrast(1.5)"
    assert lp.state()["saved"] and not list((project.parent / "labeled-data").rglob("*.h5"))
    assert lp.foreign_requests(url) == [] and lp.errors == []


def test_click_precision_at_zoom_1_4_16_after_pans(project, serve, lpage):
    lp = lpage.open(serve(project))
    page = lp.page
    rng = np.random.default_rng(4)
    lp.press("m")  # quick mode: the active bodypart stays, every click moves it
    lp.press("0")
    for keys, zoom in (((), 1.0), (("+", "+"), 4.0), (("+", "+"), 16.0)):
        lp.press(*keys)
        assert lp.state()["zoom"] == pytest.approx(zoom)
        # pan so the image centre sits at an awkward fractional offset
        cx, cy = lp.to_client(31.5, 23.5)
        _right_drag(page, (cx, cy), (cx + rng.uniform(-40, 40), cy + rng.uniform(-40, 40)))
        x0, y0, x1, y1 = _visible_image_box(lp)
        assert x1 - x0 > 1 and y1 - y0 > 1
        for _ in range(4):
            target = rng.uniform([x0, y0], [x1, y1])
            before = lp.to_client(*target)
            active = lp.state()["active_bodypart"]
            page.mouse.click(*before)
            stored = lp.state()["points"][active]
            assert np.abs(np.array(stored) - target).max() <= 0.05, (zoom, target, stored)
            assert lp.to_client(*target) == pytest.approx(before, abs=1e-9)  # a click never pans
        lp.press("2" if zoom == 1 else "3")
    # the wheel zooms about the cursor; zoom stays within 0.25x..32x
    cx, cy = lp.to_client(30.0, 20.0)
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -240)
    assert lp.state()["zoom"] > 16 and lp.to_image(cx, cy) == pytest.approx((30.0, 20.0))
    lp.press(*["+"] * 4)
    assert lp.state()["zoom"] == 32
    lp.press(*["-"] * 10)
    assert lp.state()["zoom"] == 0.25


def test_pixel_centres_are_integers_on_screen_at_16x(project, serve, lpage):
    """Independent of the hook's arithmetic: find the red pixel on screen, click its centre."""
    lp = lpage.open(serve(project))
    page = lp.page
    lp.press("0", "+", "+", "+", "+")
    assert lp.state()["zoom"] == pytest.approx(16.0)
    col, row = MARKED_PIXEL
    rect = lp.js("(() => { const r = document.getElementById('overlay-canvas')"
                 ".getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()")
    mid = (rect[0] + rect[2] / 2, rect[1] + rect[3] / 2)
    px, py = lp.to_client(col, row)
    # pan (by a fractional amount) so that the marked pixel lands near the stage centre
    _right_drag(page, mid, (2 * mid[0] - px + 0.37, 2 * mid[1] - py - 0.61))
    page.mouse.move(5, 5)  # keep the cursor badge off the image
    clip = dict(zip(("x", "y", "width", "height"), rect, strict=True))
    shot = cv2.imdecode(np.frombuffer(page.screenshot(clip=clip), np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (shot[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((r > 200) & (g < 60) & (b < 60))
    assert 14 * 14 <= len(xs) <= 18 * 18, len(xs)  # one 16x16 block
    xs, ys = xs + rect[0], ys + rect[1]
    centre = ((xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2)
    page.mouse.click(*centre)
    x, y = lp.state()["points"]["snout"]
    assert abs(x - col) <= 0.05 and abs(y - row) <= 0.05, (x, y)


def test_small_moves_click_larger_moves_pan_and_markers_drag_alone(project, serve, lpage):
    url = serve(project)
    lp = lpage.open(url)
    page = lp.page
    lp.press("m")  # quick mode
    # 3 px between press and release: a click at the press position, no pan
    px, py = lp.to_client(20.0, 15.0)
    page.mouse.move(px, py)
    page.mouse.down()
    page.mouse.move(px + 3, py, steps=3)
    page.mouse.up()
    assert lp.state()["points"]["snout"] == pytest.approx([20.0, 15.0], abs=0.05)
    assert lp.to_client(20.0, 15.0) == pytest.approx((px, py))
    # 6 px on empty space: a pan, nothing placed
    lp.press("2")
    qx, qy = lp.to_client(40.0, 30.0)
    page.mouse.move(qx, qy)
    page.mouse.down()
    page.mouse.move(qx + 6, qy, steps=3)
    page.mouse.up()
    s = lp.state()
    assert s["points"]["leftear"] is None
    assert lp.to_client(40.0, 30.0) == pytest.approx((qx + 6, qy))
    # drag the snout marker: only snout moves, by the pointer's move
    lp.click_image(30.0, 30.0)  # leftear
    zoom = lp.state()["zoom"]
    sx, sy = lp.to_client(20.0, 15.0)
    page.mouse.move(sx + 1, sy)  # grab slightly off-centre: the marker must not jump
    page.mouse.down()
    page.mouse.move(sx + 1 + 5 * zoom, sy + 3 * zoom, steps=5)
    page.mouse.up()
    s = lp.saved()
    assert s["points"]["snout"] == pytest.approx([25.0, 18.0], abs=0.05)
    assert s["points"]["leftear"] == pytest.approx([30.0, 30.0], abs=0.05)
    # modifier + arrows nudge the selected (just dragged) point
    lp.press("Control+ArrowRight", "Control+Shift+ArrowDown")
    s = lp.saved()
    assert s["points"]["snout"] == pytest.approx([26.0, 28.0], abs=0.01)
    h5, csv = _files(project)
    assert _point(read_labels(h5), "img0000.png", "snout") == pytest.approx((26.0, 28.0))
    assert lp.foreign_requests(url) == [] and lp.errors == []


def test_sequential_and_loop_modes(project, serve, lpage):
    lp = lpage.open(serve(project))
    targets = [(10.0, 10.0), (20.0, 12.0), (30.0, 14.0), (40.0, 16.0)]
    for k, (x, y) in enumerate(targets):
        assert lp.state()["active_bodypart"] == BODYPARTS[k]
        lp.click_image(x, y)
    s = lp.state()
    assert [s["points"][bp] for bp in BODYPARTS] == [pytest.approx(list(t)) for t in targets]
    assert s["frame_index"] == 0
    # the active bodypart moves to the next UNLABELED one
    lp.press("Backspace")  # deletes tail (the last active)
    lp.press("2")
    lp.click_image(21.0, 13.0)  # moves leftear; next unlabeled is tail
    assert lp.state()["active_bodypart"] == "tail"
    lp.page.select_option("#mode", "loop")
    lp.press("d")
    lp.painted()  # a click before the frame is painted is ignored
    assert lp.state()["frame_index"] == 1 and lp.state()["active_bodypart"] == "snout"
    for x, y in targets:
        lp.click_image(x, y)
    s = lp.painted()
    assert s["frame_index"] == 2 and s["mode"] == "loop" and s["active_bodypart"] == "snout"
    lp.saved()
    h5, csv = _files(project)
    df = read_labels(h5)
    assert _point(df, "img0001.png", "tail") == pytest.approx((40.0, 16.0))
    assert np.isnan(_point(df, "img0000.png", "tail")).all()


def test_keyboard_navigation(project, serve, lpage):
    lp = lpage.open(serve(project))

    def after(*keys):
        lp.press(*keys)
        return lp.state()

    assert after("d")["frame_index"] == 1
    assert after("ArrowRight")["frame_index"] == 2
    assert after("a")["frame_index"] == 1
    assert after("ArrowLeft", "ArrowLeft")["frame_index"] == 0  # stops at the first frame
    assert after("s")["active_bodypart"] == "leftear"
    assert after("ArrowDown")["active_bodypart"] == "rightear"
    assert after("w")["active_bodypart"] == "leftear"
    assert after("ArrowUp", "ArrowUp")["active_bodypart"] == "tail"  # wraps
    assert after("3")["active_bodypart"] == "rightear"
    lp.page.select_option("#mode", "quick")
    lp.press("d")
    lp.painted()  # a click before the frame is painted is ignored
    for k in range(4):  # complete frame 1
        lp.press(str(k + 1))
        lp.click_image(10.0 + k, 10.0)
    assert after("a")["frame_index"] == 0
    strip = lp.js("[...document.querySelectorAll('#strip .cell')].map(c => c.className)")
    assert strip[:3] == ["cell empty current", "cell complete", "cell empty"]
    assert after("Shift+D")["frame_index"] == 2  # skips the complete frame 1
    lp.press("g")
    lp.page.keyboard.type("5")
    assert after("Enter")["frame_index"] == 4
    lp.press("g")
    lp.page.keyboard.type("img0003")
    s = after("Enter")
    assert s["frame_index"] == 3 and s["frame_name"] == "img0003.png"
    lp.painted()
    # folders: switching needs no save step; counts follow
    lp.page.click("#folders li[data-folder=mouse2]")
    s = lp.wait("s => s.folder === 'mouse2' && s.painted")
    assert s["n_frames"] == 3 and s["frame_index"] == 0
    lp.click_image(5.0, 5.0)
    lp.page.click("#folders li[data-folder=mouse1]")
    lp.wait("s => s.folder === 'mouse1' && s.painted")
    lp.saved()
    counts = lp.js("[...document.querySelectorAll('#folders .count')].map(e => e.textContent)")
    assert counts == ["1/6", "1/3"]
    assert read_labels(_files(project, "mouse2")[0]).notna().sum().sum() == 2
    lp.press("Control+z")  # undo reaches back into the other folder
    s = lp.wait("s => s.folder === 'mouse2' && s.points.snout === null")
    lp.saved()
    assert read_labels(_files(project, "mouse2")[0]).notna().sum().sum() == 0


def test_delete_not_visible_and_copy_previous_persist(project, serve, lpage):
    url = serve(project)
    lp = lpage.open(url)
    lp.click_image(10.0, 10.0)  # snout
    lp.click_image(20.0, 10.0)  # leftear
    lp.press("x")  # rightear not visible -> active moves on to tail
    s = lp.state()
    assert s["not_visible"] == ["rightear"] and s["active_bodypart"] == "tail"
    assert lp.js("document.querySelector('#legend li[data-bodypart=rightear]').className") \
        .split() == ["bp", "notvisible"]
    lp.press("1", "Backspace")
    assert lp.state()["points"]["snout"] is None
    lp.press("d")
    lp.painted()  # a click before the frame is painted is ignored (it raced under load)
    lp.press("4")
    lp.click_image(30.0, 30.0)  # tail on frame 1
    lp.press("c")  # copies leftear from frame 0 (snout was deleted, rightear not visible)
    s = lp.saved()
    assert s["points"] == {"snout": None, "leftear": [20.0, 10.0], "rightear": None,
                           "tail": [30.0, 30.0]}
    h5, csv = _files(project)
    df = read_labels(h5)
    pd.testing.assert_frame_equal(df, read_labels(csv))
    assert np.isnan(_point(df, "img0000.png", "snout")).all()
    assert np.isnan(_point(df, "img0000.png", "rightear")).all()
    side = json.loads((h5.parent / ".poselab-notvisible.json").read_text())
    assert side["frames"] == {"img0000.png": ["rightear"]}
    # the place is written 150 ms after the last step (debounced); a person is slower
    lp.wait("s => location.hash.includes('img0001')")
    lp.page.reload()
    s = lp.wait("s => s.painted")
    assert s["frame_index"] == 1  # the reload keeps the place
    assert s["points"]["leftear"] == [20.0, 10.0]
    lp.press("a")
    s = lp.state()
    assert s["points"]["snout"] is None and s["not_visible"] == ["rightear"]
    assert lp.foreign_requests(url) == [] and lp.errors == []


def test_undo_redo_more_than_200_steps_across_frames(project, serve, lpage):
    lp = lpage.open(serve(project))
    lp.page.select_option("#mode", "quick")
    rng = np.random.default_rng(1)
    n_edits = 0
    for i in range(215):
        if i % 30 == 29:
            lp.press("d")
            lp.painted()
        elif i % 5 == 0:
            lp.click_image(*rng.uniform([2, 2], [60, 44]))
            n_edits += 1
        else:
            lp.press(str(rng.integers(1, 5)), "x")  # toggles not visible: always an edit
            n_edits += 1
    assert n_edits >= 200
    s = lp.saved(10)
    assert s["undo_depth"] == n_edits
    h5, csv = _files(project)
    side = h5.parent / ".poselab-notvisible.json"
    final = read_labels(h5), side.read_text()
    for _ in range(n_edits):
        lp.press("Control+z")
    s = lp.saved(10)
    assert s["frame_index"] == 0 and s["points"] == dict.fromkeys(BODYPARTS)
    assert read_labels(h5).isna().all().all()
    assert json.loads(side.read_text())["frames"] == {}
    for _ in range(n_edits):
        lp.press("Control+Shift+z")
    lp.saved(10)
    pd.testing.assert_frame_equal(read_labels(h5), final[0])
    pd.testing.assert_frame_equal(read_labels(csv), final[0])
    assert side.read_text() == final[1]


def test_autosave_reaches_csv_and_h5_within_a_second(project, serve, lpage):
    lp = lpage.open(serve(project))
    h5, csv = _files(project)
    latencies = []
    for k, (x, y) in enumerate([(11.0, 12.0), (21.5, 13.25), (31.0, 14.0), (41.0, 15.0)]):
        t0 = time.monotonic()
        lp.click_image(x, y)
        while True:
            try:
                a, b = read_labels(h5), read_labels(csv)
                if _point(a, "img0000.png", BODYPARTS[k]) == pytest.approx((x, y)) and \
                        _point(b, "img0000.png", BODYPARTS[k]) == pytest.approx((x, y)):
                    break
            except Exception:  # noqa: BLE001 - not written yet
                pass
            assert time.monotonic() - t0 < 1.0, "edit not on disk within 1 s"
            time.sleep(0.005)
        latencies.append(time.monotonic() - t0)
        pd.testing.assert_frame_equal(a, b)
    lp.saved()
    assert lp.js("document.getElementById('save-state').className") == "saved"
    assert max(latencies) < 1.0


def test_openfield_round_trip_without_edits_is_exact(openfield_copy, serve, lpage):
    folder = openfield_copy.parent / "labeled-data" / "m4s1"
    original = read_labels(folder / "CollectedData_Pranav.h5")
    h5, csv = folder / "CollectedData_Pranav.h5", folder / "CollectedData_Pranav.csv"
    url = serve(openfield_copy)
    lp = lpage.open(url)
    s = lp.state()
    assert s["points"]["snout"] == pytest.approx([21.521, 265.428])
    stamp = h5.stat().st_mtime_ns
    lp.press("Control+s")  # "save" without edits
    deadline = time.monotonic() + 5
    while h5.stat().st_mtime_ns == stamp:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    lp.saved()
    for path in (h5, csv):
        pd.testing.assert_frame_equal(read_labels(path), original, check_exact=True)
    # an edit and its undo give the original table back too (frame 0 is complete: a click
    # moves a point only once the bodypart is picked)
    lp.press("1")
    lp.click_image(300.0, 200.0)
    lp.saved()
    assert not read_labels(h5).equals(original)
    lp.press("Control+z")
    lp.saved()
    time.sleep(0.05)
    for path in (h5, csv):
        pd.testing.assert_frame_equal(read_labels(path), original, check_exact=True)
    assert pd.read_hdf(h5, "df_with_missing").shape == (116, 8)
    assert lp.foreign_requests(url) == [] and lp.errors == []


def test_outside_change_warns_and_is_not_overwritten(project, serve, lpage):
    lp = lpage.open(serve(project))
    lp.click_image(10.0, 10.0)
    lp.saved()
    h5, csv = _files(project)
    df = read_labels(h5)
    df.iloc[3, 6:8] = [33.0, 44.0]  # another tool labels tail on img0003
    write_labels(df, h5)
    lp.wait("s => true")
    deadline = time.monotonic() + 4
    while lp.js("document.getElementById('banner').hidden"):
        assert time.monotonic() < deadline, "no warning about the outside change"
        time.sleep(0.05)
    assert "changed on disk" in lp.js("document.getElementById('banner').textContent")
    lp.click_image(12.0, 12.0)  # leftear: must not overwrite the outside change
    s = lp.wait("s => s.conflict && !s.saved")
    assert _point(read_labels(h5), "img0003.png", "tail") == (33.0, 44.0)
    assert np.isnan(_point(read_labels(h5), "img0000.png", "leftear")).all()
    lp.page.click("#banner button >> nth=0")  # reload and re-apply my edit
    s = lp.saved()
    assert not s["conflict"] and s["points"]["leftear"] == [12.0, 12.0]
    df = read_labels(h5)
    assert _point(df, "img0003.png", "tail") == (33.0, 44.0)
    assert _point(df, "img0000.png", "leftear") == (12.0, 12.0)
    pd.testing.assert_frame_equal(df, read_labels(csv))


def test_token_url_works_in_the_page(project, serve, lpage):
    url = serve(project, token="tok-123")
    assert url.endswith("?token=tok-123")
    lp = lpage.open(url)
    lp.click_image(8.0, 9.0)
    lp.saved()
    assert _point(read_labels(_files(project)[0]), "img0000.png", "snout") == (8.0, 9.0)
    assert lp.foreign_requests(url) == [] and lp.errors == []


def test_predictions_render_as_hollow_markers_without_touching_the_file(project, serve, lpage):
    from poselab.io.predictions import predictions_frame

    folder = project.parent / "labeled-data" / "mouse1"
    xy = np.tile(np.array([[10.0, 10.0], [20.0, 10.0], [30.0, 10.0], [40.0, 10.0]]), (6, 1, 1))
    lik = np.tile(np.array([0.95, 0.3, 0.8, 0.7]), (6, 1))
    df = predictions_frame(xy, lik, BODYPARTS, "DLC_x")
    df.index = [f"labeled-data/mouse1/img{i:04d}.png" for i in range(6)]
    path = folder / "machinelabels-iter0.h5"
    df.to_hdf(path, key="df_with_missing")
    data = path.read_bytes()
    lp = lpage.open(serve(project))
    assert "machinelabels-iter0.h5" in lp.js("document.getElementById('notices').textContent")
    lp.click_image(12.0, 30.0)
    lp.saved()
    assert path.read_bytes() == data


def test_randomized_200_steps_legend_badge_and_stored_point_agree(tmp_path, serve, lpage):
    config = make_project(tmp_path / "rand", {"m": 8}, size=(80, 60),
                          bodyparts=["a", "b", "c", "d", "e"], skeleton=[["a", "b"]])
    lp = lpage.open(serve(config))
    page = lp.page
    rng = np.random.default_rng(7)
    keys = ["w", "s", "ArrowUp", "ArrowDown", "1", "2", "3", "4", "5", "d", "a", "x",
            "Backspace", "c", "Control+z", "Shift+D"]
    for step in range(200):
        before = lp.state()
        r = rng.random()
        if r < 0.45:
            target = rng.uniform([0, 0], [79, 59])
            complete = all(v is not None or bp in before["not_visible"]
                           for bp, v in before["points"].items())
            page.mouse.click(*lp.to_client(*target))
            after = lp.state()
            assert after["frame_name"] == before["frame_name"]
            if complete and not before["chosen"]:  # a stray click on a complete frame
                assert after["points"] == before["points"], step
                continue
            stored = after["points"][before["active_bodypart"]]
            assert stored is not None and np.abs(np.array(stored) - target).max() <= 0.05, step
        elif r < 0.5:
            page.select_option("#mode", ["sequential", "quick"][int(rng.integers(2))])
        else:
            lp.press(keys[int(rng.integers(len(keys)))])
            if rng.random() < 0.5:
                page.mouse.move(*rng.uniform([300, 150], [600, 500]))
        s = lp.state()
        assert s["active_bodypart"] == lp.legend_active() == lp.badge(), (step, s)
    lp.saved(10)
    df = read_labels(_files(config, "m")[0])
    assert df.shape == (8, 10)
