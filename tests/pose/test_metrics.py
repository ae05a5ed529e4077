"""Pixel-error metrics: DeepLabCut's mean error, true RMSE, pcutoff, PCK, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from poselab.pose.metrics import format_metrics, keypoint_metrics, likelihood_calibration


def test_mean_error_rmse_and_pcutoff():
    gt = np.array([[[0.0, 0.0], [10.0, 10.0]], [[5.0, 5.0], [np.nan, np.nan]]])
    pred = np.array([[[3.0, 4.0], [10.0, 10.0]], [[5.0, 11.0], [1.0, 1.0]]])
    lik = np.array([[0.9, 0.2], [0.8, 0.99]])
    m = keypoint_metrics(pred, lik, gt, pcutoff=0.5, bodyparts=["a", "b"])
    # errors of labeled keypoints: 5, 0, 6 (the NaN one is ignored)
    assert m["n_keypoints"] == 3
    assert m["mean_px_error"] == pytest.approx(11 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt((25 + 0 + 36) / 3))
    assert m["mean_px_error_pcutoff"] == pytest.approx(5.5)  # 5 and 6 have likelihood >= 0.5
    assert m["kept_pcutoff"] == pytest.approx(2 / 3)
    assert m["pck5"] == pytest.approx(2 / 3)  # 5 <= 5 and 0; not 6
    assert m["per_bodypart"]["a"]["mean_px_error"] == pytest.approx(5.5)
    assert m["per_bodypart"]["b"] == {"mean_px_error": 0.0, "rmse": 0.0, "pck5": 1.0, "n": 1,
                                      "missing": 0}
    assert m["missing_predictions"] == 0
    text = format_metrics("test", m)
    assert "mean pixel error 3.67 px" in text and "RMSE 4.51 px" in text


def test_calibration_of_a_calibrated_model():
    rng = np.random.default_rng(0)
    lik = rng.random(20000)
    err = np.where(rng.random(20000) < lik, 1.0, 20.0)  # correct with probability = likelihood
    cal = likelihood_calibration(lik, err)
    assert cal["ece"] < 0.02
    for b in cal["bins"]:
        assert b["fraction_correct"] == pytest.approx(b["mean_likelihood"], abs=0.03)
    overconfident = likelihood_calibration(np.full(1000, 0.95), np.full(1000, 30.0))
    assert overconfident["ece"] == pytest.approx(0.95)


def test_a_missing_prediction_is_a_pck_miss_and_counted():
    """One of two labeled keypoints has no prediction: PCK is 50%, not 100%."""
    gt = np.array([[[10.0, 10.0], [20.0, 20.0]]])
    pred = np.array([[[10.0, 11.0], [np.nan, np.nan]]])
    lik = np.array([[0.9, np.nan]])
    m = keypoint_metrics(pred, lik, gt, pcutoff=0.5, bodyparts=["a", "b"])
    assert m["n_keypoints"] == 2 and m["missing_predictions"] == 1
    assert m["pck5"] == pytest.approx(0.5)
    assert m["mean_px_error"] == pytest.approx(1.0)  # over the predicted keypoint only
    assert m["kept_pcutoff"] == pytest.approx(0.5)
    assert m["per_bodypart"]["b"]["missing"] == 1 and m["per_bodypart"]["b"]["pck5"] == 0.0
    assert "1 missing predictions" in format_metrics("test", m)
