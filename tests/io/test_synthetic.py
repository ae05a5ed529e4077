"""Tests for poselab.io.synthetic: layout, determinism, motion, decoding, drawn features."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from poselab.errors import PoselabError
from poselab.io import synthetic
from poselab.io.synthetic import (
    SYNTHETIC_BODYPARTS,
    make_scene,
    make_synthetic_video,
    render_frame,
    synthetic_keypoints,
)

SIZE = (160, 120)  # (width, height)
N = 40


def _decode(path) -> np.ndarray:
    """All frames of a video, uint8 (N, H, W, 3)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


def _pink_centroid(img: np.ndarray, xy: np.ndarray, radius: int) -> np.ndarray:
    """Centroid (x, y) of pink pixels (red well above green) in a square patch around xy."""
    x0, y0 = (np.round(xy) - radius).astype(int)
    patch = img[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].astype(np.float64)
    weight = np.clip(patch[..., 2] - patch[..., 1] - 40.0, 0.0, None)
    yy, xx = np.mgrid[0 : 2 * radius + 1, 0 : 2 * radius + 1]
    assert weight.sum() > 0, "no pink feature near the keypoint"
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum() + [x0, y0]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "mouse.mp4"
    return path, make_synthetic_video(path, n_frames=N, size=SIZE, seed=3)


def test_layout(video):
    _, df = video
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert df.columns.get_level_values("scorer").unique().tolist() == ["synthetic"]
    assert df.columns.get_level_values("bodyparts").unique().tolist() == SYNTHETIC_BODYPARTS
    assert SYNTHETIC_BODYPARTS[:4] == ["snout", "leftear", "rightear", "tailbase"]
    assert df.columns.get_level_values("coords").unique().tolist() == ["x", "y", "likelihood"]
    assert df.shape == (N, 3 * len(SYNTHETIC_BODYPARTS))
    assert (df.dtypes == np.float64).all()
    assert df.index.tolist() == list(range(N)) and df.index.dtype.kind == "i"
    assert (df.xs("likelihood", axis=1, level="coords").to_numpy() == 1.0).all()
    kp = synthetic_keypoints(N, SIZE, seed=3)  # (N, K, 2)
    np.testing.assert_array_equal(df.xs("x", axis=1, level="coords").to_numpy(), kp[..., 0])
    np.testing.assert_array_equal(df.xs("y", axis=1, level="coords").to_numpy(), kp[..., 1])


def test_determinism_and_seed_dependence():
    a = synthetic_keypoints(200, (320, 240), seed=7)
    assert a.shape == (200, len(SYNTHETIC_BODYPARTS), 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, synthetic_keypoints(200, (320, 240), seed=7))
    np.testing.assert_array_equal(a[:50], synthetic_keypoints(50, (320, 240), seed=7))
    assert np.abs(a - synthetic_keypoints(200, (320, 240), seed=8)).max() > 20.0
    scene_a, scene_b = make_scene(5, SIZE, seed=7), make_scene(5, SIZE, seed=7)
    np.testing.assert_array_equal(render_frame(scene_a, 4), render_frame(scene_b, 4))
    assert not np.array_equal(scene_a.background, make_scene(5, SIZE, seed=8).background)


@pytest.mark.parametrize("size", [(320, 240), (64, 64), (100, 300)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keypoints_inside_smooth_and_turning(size, seed):
    kp = synthetic_keypoints(300, size, seed)  # (N, K, 2)
    w, h = size
    assert kp[..., 0].min() >= 0 and kp[..., 0].max() <= w - 1
    assert kp[..., 1].min() >= 0 and kp[..., 1].max() <= h - 1
    steps = np.linalg.norm(np.diff(kp, axis=0), axis=-1)  # (N - 1, K)
    assert steps.max() < 0.04 * min(size)
    axis = kp[:, 0] - kp[:, 3]  # tailbase -> snout, (N, 2)
    heading = np.unwrap(np.arctan2(axis[:, 1], axis[:, 0]))
    assert np.abs(np.diff(heading)).max() < 0.2  # radians per frame: smooth
    assert np.ptp(heading) > np.pi / 2  # turns over the video
    assert np.linalg.norm(kp[-1, 3] - kp[0, 3]) > 0 and steps.mean() > 0.005 * min(size)


def test_left_and_right_are_from_the_animals_point_of_view():
    kp = synthetic_keypoints(300, (320, 240), seed=0)  # (N, K, 2)
    mid = (kp[:, 1] + kp[:, 2]) / 2
    fwd, left = kp[:, 0] - mid, kp[:, 1] - mid
    # Image y points down, so the animal's left is a negative cross product (fwd x left).
    assert (fwd[:, 0] * left[:, 1] - fwd[:, 1] * left[:, 0] < 0).all()


def test_rendered_features_sit_on_the_keypoints():
    scene = make_scene(120, (320, 240), seed=5)
    kp = scene.keypoints  # (N, K, 2)
    for i in range(0, 120, 10):
        img = render_frame(scene, i)
        for k in range(3):  # pink nose and inner ears are discs centred on the keypoints
            err = np.linalg.norm(_pink_centroid(img, kp[i, k], 5) - kp[i, k])
            assert err < 0.35, (i, SYNTHETIC_BODYPARTS[k], err)
        x, y = np.round(kp[i, 3]).astype(int)  # tail base: animal (dark fur/tail), not floor
        assert np.abs(img[y, x].astype(int) - scene.background[y, x]).sum() > 60


def test_video_decodes_to_the_frames_and_keypoints(video, tmp_path):
    path, df = video
    frames = _decode(path)
    assert frames.shape == (N, SIZE[1], SIZE[0], 3)
    assert sorted(p.name for p in path.parent.iterdir()) == ["mouse.mp4"]  # no temp left
    scene = make_scene(N, SIZE, seed=3)
    kp = scene.keypoints  # (N, K, 2)
    for i in (0, N // 2, N - 1):
        img = frames[i].astype(np.int16)
        assert np.abs(img - render_frame(scene, i)).mean() < 4.0  # the file holds the render
        for x, y in np.round(kp[i, :3]).astype(int):  # pink nose / inner ears survive coding
            bg = scene.background[y, x].astype(np.int16)
            assert (img[y, x, 2] - img[y, x, 1]) - (bg[2] - bg[1]) > 25
    avi = tmp_path / "mouse.avi"
    make_synthetic_video(avi, n_frames=5, size=SIZE, seed=3)
    assert _decode(avi).shape == (5, SIZE[1], SIZE[0], 3)


def test_same_seed_gives_identical_decoded_frames(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    make_synthetic_video(a, n_frames=8, size=(64, 64), seed=1)
    make_synthetic_video(b, n_frames=8, size=(64, 64), seed=1)
    np.testing.assert_array_equal(_decode(a), _decode(b))


@pytest.mark.parametrize("name", ["mouse.mkv", "mouse", "mouse.png"])
def test_unsupported_extension_raises(tmp_path, name):
    with pytest.raises(PoselabError, match="unsupported video extension"):
        make_synthetic_video(tmp_path / name, n_frames=2, size=(64, 64))


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(PoselabError, match="even"):
        make_synthetic_video(tmp_path / "odd.mp4", n_frames=2, size=(65, 64))
    with pytest.raises(PoselabError, match="too small"):
        make_synthetic_video(tmp_path / "tiny.mp4", n_frames=2, size=(16, 16))
    with pytest.raises(PoselabError, match="does not exist"):
        make_synthetic_video(tmp_path / "missing" / "v.mp4", n_frames=2, size=(64, 64))


def test_crash_leaves_no_partial_video(tmp_path, monkeypatch):
    def boom(scene, i):
        if i == 3:
            raise RuntimeError("crash while rendering")
        return render_frame(scene, i)

    monkeypatch.setattr(synthetic, "render_frame", boom)
    with pytest.raises(RuntimeError):
        make_synthetic_video(tmp_path / "v.mp4", n_frames=10, size=(64, 64))
    assert list(tmp_path.iterdir()) == []


def test_disturbances_are_seeded_and_keep_the_track():
    disturb = synthetic.Disturbances(noise=10.0, occluders=2, distractors=3)
    clean, a, b = (make_scene(N, SIZE, seed=4), make_scene(N, SIZE, seed=4, disturb=disturb),
                   make_scene(N, SIZE, seed=4, disturb=disturb))
    np.testing.assert_array_equal(clean.keypoints, a.keypoints)  # same animal, same truth
    np.testing.assert_array_equal(render_frame(a, 7), render_frame(b, 7))
    assert not np.array_equal(render_frame(a, 7), render_frame(clean, 7))
    assert a.clutter.occluders.shape == (N, 2, 2) and a.clutter.distractors.shape == (3, 2)
    # an occluder is drawn over everything, in its own colour (noise aside)
    quiet = make_scene(N, SIZE, seed=4, disturb=synthetic.Disturbances(occluders=1))
    x, y = np.round(quiet.clutter.occluders[5, 0]).astype(int)
    np.testing.assert_allclose(render_frame(quiet, 5)[y, x], (96, 104, 112), atol=2)
