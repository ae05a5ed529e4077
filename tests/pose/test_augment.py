"""Keypoint-aware augmentation: config validation, exact geometry, flips, crops, photometry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from poselab.errors import ConfigError, PoselabError
from poselab.pose.augment import (
    AugmentConfig,
    apply_geometry,
    compose,
    drop_outside,
    flip_pair_indices,
    input_scale_matrix,
    photometric,
    sample_geometry,
    scaled_size,
    transform_keypoints,
)

# Geometry only: photometric steps off, so pixel values are the warped image.
GEOMETRY_ONLY = dict(color_prob=0.0, motion_blur_prob=0.0, gaussian_blur_prob=0.0, noise_prob=0.0)


def blob_image(h: int, w: int, points: list[tuple[float, float]], sigma: float = 3.0):
    """uint8 (h, w, 3) black image with a Gaussian blob (peak 255) at each sub-pixel point."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(255 * img).astype(np.uint8)[..., None], 3, axis=2)


def centroid(channel: np.ndarray) -> np.ndarray:
    """Brightness-weighted (x, y) centroid, pixel centers at integers."""
    yy, xx = np.mgrid[0 : channel.shape[0], 0 : channel.shape[1]]
    total = channel.sum()
    return np.array([(channel * xx).sum() / total, (channel * yy).sum() / total])


def test_from_dict_rejects_unknown_key_with_suggestion():
    with pytest.raises(ConfigError, match=r"train\.yaml: unknown augmentation key 'rotaton' "
                       r"\(did you mean 'rotation'\?\)"):
        AugmentConfig.from_dict({"rotaton": 10}, source="train.yaml")
    assert issubclass(ConfigError, PoselabError)


def test_from_dict_converts_lists_validates_and_round_trips():
    cfg = AugmentConfig.from_dict({"crop_size": [256, 320], "scale": [0.8, 1.2], "hue": 0.1})
    assert cfg.crop_size == (256, 320) and cfg.scale == (0.8, 1.2) and cfg.hue == 0.1
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    assert AugmentConfig.from_dict(None) == AugmentConfig()
    assert AugmentConfig.from_dict({"crop_size": None}).crop_size is None
    for bad in ({"affine_prob": 1.5}, {"crop_size": [100, 100]}, {"scale": [1.2, 0.8]},
                {"motion_blur_kernel": 4}, {"rotation": "a lot"}, {"crop_max_shift": 0.5}):
        with pytest.raises(ConfigError):
            AugmentConfig.from_dict(bad)


def test_cv2_warp_affine_maps_pixel_centers_to_pixel_centers():
    img = np.zeros((40, 40), np.float32)
    img[20, 10] = 1.0  # the pixel whose center is (x=10, y=20)
    # Half-pixel shift: bilinear splits the pixel evenly; centroid = M (10, 20) = (10.5, 20).
    out = cv2.warpAffine(img, np.array([[1.0, 0, 0.5], [0, 1, 0]]), (40, 40))
    assert out[20, 10] == pytest.approx(0.5, abs=1 / 32) and out[20, 11] == pytest.approx(0.5)
    assert centroid(out) == pytest.approx([10.5, 20.0], abs=1e-6)
    # Mirror x -> (W - 1) - x and 90-degree rotation about the center (19.5, 19.5) land the
    # pixel exactly on the pixel whose center M p predicts.
    for m in (np.array([[-1.0, 0, 39], [0, 1, 0]]), np.array([[0.0, -1, 39], [1, 0, 0]])):
        out = cv2.warpAffine(img, m, (40, 40))
        x, y = transform_keypoints(np.array([[10.0, 20.0]]), m)[0]
        assert out[int(y), int(x)] == pytest.approx(1.0) and out.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_geometry_moves_keypoint_onto_blob_centroid(flip):
    kp = np.array([[87.3, 61.8]], np.float32)
    img = blob_image(150, 180, [tuple(kp[0])])
    cfg = AugmentConfig(crop_size=(96, 128), affine_prob=1.0, keypoint_crop_prob=1.0,
                        hflip_prob=flip, **GEOMETRY_ONLY)
    for seed in range(8):
        m, out_hw, flipped = sample_geometry(cfg, img.shape[:2], kp, np.random.default_rng(seed))
        out, moved = apply_geometry(img, kp, m, out_hw, flipped)
        assert out.shape == (96, 128, 3) and flipped == bool(flip)
        assert np.abs(moved[0] - centroid(out[..., 0].astype(np.float64))).max() < 0.15


@pytest.mark.parametrize("scale", [0.5, 0.37, 1.5])
def test_input_scale_matrix_is_where_cv2_resize_puts_a_point(scale):
    """cv2.resize maps pixel edges to edges: a blob at p lands at input_scale_matrix p,
    (p + 0.5) r - 0.5 with r = rounded size / size (odd sizes make r != scale)."""
    kp = np.array([[61.7, 40.3]], np.float32)
    img = blob_image(97, 131, [tuple(kp[0])], sigma=6.0)
    m = input_scale_matrix(img.shape[:2], scale)
    h, w = scaled_size(img.shape[:2], scale)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(img, (w, h), interpolation=interp)
    assert out.shape[:2] == (round(97 * scale), round(131 * scale))
    expected = transform_keypoints(kp, m)[0]
    assert np.abs(centroid(out[..., 0].astype(np.float64)) - expected).max() < 0.05
    # The warp training uses reproduces the resize's geometry too, and compose() chains maps.
    warped = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR)
    assert np.abs(centroid(warped[..., 0].astype(np.float64)) - expected).max() < 0.05
    shift = np.array([[1.0, 0, 3], [0, 1, -2]])
    np.testing.assert_allclose(transform_keypoints(kp, compose(shift, m))[0], expected + [3, -2],
                               atol=1e-5)


def test_flip_swaps_left_right_pairs_and_nan_stays_nan():
    kp = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 5.0], [np.nan, np.nan]], np.float32)
    cfg = AugmentConfig(crop_size=None, affine_prob=0.0, hflip_prob=1.0, **GEOMETRY_ONLY)
    img = np.zeros((48, 64, 3), np.uint8)
    m, out_hw, flipped = sample_geometry(cfg, (48, 64), kp, np.random.default_rng(0))
    out, moved = apply_geometry(img, kp, m, out_hw, flipped, flip_pairs=[(0, 1)])
    assert out_hw == (64, 64) and flipped  # full frames pad to /32; mirrored in place
    # x -> (W - 1) - x about the source frame (63 - x), then left and right trade places.
    np.testing.assert_allclose(moved[:3], [[13, 20], [53, 20], [33, 5]], atol=1e-4)
    assert np.isnan(moved[3]).all()


def test_flip_pair_indices_from_names():
    parts = ["nose", "left_ear", "right_ear"]
    assert flip_pair_indices([["left_ear", "right_ear"]], parts) == [(1, 2)]
    assert flip_pair_indices([(2, 1)], parts) == [(2, 1)]
    with pytest.raises(ConfigError, match="did you mean 'left_ear'"):
        flip_pair_indices([["left_eer", "right_ear"]], parts)
    with pytest.raises(ConfigError):
        flip_pair_indices([[0, 7]], parts)


def test_keypoint_aware_crop_contains_the_keypoint():
    kp = np.array([[600.0, 40.0], [np.nan, np.nan]], np.float32)  # one labeled keypoint
    cfg = AugmentConfig(crop_size=(64, 64), affine_prob=1.0, keypoint_crop_prob=1.0,
                        hflip_prob=0.5, crop_max_shift=0.1)
    for seed in range(100):
        m, out_hw, _ = sample_geometry(cfg, (480, 640), kp, np.random.default_rng(seed))
        moved = drop_outside(transform_keypoints(kp, m), out_hw)
        assert np.isnan(moved[1]).all()
        # within max_shift * crop size of the crop center (31.5, 31.5)
        assert np.abs(moved[0] - 31.5).max() <= 0.1 * 64 + 1e-3
    # Random crops of a 640x480 frame rarely contain it.
    random_crop = AugmentConfig(crop_size=(64, 64), keypoint_crop_prob=0.0)
    inside = [
        np.isfinite(drop_outside(transform_keypoints(kp, m), hw)[0]).all()
        for m, hw, _ in (sample_geometry(random_crop, (480, 640), kp, np.random.default_rng(s))
                         for s in range(100))
    ]
    assert sum(inside) < 30


def test_keypoints_leaving_the_crop_become_nan():
    kp = np.array([[100.0, 100.0], [400.0, 100.0], [100.0, -3.0]], np.float32)
    out = drop_outside(kp, (128, 128))
    assert np.isfinite(out[0]).all() and np.isnan(out[1:]).all()
    edge = drop_outside(np.array([[-0.5, 127.49], [-0.51, 3.0]], np.float32), (128, 128))
    assert np.isfinite(edge[0]).all() and np.isnan(edge[1]).all()  # image = [-0.5, W - 0.5)


def test_photometric_in_range_reproducible_and_identity_when_off():
    rng = np.random.default_rng(0)
    base = rng.random((32, 48, 3), dtype=np.float32)
    cfg = AugmentConfig(color_prob=1.0, hue=0.1, motion_blur_prob=1.0, gaussian_blur_prob=1.0,
                        noise_prob=1.0)
    a = photometric(base.copy(), cfg, np.random.default_rng(1))
    b = photometric(base.copy(), cfg, np.random.default_rng(1))
    assert a.dtype == np.float32 and a.shape == base.shape
    assert a.min() >= 0.0 and a.max() <= 1.0 and not np.allclose(a, base)
    np.testing.assert_array_equal(a, b)
    off = AugmentConfig(**GEOMETRY_ONLY)
    np.testing.assert_array_equal(photometric(base.copy(), off, rng), base)
