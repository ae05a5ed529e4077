"""Beyond the peers: labeling straight from a video, the suggestions panel, trails, and moving
a whole animal. API checks through TestClient, the rest in real Chromium."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from poselab.io.frames import extract_frames, write_frame
from poselab.io.labels import read_labels
from poselab.io.predictions import predictions_frame, write_predictions
from poselab.io.suggestions import write_suggestions
from poselab.io.video import VideoReader
from poselab.labeler import create_app
from tests.conftest import write_video

from .labeler_support import BODYPARTS, make_project, seed_labels

CROP = (8, 56, 4, 44)  # x1, x2, y1, y2 of the 64x48 video: frames are 48x40


def _video_project(root: Path, crop: tuple[int, int, int, int] | None = CROP,
                   track: bool = False) -> tuple[Path, Path]:
    """(config, video): folders other/ (2 frames); videos/clip.avi (40 frames) in
    video_sets, not yet extracted; with `track`, an analysis file clipDLC_x.h5 beside it."""
    config = make_project(root, {"other": 2})
    (root / "videos").mkdir()
    video = write_video(root / "videos" / "clip.avi", n_frames=40)
    crop_text = ", ".join(map(str, crop or (0, 64, 0, 48)))
    config.write_text(config.read_text().replace(
        "video_sets: {}", f"video_sets:\n  {video}:\n    crop: {crop_text}"))
    if track:
        t = np.arange(40, dtype=float)[:, None]
        xy = np.stack([20 + t + np.arange(4) * 3, 24 + 0 * t + np.arange(4)], axis=-1)
        write_predictions(predictions_frame(xy, np.full((40, 4), 0.9), BODYPARTS, "DLC_x"),
                          video.parent / "clipDLC_x.h5")
    return config, video


def _frame(video: Path, i: int, crop=CROP) -> np.ndarray:
    with VideoReader(video, crop) as r:
        return r.read(i)


# ----------------------------------------------------------------------------- API
def test_video_api_frames_add_and_track(tmp_path: Path):
    config, video = _video_project(tmp_path / "p", track=True)
    c = TestClient(create_app(config), base_url="http://127.0.0.1")
    assert [v["name"] for v in c.get("/api/project").json()["videos"]] == ["clip.avi"]
    info = c.get("/api/videos/0").json()
    assert (info["n_frames"], info["width"], info["height"]) == (40, 48, 40)
    assert info["extracted"] == {} and info["track"] == "clipDLC_x.h5"
    r = c.get("/api/videos/0/frames/7")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    shown = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(shown.astype(int) - _frame(video, 7)).mean() < 3  # JPEG of that frame
    for path, status in (("/api/videos/0/frames/40", 400), ("/api/videos/0/frames/-1", 400),
                         ("/api/videos/0/frames/x", 400), ("/api/videos/1", 404),
                         ("/api/videos/..%2f", 404)):
        assert c.get(path).status_code == status, path
    r = c.post("/api/videos/0/frames/7/add", json={})
    assert r.json() == {"folder": "clip", "image": "img07.png", "created": True}
    png = tmp_path / "p" / "labeled-data" / "clip" / "img07.png"
    assert np.array_equal(cv2.imread(str(png)), _frame(video, 7))  # exact: the same decode
    assert c.post("/api/videos/0/frames/7/add", json={}).json()["created"] is False
    assert c.get("/api/videos/0").json()["extracted"] == {"7": "img07.png"}
    assert "clip" in [f["name"] for f in c.get("/api/project").json()["folders"]]
    # byte for byte what extract-frames writes for that index
    twin = tmp_path / "twin"
    shutil.copytree(tmp_path / "p", twin)
    twin_config = twin / "config.yaml"
    shutil.rmtree(twin / "labeled-data" / "clip")
    extract_frames(twin_config, ["clip.avi"], n=40, method="uniform", progress=False)
    assert (twin / "labeled-data" / "clip" / "img07.png").read_bytes() == png.read_bytes()
    track = c.get("/api/videos/0/track?start=2&stop=4").json()
    assert track["file"] == "clipDLC_x.h5" and track["start"] == 2 and len(track["points"]) == 2
    # full-frame predictions shifted into the cropped frame's pixels
    assert track["points"][0][1] == [20 + 2 + 3 - CROP[0], 24 + 1 - CROP[2], 0.9]


def test_an_added_frame_keeps_the_folders_zero_padding(tmp_path: Path):
    config, video = _video_project(tmp_path / "p", crop=None)
    folder = tmp_path / "p" / "labeled-data" / "clip"
    folder.mkdir()
    write_frame(folder, 3, _frame(video, 3, None), 4)  # an earlier extraction used 4 digits
    c = TestClient(create_app(config), base_url="http://127.0.0.1")
    assert c.post("/api/videos/0/frames/9/add", json={}).json()["image"] == "img0009.png"


# ----------------------------------------------------------------------------- browser
@pytest.mark.browser
def test_step_through_a_video_add_the_frame_and_label_it(tmp_path, serve, lpage):
    config, video = _video_project(tmp_path / "p")
    lp = lpage.open(serve(config))
    page = lp.page
    page.click("#videos li[data-video='0']")
    s = lp.wait("s => s.video && s.painted", 10)
    assert s["video"] == {"id": 0, "index": 0, "n_frames": 40, "extracted": None}
    assert lp.js("!document.getElementById('scrub-bar').hidden && "
                 "getComputedStyle(document.getElementById('scrub-bar')).display") == "flex"

    def index_after(*keys):
        lp.press(*keys)
        return lp.painted()["video"]["index"]

    assert index_after("d", "d", "ArrowRight") == 3
    assert index_after("Shift+D") == 13
    assert index_after("a") == 12
    page.fill("#scrubber", "30")
    assert lp.painted()["video"]["index"] == 30
    lp.press("g")
    page.keyboard.type("7")
    assert index_after("Enter") == 7
    lp.click_image(10.0, 10.0)  # the video itself is not labeled
    assert "press E" in lp.toast()
    page.mouse.move(3, 3)
    page.screenshot(path=str(tmp_path / "video.png"))
    lp.press("e")
    s = lp.wait("s => !s.video && s.painted && s.frame_name === 'img07.png'", 10)
    assert s["folder"] == "clip" and "img07.png" in lp.toast()
    png = tmp_path / "p" / "labeled-data" / "clip" / "img07.png"
    assert np.array_equal(cv2.imread(str(png)), _frame(video, 7))
    lp.click_image(20.0, 15.0)  # label it right away
    lp.saved()
    df = read_labels(png.parent / "CollectedData_tester.h5")
    assert tuple(df.loc[("labeled-data", "clip", "img07.png")].iloc[:2]) == (20.0, 15.0)
    page.click("#videos li[data-video='0']")  # back in the video: the frame is known
    s = lp.wait("s => s.video && s.painted", 10)
    assert s["video"]["index"] == 7 and s["video"]["extracted"] == "img07.png"
    lp.press("Escape")
    s = lp.wait("s => !s.video && s.painted")
    assert s["folder"] == "clip" and s["frame_name"] == "img07.png"
    assert lp.errors == []


@pytest.mark.browser
def test_trails_from_the_analysis_file_in_the_video_and_when_correcting(tmp_path, serve,
                                                                         lpage):
    config, video = _video_project(tmp_path / "p", track=True)
    folder = tmp_path / "p" / "labeled-data" / "clip"
    folder.mkdir()
    write_frame(folder, 20, _frame(video, 20), 2)
    preds = predictions_frame(np.array([[[12.0, 20.0], [15.0, 21.0], [18.0, 22.0],
                                         [21.0, 23.0]]]), np.full((1, 4), 0.9), BODYPARTS, "m")
    preds.index = pd.MultiIndex.from_tuples([("labeled-data", "clip", "img20.png")])
    preds.to_hdf(folder / "machinelabels-iter0.h5", key="df_with_missing")
    lp = lpage.open(serve(config, folder="clip"))
    s = lp.wait("s => s.trail_points > 0", 10)  # correcting predictions: frames 10..20
    assert s["trail_points"] == 11 * 4 and s["show_trails"]
    lp.press("t")
    assert lp.state()["trail_points"] == 0 and not lp.state()["show_trails"]
    lp.press("t")
    lp.page.click("#videos li[data-video='0']")
    lp.wait("s => s.video && s.painted", 10)
    lp.page.fill("#scrubber", "3")
    s = lp.wait("s => s.video.index === 3 && s.trail_points > 0", 5)
    assert s["trail_points"] == 4 * 4  # frames 0..3
    assert s["predictions"]["snout"] == [20 + 3 - CROP[0], 24 - CROP[2], 0.9]
    lp.page.mouse.move(3, 3)
    lp.page.screenshot(path=str(tmp_path / "trails.png"))
    lp.painted()
    lp.page.wait_for_timeout(300)  # the place is written a moment after the last change
    lp.page.reload()  # the place in the video is kept too
    s = lp.wait("s => s.video && s.painted", 10)
    assert s["video"]["index"] == 3 and s["folder"] == "clip"
    assert lp.errors == []


def test_a_project_with_videos_but_no_labeled_data_yet_opens(tmp_path: Path):
    config, _ = _video_project(tmp_path / "p")
    shutil.rmtree(tmp_path / "p" / "labeled-data")
    c = TestClient(create_app(config), base_url="http://127.0.0.1")
    info = c.get("/api/project").json()
    assert info["folders"] == [] and info["initial_folder"] is None
    assert [v["name"] for v in info["videos"]] == ["clip.avi"]
    assert c.post("/api/videos/0/frames/5/add", json={}).json()["folder"] == "clip"
    assert c.get("/api/folders/clip").json()["images"] == ["img05.png"]


@pytest.mark.browser
def test_suggestions_panel_and_the_next_suggestion_key(project, serve, lpage):
    folder = project.parent / "labeled-data"
    write_suggestions(folder / "mouse1", [
        {"image": "img0004.png", "score": 0.9, "reason": "jump 40 px (snout)"},
        {"image": "img0001.png", "score": 0.5, "reason": "likelihood 0.10 (tail)"},
        {"image": "gone.png", "score": 0.1, "reason": "deleted since"}], "outliers")
    seed_labels(project, "mouse1", {"img0004.png": {bp: (5.0, 5.0) for bp in BODYPARTS}})
    # mouse2 has no sidecar: the frames of its machinelabels file are its suggestions
    preds = predictions_frame(np.full((1, 4, 2), 9.0), np.full((1, 4), 0.9), BODYPARTS, "m")
    preds.index = pd.MultiIndex.from_tuples([("labeled-data", "mouse2", "img0002.png")])
    preds.to_hdf(folder / "mouse2" / "machinelabels-iter0.h5", key="df_with_missing")
    lp = lpage.open(serve(project))
    s = lp.state()
    assert s["suggestions"] == ["img0004.png", "img0001.png"]  # existing frames, in order
    items = lp.js("[...document.querySelectorAll('#suggestions li')].map(e => "
                  "[e.dataset.image, e.className, e.textContent])")
    assert [i[0] for i in items] == ["img0004.png", "img0001.png"]
    assert "complete" in items[0][1] and "0.90" in items[0][2] and "jump 40 px" in items[0][2]
    lp.press("n")  # img0004 is done: the next one to label
    assert lp.painted()["frame_name"] == "img0001.png"
    assert "current" in lp.js("document.querySelector('#suggestions li.current')"
                              ".dataset.image + ' current'")
    lp.press("n")  # none left here: the next folder with suggestions
    s = lp.wait("s => s.folder === 'mouse2' && s.painted && s.frame_name === 'img0002.png'")
    assert s["suggestions"] == ["img0002.png"]
    lp.page.click("#folders li[data-folder=mouse1]")
    lp.wait("s => s.folder === 'mouse1' && s.painted")
    lp.page.click("#suggestions li[data-image='img0004.png']")
    assert lp.painted()["frame_name"] == "img0004.png"
    assert lp.errors == []


@pytest.mark.browser
def test_move_and_rotate_a_whole_animal_as_one_undo_step(project, serve, lpage):
    pose = {"snout": (26.0, 24.0), "leftear": (30.0, 20.0), "rightear": (30.0, 28.0),
            "tail": (40.0, 24.0)}
    h5 = seed_labels(project, "mouse1", {"img0000.png": pose})
    lp = lpage.open(serve(project))
    page = lp.page
    lp.press("Control+a")
    s = lp.state()
    assert s["group"] is True
    page.mouse.move(3, 3)
    page.screenshot(path=str(project.parent / "group.png"))
    start = lp.to_client(*pose["leftear"])
    end = lp.to_client(pose["leftear"][0] + 5, pose["leftear"][1] + 3)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()
    s = lp.saved()
    moved = {bp: (x + 5, y + 3) for bp, (x, y) in pose.items()}
    for bp in BODYPARTS:
        assert s["points"][bp] == pytest.approx(list(moved[bp]), abs=0.05)
    assert s["undo_depth"] == 1
    # Shift+drag rotates about the centre of the box around the points: a quarter turn
    cx, cy = 33.0 + 5, 24.0 + 3
    sx, sy = moved["snout"]
    page.keyboard.down("Shift")
    page.mouse.move(*lp.to_client(sx, sy))
    page.mouse.down()
    target = (cx + (cy - sy) * 0 - 0, cy - (cx - sx))  # (-7, 0) from the centre -> (0, -7)
    page.mouse.move(*lp.to_client(*target), steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    s = lp.saved()
    assert s["points"]["snout"] == pytest.approx([cx, cy - 7], abs=0.1)
    assert s["points"]["tail"] == pytest.approx([cx, cy + 7], abs=0.1)
    d = [math.dist(s["points"]["leftear"], s["points"]["rightear"]),
         math.dist(moved["leftear"], moved["rightear"])]
    assert d[0] == pytest.approx(d[1], abs=0.1)  # a rigid turn
    assert s["undo_depth"] == 2
    lp.press("Control+ArrowRight")  # nudges them all
    s = lp.saved()
    assert s["points"]["snout"] == pytest.approx([cx + 1, cy - 7], abs=0.1)
    lp.press("Control+z", "Control+z")
    s = lp.saved()
    for bp in BODYPARTS:
        assert s["points"][bp] == pytest.approx(list(moved[bp]), abs=0.05)
    lp.press("Escape")
    assert lp.state()["group"] is False
    lp.press("Control+a")
    lp.click_image(5.0, 40.0)  # a click beside the selection ends it and places nothing
    s = lp.state()
    assert s["group"] is False and s["points"]["snout"] == pytest.approx(list(moved["snout"]),
                                                                        abs=0.05)
    df = read_labels(h5)
    row = df.loc[("labeled-data", "mouse1", "img0000.png")]
    assert (row[("tester", "tail", "x")], row[("tester", "tail", "y")]) == pytest.approx(
        moved["tail"], abs=0.05)
    assert lp.errors == []
