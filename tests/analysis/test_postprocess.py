"""Filtering prediction files: edges, spikes, smooth paths, likelihood, gaps, file layout, CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poselab.analysis.postprocess import filter_predictions, filter_series
from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io.predictions import (
    predictions_arrays,
    predictions_frame,
    read_predictions,
    write_predictions,
)

runner = CliRunner()


def _write(tmp_path: Path, x: np.ndarray, y: np.ndarray | None = None,
           likelihood: np.ndarray | None = None, name: str = "videoDLC_test.h5") -> Path:
    n = len(x)
    y = np.zeros(n) if y is None else y
    lik = np.ones(n) if likelihood is None else likelihood
    xy = np.stack([x, y], axis=-1)[:, None, :]  # (N, 1, 2)
    df = predictions_frame(xy, lik[:, None], ["snout"], "DLC_test")
    return write_predictions(df, tmp_path / name)[0]


def _xy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    xy, lik, _ = predictions_arrays(pd.read_hdf(path, "df_with_missing"))
    return xy[:, 0], lik[:, 0]


@pytest.mark.parametrize("method", ["median", "savgol"])
def test_edges_are_not_pulled_to_zero(tmp_path: Path, method: str):
    n = 30
    linear = 100.0 + 2.0 * np.arange(n)
    out = filter_predictions(_write(tmp_path, linear, np.full(n, 50.0)), method, window=7)
    xy, _ = _xy(out)
    # DeepLabCut's medfilt zero-pads: its first frame would be ~0 instead of 100.
    np.testing.assert_allclose(xy[:, 0], linear, atol=1e-9)
    np.testing.assert_allclose(xy[:, 1], 50.0, atol=1e-9)


def test_median_removes_a_spike():
    x = np.full(21, 10.0)
    x[10] = 500.0
    np.testing.assert_allclose(filter_series(x, "median", 5), 10.0)


def test_savgol_preserves_a_quadratic_and_smooths_noise():
    t = np.arange(200.0)
    quadratic = 0.01 * t**2 - t + 3
    np.testing.assert_allclose(filter_series(quadratic, "savgol", 9, 2), quadratic, atol=1e-9)
    noisy = quadratic + np.random.default_rng(0).normal(0, 1, t.size)
    smoothed = filter_series(noisy, "savgol", 9, 2)
    assert np.abs(smoothed - quadratic).mean() < 0.8 * np.abs(noisy - quadratic).mean()


def _gappy(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n, dtype=float)
    lik = np.ones(n)
    x[5] = 1000.0  # a confident-looking outlier position, but with low likelihood
    lik[5] = 0.1
    lik[20:32] = 0.2  # a 12-frame gap: longer than max_gap (= window 5)
    x[20:32] = -999.0
    return x, lik


def test_low_likelihood_ignored_and_long_gaps_masked_on_request(tmp_path: Path):
    x, lik = _gappy()
    out_path = filter_predictions(_write(tmp_path, x, likelihood=lik), "median", window=5,
                                  mask_below_pcutoff=True)
    xy, out_lik = _xy(out_path)
    assert xy[5, 0] == pytest.approx(5.0)  # short gap: interpolated from neighbours
    assert np.isnan(xy[20:32]).all()  # long gap: nothing invented
    np.testing.assert_allclose(xy[32:, 0], x[32:])
    np.testing.assert_array_equal(out_lik, lik)  # likelihood kept as it was


def test_default_output_is_complete_as_deeplabcut(tmp_path: Path):
    """DeepLabCut's filtered files hold no NaN x/y: long low-likelihood gaps keep the
    (filtered) raw predictions, frames without any prediction are interpolated, and the
    low-likelihood points still do not steer their confident neighbours."""
    x, lik = _gappy()
    x[36], lik[36] = np.nan, 0.0  # an undecodable frame: no prediction at all
    xy, out_lik = _xy(filter_predictions(_write(tmp_path, x, likelihood=lik), window=5))
    assert np.isfinite(xy).all()
    assert xy[5, 0] == pytest.approx(5.0)  # short gap: still interpolated
    np.testing.assert_allclose(xy[22:30, 0], -999.0)  # long gap: the raw predictions
    assert xy[36, 0] == pytest.approx(36.0)  # from its neighbours 35 and 37
    np.testing.assert_allclose(xy[10:18, 0], x[10:18])  # confident stretch untouched
    np.testing.assert_array_equal(out_lik, lik)
    # read back as DeepLabCut and keypoint-moseq do: no missing coordinate anywhere
    csv = filter_predictions(_write(tmp_path, x, likelihood=lik, name="b.h5"), window=5,
                             csv=True).with_suffix(".csv")
    table = pd.read_csv(csv, header=[0, 1, 2], index_col=0)
    assert len(table) == len(x) and not table.isna().to_numpy().any()


def test_pcutoff_and_max_gap_options(tmp_path: Path):
    x = np.arange(20, dtype=float)
    lik = np.full(20, 0.5)
    lik[8:12] = 0.4
    path = _write(tmp_path, x, likelihood=lik)
    masked = {"mask_below_pcutoff": True}
    xy, _ = _xy(filter_predictions(path, window=3, **masked))  # pcutoff 0.6: all missing
    assert np.isnan(xy).all()
    xy, _ = _xy(filter_predictions(path, window=3))  # unmasked: the raw predictions
    np.testing.assert_allclose(xy[:, 0], x)
    xy, _ = _xy(filter_predictions(path, window=3, pcutoff=0.45, max_gap=2, **masked))
    assert np.isnan(xy[8:12]).all() and np.isfinite(xy[:8]).all()
    xy, _ = _xy(filter_predictions(path, window=3, pcutoff=0.45, max_gap=4, **masked))
    np.testing.assert_allclose(xy[:, 0], x)


def test_input_untouched_and_layout_identical(tmp_path: Path):
    n = 25
    rng = np.random.default_rng(1)
    path = _write(tmp_path, rng.normal(50, 3, n), rng.normal(30, 3, n), rng.uniform(0.5, 1, n))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = filter_predictions(path, "savgol", window=5, polyorder=2, dest=tmp_path / "out",
                             csv=True)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert out == tmp_path / "out" / "videoDLC_test_filtered.h5"
    assert out.with_suffix(".csv").is_file()
    before, after = pd.read_hdf(path, "df_with_missing"), pd.read_hdf(out, "df_with_missing")
    pd.testing.assert_index_equal(before.columns, after.columns)
    pd.testing.assert_index_equal(before.index, after.index)
    assert (before.dtypes == after.dtypes).all()
    assert not np.allclose(before.to_numpy(), after.to_numpy(), equal_nan=True)
    assert read_predictions(out.with_suffix(".csv")).shape == before.shape


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": 4}, "odd"),
    ({"window": 1}, "odd"),
    ({"window": 11}, "longer than the 9 frames"),
    ({"method": "kalman"}, "unknown filter"),
    ({"method": "savgol", "window": 5, "polyorder": 5}, "polyorder"),
])
def test_bad_options(tmp_path: Path, kwargs: dict, message: str):
    with pytest.raises(PoselabError, match=message):
        filter_predictions(_write(tmp_path, np.arange(9.0)), **kwargs)


def test_not_a_predictions_file(tmp_path: Path):
    labels = pd.DataFrame(
        [[1.0, 2.0]], columns=pd.MultiIndex.from_product([["me"], ["snout"], ["x", "y"]]))
    labels.to_hdf(tmp_path / "CollectedData_me.h5", key="df_with_missing")
    with pytest.raises(PoselabError, match="not a predictions file"):
        filter_predictions(tmp_path / "CollectedData_me.h5")
    with pytest.raises(PoselabError, match="not found"):
        filter_predictions(tmp_path / "missing.h5")


def test_cli_filter(tmp_path: Path):
    a = _write(tmp_path, np.arange(12.0), name="a.h5")
    b = _write(tmp_path, np.arange(12.0), name="b.h5")
    result = runner.invoke(app, ["filter", str(a), str(b), "--method", "savgol", "--window", "5",
                                 "--polyorder", "2", "--csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a_filtered.h5").is_file() and (tmp_path / "b_filtered.csv").is_file()
    bad = runner.invoke(app, ["filter", str(a), "--window", "4"])
    assert bad.exit_code == 2
    assert "window must be an odd number" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(app, ["filter", str(tmp_path / "nope.h5")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_cli_filter_mask_below_pcutoff(tmp_path: Path):
    lik = np.ones(12)
    lik[:] = 0.1
    path = _write(tmp_path, np.arange(12.0), likelihood=lik)
    assert runner.invoke(app, ["filter", str(path)]).exit_code == 0
    assert np.isfinite(_xy(tmp_path / "videoDLC_test_filtered.h5")[0]).all()
    result = runner.invoke(app, ["filter", str(path), "--mask-below-pcutoff"])
    assert result.exit_code == 0, result.output
    assert np.isnan(_xy(tmp_path / "videoDLC_test_filtered.h5")[0]).all()
