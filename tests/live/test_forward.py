"""Forward prediction: the constant-velocity Kalman step extrapolates steady motion, coasts
over unsure keypoints for a while, and falls back to the measurement after that."""

from __future__ import annotations

import numpy as np
import pytest

from poselab.live.forward import ForwardConfig, ForwardPredictor


def _track(predictor: ForwardPredictor, times, velocity, start=(100.0, 50.0), noise=0.0,
           seed=0):
    rng = np.random.default_rng(seed)
    for t in times:
        xy = np.array([[start[0] + velocity[0] * t, start[1] + velocity[1] * t]], np.float32)
        predictor.update(xy + rng.normal(0, noise, xy.shape), np.array([0.9]), t)
    return xy


def test_steady_motion_is_extrapolated_to_the_target_time():
    fp = ForwardPredictor(ForwardConfig(pcutoff=0.5))
    times = np.arange(30) / 60  # 60 frames/s
    last = _track(fp, times, velocity=(120.0, -60.0))
    ahead = fp.predict(last, times[-1] + 0.02)  # 20 ms after the last capture
    truth = last + np.array([[120.0 * 0.02, -60.0 * 0.02]])
    np.testing.assert_allclose(ahead, truth, atol=0.05)
    # the stale measurement is 2.7 px away from where the animal is now
    assert np.linalg.norm(last - truth) > 2.5


def test_noisy_measurements_still_beat_the_stale_pose():
    errors_raw, errors_fwd = [], []
    for seed in range(5):
        fp = ForwardPredictor(ForwardConfig(pcutoff=0.5, measure_std=1.0, accel_std=300.0))
        times = np.arange(60) / 60
        _track(fp, times, (300.0, 0.0), noise=1.0, seed=seed)
        t_now = times[-1] + 1 / 30
        truth = 100 + 300 * t_now
        measured = np.array([[100 + 300 * times[-1], 50.0]], np.float32)
        errors_raw.append(abs(measured[0, 0] - truth))
        errors_fwd.append(abs(fp.predict(measured, t_now)[0, 0] - truth))
    assert np.mean(errors_fwd) < 0.5 * np.mean(errors_raw)


def test_unsure_keypoints_coast_then_fall_back():
    fp = ForwardPredictor(ForwardConfig(pcutoff=0.5, max_coast=0.1))
    times = np.arange(20) / 100
    _track(fp, times, (100.0, 0.0))
    t = times[-1]
    unsure = np.array([[0.0, 0.0]], np.float32)  # a wild measurement with low likelihood
    fp.update(unsure, np.array([0.1]), t + 0.01)
    coasting = fp.predict(unsure, t + 0.02)
    assert coasting[0, 0] == pytest.approx(100 + 100 * (t + 0.02), abs=0.1)  # ignored it
    fp.update(unsure, np.array([0.1]), t + 0.3)
    np.testing.assert_array_equal(fp.predict(unsure, t + 0.31), unsure)  # too long: measured


def test_first_pose_and_missing_keypoints_pass_through():
    fp = ForwardPredictor()
    xy = np.array([[1.0, 2.0], [np.nan, np.nan]], np.float32)
    np.testing.assert_array_equal(fp.predict(xy, 0.0), xy)  # nothing known yet
    fp.update(xy, np.array([0.9, 0.9]), 0.0)
    out = fp.predict(xy, 0.01)
    np.testing.assert_array_equal(out[0], xy[0])  # no velocity from one measurement
    assert np.isnan(out[1]).all()
