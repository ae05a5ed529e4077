"""Kalman smoothing: the theoretical error reduction, a reference implementation, NaN gaps and
edges, the maximum-likelihood process noise, the noise rules, files and the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import solve_discrete_are, solve_discrete_lyapunov
from typer.testing import CliRunner

from poselab.analysis.ensemble import combine_prediction_files
from poselab.analysis.smoothing import (
    choose_process_noise,
    kalman_smooth,
    likelihood_noise,
    smooth_frame,
    smooth_predictions,
)
from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io.predictions import (
    predictions_arrays,
    predictions_frame,
    read_predictions,
    read_variance,
    variance_arrays,
    write_predictions,
)

runner = CliRunner()
F = np.array([[1.0, 1.0], [0.0, 1.0]])
H = np.array([[1.0, 0.0]])


def _cv_tracks(n: int, series: int, q: float, r: float, seed: int = 0):
    """Positions (n, series) of the constant-velocity model with white-noise acceleration q,
    and observations with Gaussian noise of variance r."""
    rng = np.random.default_rng(seed)
    cov = q * np.array([[1 / 3, 1 / 2], [1 / 2, 1]])
    w = rng.multivariate_normal([0, 0], cov, size=(n, series))  # (n, S, 2)
    state = np.zeros((n, series, 2))
    state[0, :, 1] = rng.normal(scale=2.0, size=series)  # a few px per frame
    for t in range(1, n):
        state[t] = state[t - 1] @ F.T + w[t]
    truth = state[..., 0] + 100.0
    return truth, truth + rng.normal(scale=np.sqrt(r), size=truth.shape)


def _steady_state_rmse(q: float, r: float) -> float:
    """Position error std of the steady-state RTS smoother, from scipy's Riccati solvers."""
    cov = q * np.array([[1 / 3, 1 / 2], [1 / 2, 1]])
    pp = solve_discrete_are(F.T, H.T, cov, np.array([[r]]))  # predicted covariance
    p = pp - pp @ H.T @ np.linalg.inv(H @ pp @ H.T + r) @ H @ pp  # filtered
    c = p @ F.T @ np.linalg.inv(pp)  # smoother gain
    return float(np.sqrt(solve_discrete_lyapunov(c, p - c @ pp @ c.T)[0, 0]))


@pytest.mark.parametrize("q, r", [(0.05, 9.0), (1.0, 4.0)])
def test_smoother_reduces_rmse_by_the_theoretical_amount(q, r):
    truth, y = _cv_tracks(6000, 4, q, r)
    theory = np.sqrt(r) / _steady_state_rmse(q, r)  # raw RMSE / smoothed RMSE
    inner = slice(200, -200)  # away from the ends, where the steady state holds
    for process_noise in (q, choose_process_noise(y, np.full_like(y, r))):
        pos, var = kalman_smooth(y, np.full_like(y, r), process_noise)
        raw = np.sqrt(np.mean((y - truth)[inner] ** 2))
        smoothed = np.sqrt(np.mean((pos - truth)[inner] ** 2))
        assert raw / smoothed == pytest.approx(theory, rel=0.10)
    # the posterior variance is the theoretical one in the steady state, too
    assert np.sqrt(var[3000]).mean() == pytest.approx(_steady_state_rmse(q, r), rel=0.02)


def test_equations_match_filterpy():
    kalman = pytest.importorskip("filterpy.kalman")
    rng = np.random.default_rng(1)
    q = 0.3
    _, y = _cv_tracks(250, 1, q, 4.0, seed=1)
    y = y[:, 0]
    r = rng.uniform(1, 60, len(y))
    y[40:55] = np.nan  # a gap: predictions only
    kf = kalman.KalmanFilter(dim_x=2, dim_z=1)
    kf.F, kf.H = F, H
    kf.Q = q * np.array([[1 / 3, 1 / 2], [1 / 2, 1]])
    kf.x, kf.P = np.array([[y[0]], [0.0]]), np.eye(2) * 1e6
    zs = [None if np.isnan(v) else np.array([[v]]) for v in y]
    mu, cov, _, _ = kf.batch_filter(zs, Rs=[np.array([[v]]) for v in r])
    ms, ps, _, _ = kf.rts_smoother(mu, cov)
    pos, var = kalman_smooth(y[:, None], r[:, None], q)
    # filterpy predicts once before its first update; with a 1e6 prior that moves < 1e-4 px
    np.testing.assert_allclose(pos[:, 0], ms[:, 0, 0], atol=1e-4)
    np.testing.assert_allclose(var[:, 0], ps[:, 0, 0], rtol=1e-4, atol=1e-4)


def test_nan_gaps_are_bridged_edges_and_empty_series_stay_nan():
    t = np.arange(100, dtype=float)
    line = 10 + 0.5 * t
    y = np.stack([line, line, np.full(100, np.nan), line], axis=1)
    y[40:50, 0] = np.nan  # interior gap
    y[:7, 1] = np.nan  # leading gap
    y[90:, 1] = np.nan  # trailing gap
    y[np.arange(100) != 60, 3] = np.nan  # a single observation
    pos, var = kalman_smooth(y, np.full_like(y, 1.0), 0.01)
    assert np.isfinite(pos[:, 0]).all()
    np.testing.assert_allclose(pos[40:50, 0], line[40:50], atol=0.5)  # a straight bridge
    assert (var[40:50, 0] > var[30, 0]).all()  # less sure inside the gap
    assert np.isnan(pos[:7, 1]).all() and np.isnan(pos[90:, 1]).all()
    assert np.isfinite(pos[7:90, 1]).all()
    assert np.isnan(pos[:, 2]).all() and np.isnan(var[:, 2]).all()
    assert np.isfinite(pos[:, 3]).sum() == 1 and pos[60, 3] == pytest.approx(line[60], abs=1e-3)


def test_maximum_likelihood_recovers_the_process_noise_roughly():
    r = 4.0
    slow, y_slow = _cv_tracks(4000, 2, 0.01, r, seed=2)
    fast, y_fast = _cv_tracks(4000, 2, 1.0, r, seed=3)
    y = np.concatenate([y_slow, y_fast], axis=1)
    q = choose_process_noise(y, np.full_like(y, r), groups=np.array([0, 0, 1, 1]))
    assert q[0] == q[1] and q[2] == q[3]  # one q per group
    assert 0.01 / 2 <= q[0] <= 0.01 * 2
    assert 1.0 / 2 <= q[2] <= 1.0 * 2
    # the ratio of process to observation noise is what is identifiable: scale both
    q10 = choose_process_noise(10 * y, np.full_like(y, 100 * r), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(q10 / q, 100, rtol=0.8)


def test_likelihood_noise_rule():
    np.testing.assert_allclose(likelihood_noise([1.0, 0.0, 0.5, np.nan], 5.0, 50.0),
                               [6.25, 2500.0, (6.25 + 2500) / 2, 2500.0])


def _table(xy: np.ndarray, lik: np.ndarray, parts=("snout", "tail")) -> pd.DataFrame:
    return predictions_frame(xy, lik, list(parts), "DLC_test")


def test_a_low_likelihood_outlier_is_ignored():
    truth, y = _cv_tracks(400, 2, 0.1, 1.0, seed=4)
    xy = np.stack([y, y[:, ::-1]], axis=-1)  # (N, 2 parts, 2)
    lik = np.ones((400, 2))
    xy[200, 0] += 80.0  # a jump to a distractor, the model unsure
    lik[200, 0] = 0.05
    out = smooth_frame(_table(xy, lik))
    sx, _, _ = predictions_arrays(out.predictions)
    assert abs(sx[200, 0, 0] - truth[200, 0]) < 3.0
    assert out.observation == "likelihood"
    assert set(out.process_noise) == {"snout", "tail"}


def _write_video_table(tmp_path: Path, n: int = 300, name: str = "mouseDLC_x.h5",
                       seed: int = 5) -> Path:
    truth, y = _cv_tracks(n, 4, 0.2, 4.0, seed=seed)
    xy = y.reshape(n, 2, 2)
    lik = np.random.default_rng(seed).uniform(0.3, 1.0, (n, 2))
    xy[100:110, 1] = np.nan  # a stretch the model could not see
    lik[100:110, 1] = np.nan
    return write_predictions(_table(xy, lik), tmp_path / name)[0]


def test_smooth_predictions_file_layout_input_untouched(tmp_path: Path):
    h5 = _write_video_table(tmp_path)
    digest = hashlib.sha256(h5.read_bytes()).hexdigest()
    lines = []
    out = smooth_predictions(h5, csv=True, echo=lines.append)
    assert out == tmp_path / "mouseDLC_x_smoothed.h5"
    assert hashlib.sha256(h5.read_bytes()).hexdigest() == digest
    before, after = read_predictions(h5), pd.read_hdf(out, "df_with_missing")
    assert after.columns.equals(before.columns) and after.index.equals(before.index)
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv"), header=[0, 1, 2],
                                              index_col=0), after, check_dtype=False,
                                  check_column_type=False, check_index_type=False)
    xy_b, lik_b, _ = predictions_arrays(before)
    xy_a, lik_a, _ = predictions_arrays(after)
    np.testing.assert_array_equal(lik_a, lik_b)  # the likelihood is the input's
    assert np.isfinite(xy_a).all()  # the NaN stretch is bridged
    var, _ = variance_arrays(read_variance(out))
    assert var.shape == xy_a.shape and (var > 0).all()
    assert (var[100:110, 1] > np.median(var[:, 1])).all()  # less sure in the bridge
    assert "observation noise from likelihood" in lines[0] and "snout" in lines[0]
    fixed = smooth_predictions(h5, dest=tmp_path / "other", process_noise=0.5)
    assert fixed.parent == tmp_path / "other"


def test_ensemble_variance_sidecar_is_used(tmp_path: Path):
    members = [_write_video_table(tmp_path, name=f"m{i}.h5", seed=i) for i in range(2)]
    ens, _ = combine_prediction_files(members, tmp_path / "ensDLC_x.h5")
    with_var = read_predictions(smooth_predictions(ens, dest=tmp_path / "a"))
    lik_only = read_predictions(smooth_predictions(ens, dest=tmp_path / "b",
                                                   observation="likelihood"))
    assert not np.allclose(with_var.to_numpy(), lik_only.to_numpy(), equal_nan=True)
    with pytest.raises(PoselabError, match="needs the ensemble's variance"):
        smooth_predictions(members[0], observation="variance")


def test_bad_input_is_one_line(tmp_path: Path):
    h5 = _write_video_table(tmp_path)
    with pytest.raises(PoselabError, match="unknown observation noise"):
        smooth_predictions(h5, observation="magic")
    with pytest.raises(PoselabError, match="process noise must be positive"):
        smooth_predictions(h5, process_noise=0)
    with pytest.raises(PoselabError, match="not found"):
        smooth_predictions(tmp_path / "missing.h5")
    assert not list(tmp_path.glob("*_smoothed*"))


def test_cli_smooth(tmp_path: Path):
    h5 = _write_video_table(tmp_path)
    result = runner.invoke(app, ["smooth", str(h5), "--csv"])
    assert result.exit_code == 0, result.output
    assert "process noise q" in result.output and "mouseDLC_x_smoothed.h5" in result.output
    assert (tmp_path / "mouseDLC_x_smoothed.csv").is_file()
    result = runner.invoke(app, ["smooth", str(h5), "--observation", "variance"])
    assert result.exit_code == 2 and result.output.startswith("error:")
    assert "Traceback" not in result.output


def test_a_confident_jump_is_rejected_by_reweighting():
    truth, y = _cv_tracks(400, 2, 0.1, 1.0, seed=6)
    xy = np.stack([y, y[:, ::-1]], axis=-1)
    lik = np.full((400, 2), 0.95)
    xy[200:203, 0] += 40.0  # the model sure of a wrong spot (a distractor) for 3 frames
    errors = {}
    for iterations in (0, 2):
        out = smooth_frame(_table(xy, lik), iterations=iterations)
        sx, _, _ = predictions_arrays(out.predictions)
        errors[iterations] = np.abs(sx[200:203, 0, 0] - truth[200:203, 0]).max()
    assert errors[0] > 5.0  # one Gaussian noise per likelihood follows the jump
    assert errors[2] < 3.0  # the re-weighted smoother does not
