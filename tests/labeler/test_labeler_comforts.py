"""Safe corrections and everyday comforts in the page (issue 17, items 1-8), in real Chromium:
stray clicks, zoom that follows the animal, marker size and names, the place kept across
reloads, edits flushed as the page closes, pcutoff-aware accept, the empty-folder guide,
focus, the drag badge, the banner, and copying from the nearest frame in video time."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from poselab.io.labels import read_labels, write_labels
from poselab.io.predictions import predictions_frame

from .labeler_support import BODYPARTS, make_project, seed_labels

pytestmark = pytest.mark.browser
FULL = {"snout": (10.0, 10.0), "leftear": (20.0, 10.0), "rightear": (30.0, 10.0),
        "tail": (40.0, 10.0)}


def _h5(config: Path, folder: str = "mouse1") -> Path:
    return config.parent / "labeled-data" / folder / "CollectedData_tester.h5"


def _drag(page, start, end, steps: int = 6) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


# ----------------------------------------------------------------------------- item 1
def test_a_stray_click_on_a_complete_frame_moves_nothing(project, serve, lpage):
    h5 = seed_labels(project, "mouse1", {"img0000.png": FULL})
    data = h5.read_bytes()
    lp = lpage.open(serve(project))
    s = lp.state()
    assert s["active_bodypart"] == "snout" and not s["chosen"]
    assert lp.js("document.getElementById('badge-state').textContent").startswith(
        "frame complete")
    lp.click_image(50.0, 40.0)  # the stray click of the report
    s = lp.state()
    assert s["points"]["snout"] == [10.0, 10.0] and s["undo_depth"] == 0
    assert "every bodypart is placed" in lp.toast()
    lp.press("v", "1")  # labels hidden: even a chosen bodypart is not placed by a click
    lp.click_image(50.0, 40.0)
    assert lp.state()["points"]["snout"] == [10.0, 10.0] and "hidden" in lp.toast()
    lp.press("v", "1")  # visible again and snout picked on purpose: the click moves it
    lp.click_image(50.0, 40.0)
    assert lp.state()["points"]["snout"] == [50.0, 40.0]
    lp.press("d")
    lp.painted()
    lp.press("a")
    s = lp.painted()  # back on the complete frame: the choice was for that visit only
    assert not s["chosen"]
    lp.click_image(5.0, 5.0)
    assert lp.state()["points"]["snout"] == [50.0, 40.0]
    _drag(lp.page, lp.to_client(20.0, 10.0), lp.to_client(22.0, 30.0))  # a drag still moves
    s = lp.saved()
    assert s["points"]["leftear"] == pytest.approx([22.0, 30.0], abs=0.05)
    # sequential labeling: the click after the last placement does not move the last point
    lp.press("d")
    lp.painted()
    for x in (11.0, 21.0, 31.0, 41.0, 55.0):
        lp.click_image(x, 20.0)
    s = lp.saved()
    assert [s["points"][bp] for bp in BODYPARTS] == [[11.0, 20.0], [21.0, 20.0], [31.0, 20.0],
                                                     [41.0, 20.0]]
    assert h5.read_bytes() != data
    assert lp.errors == []


# ----------------------------------------------------------------------------- item 2
def test_zoom_is_kept_and_the_view_follows_the_animal(tmp_path, serve, lpage):
    config = make_project(tmp_path / "p", {"m": 3}, size=(200, 150))
    left = {"snout": (20.0, 20.0), "leftear": (24.0, 16.0), "rightear": (16.0, 16.0),
            "tail": (20.0, 40.0)}
    right = {bp: (x + 160.0, y + 90.0) for bp, (x, y) in left.items()}
    seed_labels(config, "m", {"img0000.png": left, "img0001.png": right})
    preds = predictions_frame(np.array([[[100.0, 20.0], [104.0, 16.0], [96.0, 16.0],
                                         [100.0, 40.0]]]), np.ones((1, 4)), BODYPARTS, "DLC_x")
    preds.index = pd.MultiIndex.from_tuples([("labeled-data", "m", "img0002.png")])
    preds.to_hdf(config.parent / "labeled-data/m/machinelabels-iter0.h5", key="df_with_missing")
    lp = lpage.open(serve(config))
    fit = lp.state()["zoom"]
    lp.press("z")  # fit the view to the animal
    zoom = lp.state()["zoom"]
    assert zoom > 3 * fit
    assert all(lp.on_screen(*p) for p in left.values())
    lp.press("d")
    s = lp.painted()
    assert s["zoom"] == zoom  # the zoom level is kept ...
    assert all(lp.on_screen(*p) for p in right.values())  # ... on the animal, which moved
    lp.press("d")
    s = lp.painted()  # a frame with predictions only: they lead the view
    assert s["zoom"] == zoom and lp.on_screen(100.0, 20.0) and lp.on_screen(100.0, 40.0)
    lp.press("f")  # at the whole-image view nothing moves
    origin = lp.to_client(0.0, 0.0)
    lp.press("a")
    s = lp.painted()
    assert s["zoom"] == fit and lp.to_client(0.0, 0.0) == origin
    assert lp.errors == []


# ----------------------------------------------------------------------------- item 3
def test_marker_size_from_dotsize_with_a_control_names_and_a_contrasting_outline(
        tmp_path, serve, lpage):
    config = make_project(tmp_path / "p", {"m": 2}, size=(96, 72))
    config.write_text(config.read_text().replace("dotsize: 6", "dotsize: 10")
                      .replace("colormap: rainbow", "colormap: jet"))
    black = np.zeros((72, 96, 3), np.uint8)  # a black animal, jet's navy first bodypart
    for name in ("img0000.png", "img0001.png"):
        cv2.imwrite(str(config.parent / "labeled-data/m" / name), black)
    seed_labels(config, "m", {"img0000.png": {"snout": (30.0, 30.0), "rightear": (31.0, 31.0),
                                              "tail": (70.0, 50.0)}})
    url = serve(config)
    lp = lpage.open(url)
    page = lp.page
    assert lp.state()["marker_size"] == 10
    page.mouse.move(2, 2)

    def around(x, y, half=22):
        cx, cy = lp.to_client(x, y)
        clip = {"x": cx - half, "y": cy - half, "width": 2 * half, "height": 2 * half}
        return cv2.imdecode(np.frombuffer(page.screenshot(clip=clip), np.uint8),
                            cv2.IMREAD_COLOR).astype(int)

    lp.press("4")  # make tail active: snout is drawn as a plain marker
    shot = around(30.0, 30.0)
    b, g, r = shot[..., 0], shot[..., 1], shot[..., 2]
    navy = (b > 90) & (r < 60) & (g < 60)
    white = (b > 200) & (g > 200) & (r > 200)
    ys, xs = np.nonzero(navy)
    assert 2 * 8 <= xs.max() - xs.min() + 1 <= 2 * 12  # the ring spans the dotsize radius
    assert white.sum() > 20  # a light outline: the navy marker shows on the black animal
    yellow = (r > 200) & (g > 150) & (b < 90)  # rightear, drawn over snout a pixel away
    assert yellow.sum() > 20 and navy.sum() > 20  # overlapping markers both show
    lp.press("]", "]")
    assert lp.state()["marker_size"] == 12
    page.fill("#marker-size", "4")
    assert lp.state()["marker_size"] == 4
    before = around(30.0, 30.0, 60)
    lp.press("l")  # every name, not just the active one
    assert lp.state()["show_names"] is True
    after = around(30.0, 30.0, 60)
    assert np.abs(after - before).sum() > 0  # snout's name is drawn now
    lp.page.reload()
    s = lp.wait("s => s.painted")
    assert s["marker_size"] == 4 and s["show_names"] is True  # remembered
    assert lp.errors == []


# ----------------------------------------------------------------------------- item 4
def test_a_reload_a_shared_url_and_a_server_restart_keep_the_place(project, browser, lpage):
    from poselab.labeler import BackgroundServer

    server = BackgroundServer(project)
    url = server.start()
    try:
        lp = lpage.open(url)
        lp.page.click("#folders li[data-folder=mouse2]")
        lp.wait("s => s.folder === 'mouse2' && s.painted")
        lp.press("d", "d")
        lp.page.select_option("#mode", "quick")
        lp.page.fill("#brightness", "1.5")
        lp.page.fill("#contrast", "0.8")
        lp.painted()
        time.sleep(0.3)  # the place is written a moment after the last change
        shared = lp.js("location.href")  # (page.url misses history.replaceState)
        assert "#" in shared and "folder=mouse2" in shared and "frame=img0002.png" in shared
        want = {"folder": "mouse2", "frame_name": "img0002.png", "mode": "quick",
                "brightness": 1.5, "contrast": 0.8}

        def check(page_state):
            assert {k: page_state[k] for k in want} == want

        lp.page.reload()
        check(lp.wait("s => s.painted"))
        assert lp.js("getComputedStyle(document.getElementById('image-canvas')).filter") == \
            "brightness(1.5) contrast(0.8)"
        lp.page.goto(url)  # the plain URL: local storage has the place
        check(lp.wait("s => s.painted"))
        other = browser.new_context(viewport={"width": 1000, "height": 700})
        try:  # someone else opens the shared URL
            page = other.new_page()
            page.goto(shared)
            deadline = time.monotonic() + 5
            while not page.evaluate("window.poselab && window.poselab.state().painted"):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            check(page.evaluate("window.poselab.state()"))
        finally:
            other.close()
    finally:
        server.stop()
    server = BackgroundServer(project)  # a restart (on another port here)
    url = server.start()
    try:
        lp.page.goto(url + "#" + shared.split("#")[1])
        check(lp.wait("s => s.painted"))
    finally:
        server.stop()


# ----------------------------------------------------------------------------- item 5
def test_edits_made_just_before_closing_are_flushed(project, lpage):
    """The report: an edit ~100 ms before closing is lost once the person confirms the
    leave-page warning. Here the server is held busy so that one edit is in flight and the
    next one still queued in the page when it closes."""
    from poselab.labeler import BackgroundServer

    server = BackgroundServer(project)
    url = server.start()
    dialogs = []
    lp = lpage.open(url)
    lp.page.on("dialog", lambda d: (dialogs.append(d.type), d.accept()))
    lp.click_image(10.0, 10.0)
    lp.saved()
    store = server.app.state.labeler.store("mouse1")
    store.lock.acquire()  # the next save waits: it stays in flight, later edits queue
    released = False
    try:
        lp.click_image(20.0, 12.0)  # leftear: in flight
        lp.click_image(30.0, 14.0)  # rightear: queued behind it
        lp.press("x")  # tail: not visible, queued too
        assert not lp.state()["saved"]
        with lp.page.expect_event("close", timeout=5000):
            lp.page.close(run_before_unload=True)  # the warning is confirmed: the page goes
        time.sleep(0.3)  # the flush is on its way to the server
        store.lock.release()
        released = True
        h5 = _h5(project)
        deadline = time.monotonic() + 5
        while True:
            row = read_labels(h5).loc[("labeled-data", "mouse1", "img0000.png")]
            got = [(row[("tester", bp, "x")], row[("tester", bp, "y")]) for bp in BODYPARTS]
            if got[2] == (30.0, 14.0) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got[:3] == [(10.0, 10.0), (20.0, 12.0), (30.0, 14.0)]
        side = (h5.parent / ".poselab-notvisible.json").read_text()
        assert '"tail"' in side
        assert dialogs == ["beforeunload"]
    finally:
        if not released:
            store.lock.release()
        server.stop()


# ----------------------------------------------------------------------------- item 7
def test_an_empty_folder_says_what_to_run_and_offers_it(tmp_path, serve, lpage):
    from tests.conftest import write_video

    root = tmp_path / "new"
    config = make_project(root, {"mouse1": 0}, bodyparts=["bodypart1", "bodypart2",
                                                          "bodypart3", "objectA"])
    video = write_video(root / "mouse1.avi", n_frames=40)
    config.write_text(config.read_text().replace(
        "video_sets: {}", f"video_sets:\n  {video}:\n    crop: 0, 64, 0, 48"))
    lp = lpage.page
    lpage.page.goto(serve(config))
    lpage.wait("s => s.folder === 'mouse1'")
    empty = lp.wait_for_selector("#empty:not([hidden])")
    text = empty.text_content()
    assert "No frames in labeled-data/mouse1 yet" in text
    assert f"poselab extract-frames {config} -v mouse1.avi" in text
    warning = lpage.js("document.getElementById('placeholders').textContent")
    assert "bodypart1, bodypart2, bodypart3, objectA" in warning
    assert lpage.js("!document.getElementById('placeholders').hidden")
    lp.click("#empty button.primary")  # "Extract 20 frames now"
    s = lpage.wait("s => s.n_frames === 20 && s.painted", 20)
    assert s["frame_name"].startswith("img") and lpage.js("document.getElementById('empty')"
                                                           ".hidden")
    pngs = sorted((root / "labeled-data" / "mouse1").glob("img*.png"))
    assert len(pngs) == 20 and all(len(p.stem) == 5 for p in pngs)  # img<2 digits> for 40
    assert lpage.errors == []


# ----------------------------------------------------------------------------- item 8
def test_arrow_keys_after_clicking_a_slider_step_the_frame(project, serve, lpage):
    lp = lpage.open(serve(project))
    lp.page.click("#brightness")
    value = lp.js("document.getElementById('brightness').value")
    lp.press("ArrowRight")
    s = lp.painted()
    assert s["frame_index"] == 1
    assert lp.js("document.getElementById('brightness').value") == value
    lp.page.click("#marker-size")
    size = lp.state()["marker_size"]
    lp.press("ArrowLeft", "ArrowDown")
    s = lp.state()
    assert s["frame_index"] == 0 and s["active_bodypart"] == "leftear"
    assert s["marker_size"] == size


def test_the_badge_names_the_dragged_bodypart(project, serve, lpage):
    seed_labels(project, "mouse1", {"img0000.png": {"leftear": (30.0, 20.0)}})
    lp = lpage.open(serve(project))
    page = lp.page
    assert lp.state()["active_bodypart"] == "snout"
    x, y = lp.to_client(30.0, 20.0)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y + 20, steps=5)
    assert lp.badge() == "leftear"  # while dragging: what moves
    assert "leftear" in lp.js("document.getElementById('badge-name').textContent")
    page.mouse.up()
    assert lp.badge() == lp.legend_active() == "snout"


def test_the_conflict_banner_does_not_cover_the_image(project, serve, lpage):
    lp = lpage.open(serve(project))
    lp.click_image(10.0, 10.0)
    lp.saved()
    h5 = _h5(project)
    df = read_labels(h5)
    df.iloc[2, 0:2] = [5.0, 5.0]  # another program writes the file
    write_labels(df, h5)
    lp.page.wait_for_selector("#banner:not([hidden])", timeout=5000)
    banner, canvas = lp.rect("#banner"), lp.rect("#overlay-canvas")
    assert banner["height"] > 10 and banner["bottom"] <= canvas["top"] + 0.5
    assert lp.to_client(0.0, 0.0)[1] > banner["bottom"]  # the image's top row is visible


def test_c_copies_from_the_nearest_frame_in_video_time(tmp_path, serve, lpage):
    config = make_project(tmp_path / "p", {"m": 3})
    folder = config.parent / "labeled-data" / "m"
    for old, new in (("img0000", "img0100"), ("img0001", "img0200"), ("img0002", "img0210")):
        (folder / f"{old}.png").rename(folder / f"{new}.png")
    # file order: img0100, img0200, img0210; in video time img0210 is 10 frames from img0200
    seed_labels(config, "m", {"img0100.png": {"snout": (5.0, 5.0), "tail": (6.0, 6.0)},
                              "img0210.png": {"snout": (40.0, 30.0)}})
    lp = lpage.open(serve(config))
    lp.press("d")
    s = lp.painted()
    assert s["frame_name"] == "img0200.png"
    lp.press("c")
    s = lp.saved()
    assert s["points"]["snout"] == [40.0, 30.0] and "img0210.png" in lp.toast()
    assert s["points"]["tail"] is None  # only what the nearest frame has
    lp.press("c")  # tail: only img0100 has it
    assert lp.state()["points"]["tail"] == [6.0, 6.0]
