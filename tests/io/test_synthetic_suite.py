"""Tests for poselab.io.synthetic_suite: the robustness suite's seeded labeled projects."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from poselab.errors import PoselabError
from poselab.io.labels import load_labeled_frames, read_labels
from poselab.io.project import open_project
from poselab.io.synthetic_suite import (
    SUITE_VARIANTS,
    VARIANTS,
    SuiteDataset,
    load_ground_truth,
    make_suite_project,
    preview_frame,
)

N = 3  # frames per project in the fast tests


def _component_centroid(weight: np.ndarray, xy: np.ndarray, radius: int) -> np.ndarray:
    """Weighted centroid (x, y) of the connected blob of weight > 0 under xy, in a patch."""
    x0, y0 = (np.round(xy) - radius).astype(int)
    patch = weight[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    _, comp = cv2.connectedComponents((patch > 0).astype(np.uint8), connectivity=4)
    label = comp[radius, radius]
    assert label > 0, "no feature under the keypoint"
    w = np.where(comp == label, patch, 0.0)
    yy, xx = np.mgrid[0 : 2 * radius + 1, 0 : 2 * radius + 1]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum() + [x0, y0]


def _pinkness(img: np.ndarray) -> np.ndarray:
    """Red well above green: nose, inner ears and paws, not fur, tail or floor."""
    img = img.astype(np.float64)
    return np.clip(img[..., 2] - img[..., 1] - 55.0, 0.0, None)


def _darkness(img: np.ndarray, level: float) -> np.ndarray:
    return np.clip(level - img.astype(np.float64).mean(axis=2), 0.0, None)


def _differs(img: np.ndarray, background: np.ndarray, p: np.ndarray) -> float:
    """Summed absolute BGR difference between the frame and the bare floor at pixel p."""
    x, y = np.round(p).astype(int)
    return float(np.abs(img[y, x].astype(int) - background[y, x].astype(int)).sum())


def _floor_as_exposed(img: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The bare floor with the frame's exposure and tint (median ratio per channel), uint8."""
    gain = np.median(img.reshape(-1, 3) / np.maximum(background.reshape(-1, 3), 1.0), axis=0)
    return np.clip(np.round(background * gain), 0, 255).astype(np.uint8)


def _extent(img, background, p, direction, limit) -> float:
    """How far from p along direction the frame still differs from the floor (pixels)."""
    for step in np.arange(0.0, limit, 0.25):
        if _differs(img, background, p + step * direction) < 40:
            return step
    return limit


def test_the_table_lists_every_variant_with_its_shape():
    assert list(SUITE_VARIANTS) == ["many_keypoints", "two_views", "small_in_large",
                                    "few_labels", "missing_labels", "low_contrast",
                                    "light_on_dark", "motion_blur"]
    for name, text in SUITE_VARIANTS.items():
        assert text and "\n" not in text, name
        spec = VARIANTS[name]
        assert spec.size != (640, 480)
        assert (30 <= spec.frames <= 50) if name == "few_labels" else (60 <= spec.frames <= 120)
    assert 15 <= len(VARIANTS["many_keypoints"].parts) <= 20
    assert len(VARIANTS["two_views"].parts) == 17 and VARIANTS["two_views"].size == (396, 406)
    assert VARIANTS["small_in_large"].size == (1280, 1024)
    assert VARIANTS["missing_labels"].hidden == pytest.approx(0.1)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_is_a_project_that_opens_and_loads(tmp_path, variant):
    config = make_suite_project(variant, tmp_path, seed=0, n_frames=N)
    project = open_project(config)
    frames = load_labeled_frames(project)
    spec = VARIANTS[variant]
    assert project.bodyparts == [name for name, _, _ in spec.parts]
    assert frames.bodyparts == project.bodyparts and len(frames) == N
    assert [p.name for p in frames.paths] == [f"img{i:04d}.png" for i in range(N)]
    w, h = spec.size
    assert cv2.imread(str(frames.paths[0])).shape == (h, w, 3)
    kp = frames.keypoints  # (N, K, 2), NaN where unlabeled
    ok = np.isfinite(kp[..., 0])
    assert (kp[ok] >= 0).all() and (kp[ok][:, 0] < w).all() and (kp[ok][:, 1] < h).all()
    truth = load_ground_truth(config)
    assert truth.notna().all().all() and truth.shape == (N, 2 * len(project.bodyparts))
    truth_kp = truth.to_numpy().reshape(N, -1, 2)
    np.testing.assert_allclose(kp[ok], truth_kp[ok], atol=1e-4)  # float32 view of the truth
    assert {a for pair in project.skeleton for a in pair} <= set(project.bodyparts)
    assert (project.root / "videos" / f"{variant}.mp4").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = make_suite_project("few_labels", tmp_path / "a", seed=5, n_frames=N).parent
    b = make_suite_project("few_labels", tmp_path / "b", seed=5, n_frames=N).parent
    c = make_suite_project("few_labels", tmp_path / "c", seed=6, n_frames=N).parent
    rel = "labeled-data/few_labels/CollectedData_synthetic"
    assert (a / f"{rel}.csv").read_bytes() == (b / f"{rel}.csv").read_bytes()
    assert (a / "ground-truth.csv").read_bytes() == (b / "ground-truth.csv").read_bytes()
    assert read_labels(a / f"{rel}.h5").equals(read_labels(b / f"{rel}.h5"))
    for i in range(N):
        png = f"labeled-data/few_labels/img{i:04d}.png"
        assert (a / png).read_bytes() == (b / png).read_bytes()
        np.testing.assert_array_equal(cv2.imread(str(a / png)), cv2.imread(str(b / png)))
    assert (a / f"{rel}.csv").read_bytes() != (c / f"{rel}.csv").read_bytes()
    png = "labeled-data/few_labels/img0000.png"
    assert not np.array_equal(cv2.imread(str(a / png)), cv2.imread(str(c / png)))
    # the first frames do not depend on how many frames are asked for
    np.testing.assert_array_equal(SuiteDataset("few_labels", 5, N).keypoints,
                                  SuiteDataset("few_labels", 5, 10).keypoints[:N])


def test_paws_ears_and_nose_are_pink_discs_on_the_keypoints():
    ds = SuiteDataset("many_keypoints", seed=2, n_frames=8)
    names = ["snout", "leftear", "rightear", "leftfrontpaw", "rightfrontpaw", "lefthindpaw",
             "righthindpaw"]
    for i in range(len(ds)):
        pink = _pinkness(ds.image(i))
        for name in names:
            p = ds.keypoints[i, ds.bodyparts.index(name)]
            err = np.linalg.norm(_component_centroid(pink, p, 6) - p)
            assert err < 0.5, (i, name, err)


def test_eyes_spine_and_tail_points_lie_on_the_drawn_features():
    ds = SuiteDataset("many_keypoints", seed=3, n_frames=8)
    look = dataclasses.replace(ds.spec.look, shadow=0.0)  # edges of the animal, not its shadow
    ds.spec = dataclasses.replace(ds.spec, look=look)
    kp = ds.keypoints
    idx = {name: k for k, name in enumerate(ds.bodyparts)}
    for i in range(len(ds)):
        img = ds.image(i)
        bg = _floor_as_exposed(img, ds.background)
        for eye in ("lefteye", "righteye"):  # small dark discs
            p = kp[i, idx[eye]]
            assert np.linalg.norm(_component_centroid(_darkness(img, 45), p, 3) - p) < 0.6
        # spine points: on the animal; the mid-back (no legs or ears beside it) is on the
        # midline, as far from the body's left edge as from its right
        for name in ("neck", "midback", "hips"):
            assert _differs(img, bg, kp[i, idx[name]]) > 60, (i, name)
        axis = kp[i, idx["neck"]] - kp[i, idx["hips"]]
        normal = np.array([axis[1], -axis[0]]) / np.linalg.norm(axis)
        p = kp[i, idx["midback"]]
        left = _extent(img, bg, p, normal, 3 * ds.s)
        right = _extent(img, bg, p, -normal, 3 * ds.s)
        assert min(left, right) > 0.6 * ds.s and abs(left - right) < 1.5, (i, left, right)
        # tail points: on the tail, with the floor a little to either side
        for name in ("tailbase", "tail1", "tail2", "tail3"):
            assert _differs(img, bg, kp[i, idx[name]]) > 25, (i, name)
        tip = kp[i, idx["tailtip"]]  # a 2 px round cap: one of the pixels around it
        assert max(_differs(img, bg, tip + d) for d in np.mgrid[-1:2, -1:2].reshape(2, -1).T) > 25
        diff = np.abs(img.astype(np.float32) - bg.astype(np.float32)).sum(axis=2)
        for a, b in (("tail2", "tail3"), ("tail3", "tailtip")):  # centred across the tail
            d = kp[i, idx[b]] - kp[i, idx[a]]
            side = np.array([d[1], -d[0]]) / np.linalg.norm(d)
            offsets = np.linspace(-0.4, 0.4, 41) * ds.s
            xy = (kp[i, idx[a]] + offsets[:, None] * side).astype(np.float32)
            profile = cv2.remap(diff, xy[:, :1], xy[:, 1:], cv2.INTER_LINEAR)[:, 0]
            w = np.clip(profile - 20.0, 0.0, None)
            run = _run_around(w > 0, 20)
            assert run.sum() > 0 and not run[[0, -1]].any(), (i, a)  # floor on both sides
            centre = (w * run * offsets).sum() / (w * run).sum()
            assert abs(centre) < 1.0, (i, a, centre)


def _run_around(on: np.ndarray, k: int) -> np.ndarray:
    """The contiguous run of True in a 1-D mask that contains index k (all False if k is off)."""
    out = np.zeros_like(on)
    if not on[k]:
        return out
    lo, hi = k, k
    while lo > 0 and on[lo - 1]:
        lo -= 1
    while hi < len(on) - 1 and on[hi + 1]:
        hi += 1
    out[lo : hi + 1] = True
    return out


def test_two_views_names_panels_and_shared_rows():
    ds = SuiteDataset("two_views", seed=0)  # the full 90 frames: keypoints only
    top = [n for n in ds.bodyparts if n.endswith("_top")]
    side = [n for n in ds.bodyparts if n.endswith("_side")]
    assert len(top) == 9 and len(side) == 8 and len(top) + len(side) == len(ds.bodyparts)
    kp = ds.keypoints
    is_top = np.array([n.endswith("_top") for n in ds.bodyparts])
    w, h = ds.size
    panel = ds._panel
    assert ds.outside.mean() < 0.01  # a tail tip past the frame's edge, now and then
    labeled = ds.labels  # NaN where outside: each labeled keypoint is inside its own view
    top, side = labeled[:, is_top, 0], labeled[:, ~is_top, 0]
    assert (top[np.isfinite(top)] < panel).all() and (side[np.isfinite(side)] > panel).all()
    assert (kp[..., 0] >= 0).all() and (kp[..., 0] < w).all()  # the truth: x in the frame
    # one animal, two projections: a part has the same image row in both views
    for part in ("snout", "tailbase", "tailtip"):
        np.testing.assert_allclose(kp[:, ds.bodyparts.index(f"{part}_top"), 1],
                                   kp[:, ds.bodyparts.index(f"{part}_side"), 1], atol=1e-9)
    for pair in (["tailbase_side", "tailmid_side"], ["tailmid_side", "tailtip_side"],
                 ["snout_top", "tailbase_top"]):
        assert pair in ds.skeleton
    # headings vary: the animal walks both ways along the corridor
    snout, base = kp[:, ds.bodyparts.index("snout_top")], kp[:, ds.bodyparts.index("tailbase_top")]
    up = snout[:, 1] < base[:, 1]
    assert 0.2 < up.mean() < 0.8
    for i in range(3):  # side-view features sit on their keypoints
        img = ds.image(i)
        pink, dark = _pinkness(img), _darkness(img, 40)
        for name in ("snout_side", "ear_side", "frontpaw_side", "hindpaw_side", "snout_top"):
            p = kp[i, ds.bodyparts.index(name)]
            assert np.linalg.norm(_component_centroid(pink, p, 5) - p) < 0.6, (i, name)
        p = kp[i, ds.bodyparts.index("eye_side")]
        assert np.linalg.norm(_component_centroid(dark, p, 3) - p) < 0.6


def test_missing_labels_leaves_a_tenth_unlabeled_and_truth_keeps_them(tmp_path):
    ds = SuiteDataset("missing_labels", seed=1)
    assert np.isnan(ds.labels[..., 0]).mean() == pytest.approx(0.1, abs=0.005)
    assert not np.isnan(ds.keypoints).any()
    config = make_suite_project("missing_labels", tmp_path, seed=1, n_frames=12)
    frames = load_labeled_frames(open_project(config))
    nan = np.isnan(frames.keypoints[..., 0])
    assert 0.05 < nan.mean() < 0.15 and len(frames) == 12
    truth = load_ground_truth(config).to_numpy().reshape(12, -1, 2)
    assert np.isfinite(truth).all()
    np.testing.assert_allclose(frames.keypoints[~nan], truth[~nan], atol=1e-4)


def test_looks_differ_as_the_variants_say():
    def contrast(variant):  # brightness on the mid-back over the bare floor's, mean of 6 frames
        ds = SuiteDataset(variant, seed=0, n_frames=6)
        ratios = []
        for i in range(len(ds)):
            x, y = np.round(ds.keypoints[i, ds.bodyparts.index("midback")]).astype(int)
            animal = ds.image(i)[y - 2 : y + 3, x - 2 : x + 3].astype(np.float64).mean()
            ratios.append(animal / ds.background[y - 2 : y + 3, x - 2 : x + 3].mean())
        return np.mean(ratios)

    assert 0.8 < contrast("low_contrast") < 0.95
    assert contrast("light_on_dark") > 3.0
    assert contrast("few_labels") < 0.5
    ds = SuiteDataset("small_in_large", seed=0, n_frames=2)
    length = np.linalg.norm(ds.keypoints[:, 0] - ds.keypoints[:, ds.bodyparts.index("tailbase")],
                            axis=-1)
    assert (length < 0.1 * ds.size[0]).all()  # a small animal in a large frame


def test_motion_blur_moves_the_animal_during_the_exposure():
    ds = SuiteDataset("motion_blur", seed=0, n_frames=6)
    e = ds.spec.exposure
    moved = [np.linalg.norm(ds._points(t + e / 2)[0] - ds._points(t - e / 2)[0])
             for t in ds.times]
    assert np.median(moved) > 0.5 * ds.s  # the snout smears over half a body width or more
    blurred = ds.image(0)
    ds.spec = dataclasses.replace(ds.spec, exposure=0.0)  # the same pose, a sharp frame
    sharp = ds.image(0)
    x0, y0 = np.floor(ds.keypoints[0].min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(ds.keypoints[0].max(axis=0)).astype(int) + 5

    def edges(img):  # horizontal and vertical gradient energy around the animal
        g = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(float)
        return (np.diff(g, axis=0) ** 2).sum() + (np.diff(g, axis=1) ** 2).sum()

    assert edges(blurred) < 0.7 * edges(sharp)


def test_preview_and_bad_input(tmp_path):
    img, kp, names = preview_frame("light_on_dark", seed=4)
    assert img.shape == (368, 368, 3) and img.dtype == np.uint8 and kp.shape == (len(names), 2)
    with pytest.raises(PoselabError, match="unknown synthetic variant"):
        make_suite_project("openfield", tmp_path)
    with pytest.raises(PoselabError, match="at least 1"):
        make_suite_project("few_labels", tmp_path, n_frames=0)
    make_suite_project("few_labels", tmp_path, n_frames=1)
    with pytest.raises(PoselabError, match="already exists"):
        make_suite_project("few_labels", tmp_path, n_frames=1)
    assert [p.name for p in tmp_path.iterdir()] == ["few_labels-synthetic-2024-01-01"]


def test_left_and_right_are_the_animals_own():
    ds = SuiteDataset("many_keypoints", seed=0)
    kp, idx = ds.keypoints, {n: k for k, n in enumerate(ds.bodyparts)}
    fwd = kp[:, idx["snout"]] - kp[:, idx["neck"]]
    for part in ("ear", "eye", "frontpaw", "hindpaw"):
        left = kp[:, idx["left" + part]] - kp[:, idx["right" + part]]
        # image y points down, so the animal's left is a negative cross product fwd x left
        assert (fwd[:, 0] * left[:, 1] - fwd[:, 1] * left[:, 0] < 0).all(), part
    assert ["leftear", "rightear"] in ds.flip_pairs and len(ds.flip_pairs) == 4


def test_a_keypoint_outside_the_frame_is_unlabeled_but_kept_in_the_truth():
    for seed in range(10):  # a seed where the tail tip leaves the frame in some frame
        ds = SuiteDataset("two_views", seed=seed)
        if ds.outside.any():
            break
    else:
        pytest.fail("no two_views dataset in 10 seeds has a keypoint outside the frame")
    h = ds.size[1]
    i, k = np.nonzero(ds.outside)
    assert ((ds.keypoints[i, k, 1] < 2) | (ds.keypoints[i, k, 1] > h - 3)).all()
    assert np.isnan(ds.labels[i, k]).all() and np.isfinite(ds.keypoints).all()
    assert (ds.hidden == ds.outside).all()  # nothing else is hidden in this variant
