"""Ensembles: the combination rules by hand, the variance sidecar, and that the main file stays
DeepLabCut's layout for every reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poselab.analysis.ensemble import combine_prediction_files, combine_predictions
from poselab.errors import LabelFileError, PoselabError
from poselab.io.predictions import (
    predictions_arrays,
    predictions_frame,
    read_predictions,
    read_variance,
    variance_arrays,
    variance_frame,
    variance_path,
    write_predictions,
    write_variance,
)

PARTS = ["snout", "tail"]


def _member(xy: list, lik: list, scorer: str = "DLC_m") -> pd.DataFrame:
    """A 2-frame, 2-bodypart member from xy (N, K, 2) and likelihood (N, K) lists."""
    return predictions_frame(np.array(xy, float), np.array(lik, float), PARTS, scorer)


def test_combination_rules_by_hand():
    a = _member([[[0, 0], [10, 10]], [[5, 5], [np.nan, np.nan]]], [[1.0, 0.5], [0.2, 0.9]])
    b = _member([[[4, 8], [10, 20]], [[5, 9], [1, 1]]], [[0.25, 0.5], [0.6, np.nan]], "DLC_b")
    mean, var = combine_predictions([a, b])
    xy, lik, parts = predictions_arrays(mean)
    v, vparts = variance_arrays(var)
    assert parts == vparts == PARTS
    assert mean.columns.get_level_values("scorer")[0] == "DLC_m"  # the first member's
    # frame 0 snout: weights 1 and 0.25 -> x = 4 * 0.25 / 1.25, y = 8 * 0.25 / 1.25
    np.testing.assert_allclose(xy[0, 0], [0.8, 1.6])
    np.testing.assert_allclose(lik[0, 0], 0.625)
    np.testing.assert_allclose(v[0, 0], [(0.8**2 + 3.2**2) / 2, (1.6**2 + 6.4**2) / 2])
    # frame 0 tail: equal weights -> plain mean, spread of 5 px in y
    np.testing.assert_allclose(xy[0, 1], [10, 15])
    np.testing.assert_allclose(v[0, 1], [0, 25])
    # frame 1 tail: member a has no position, b has a NaN likelihood -> b alone, variance 0,
    # likelihood the mean of the finite ones
    np.testing.assert_allclose(xy[1, 1], [1, 1])
    np.testing.assert_allclose(v[1, 1], [0, 0])
    np.testing.assert_allclose(lik[1, 1], 0.9)
    # frame 1 snout: same x, y 5 vs 9 with weights 0.2 and 0.6
    np.testing.assert_allclose(xy[1, 0], [5, 8])


def test_no_member_with_a_position_is_nan_and_zero_likelihoods_still_average():
    nan = [[[np.nan, np.nan], [0, 0]], [[np.nan, np.nan], [2, 2]]]
    a = _member(nan, [[np.nan, 0.0], [np.nan, 0.0]])
    b = _member([[[np.nan, np.nan], [4, 0]], [[np.nan, np.nan], [2, 6]]],
                [[np.nan, 0.0], [np.nan, 0.0]])
    mean, var = combine_predictions([a, b])
    xy, lik, _ = predictions_arrays(mean)
    v, _ = variance_arrays(var)
    assert np.isnan(xy[:, 0]).all() and np.isnan(lik[:, 0]).all() and np.isnan(v[:, 0]).all()
    np.testing.assert_allclose(xy[:, 1], [[2, 0], [2, 4]])
    np.testing.assert_allclose(lik[:, 1], 0.0)


def test_one_member_is_itself_with_zero_variance():
    a = _member([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[0.9, 0.1], [0.5, 0.7]])
    mean, var = combine_predictions([a])
    pd.testing.assert_frame_equal(mean, a)
    np.testing.assert_allclose(var.to_numpy(), 0.0, atol=1e-12)


def test_members_that_disagree_are_one_line_errors():
    a = _member([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[1, 1], [1, 1]])
    short = a.iloc[:1]
    other = predictions_frame(np.zeros((2, 2, 2)), np.ones((2, 2)), ["snout", "ear"], "DLC_m")
    with pytest.raises(PoselabError, match="frames"):
        combine_predictions([a, short])
    with pytest.raises(PoselabError, match="bodyparts"):
        combine_predictions([a, other])
    with pytest.raises(PoselabError, match="at least one"):
        combine_predictions([])


def test_files_main_file_stays_deeplabcut_layout_for_every_reader(tmp_path: Path):
    rng = np.random.default_rng(0)
    paths = []
    for m in range(3):
        xy = 50 + rng.normal(size=(20, 2, 2))
        df = predictions_frame(xy, rng.uniform(0.5, 1, (20, 2)), PARTS, f"DLC_m{m}")
        paths.append(write_predictions(df, tmp_path / f"m{m}.h5")[0])
    h5, side = combine_prediction_files(paths, tmp_path / "out" / "videoDLC_ens.h5", csv=True)
    assert side == tmp_path / "out" / "videoDLC_ens_variance.h5" == variance_path(h5)
    expected, expected_var = combine_predictions([read_predictions(p) for p in paths])
    # pandas as DeepLabCut reads it, the .csv twin, and poselab's reader: same table
    for df in (pd.read_hdf(h5, "df_with_missing"),
               pd.read_csv(h5.with_suffix(".csv"), header=[0, 1, 2], index_col=0),
               read_predictions(h5)):
        assert list(df.columns.get_level_values(2).unique()) == ["x", "y", "likelihood"]
        np.testing.assert_allclose(df.to_numpy(float), expected.to_numpy())
        assert list(df.index) == list(range(20))
    var = read_variance(h5)
    pd.testing.assert_frame_equal(var, expected_var)
    assert list(var.columns.get_level_values("coords").unique()) == ["x_var", "y_var"]
    assert (var.to_numpy() >= 0).all() and (var.to_numpy() > 0).any()
    pd.testing.assert_frame_equal(read_variance(side), var)  # the sidecar path works too
    assert not list(tmp_path.glob("out/.*tmp*"))  # atomic writes leave no temp file


def test_variance_files_are_validated(tmp_path: Path):
    pred = tmp_path / "v.h5"
    with pytest.raises(LabelFileError, match="variance file not found"):
        read_variance(pred)
    df = predictions_frame(np.zeros((3, 2, 2)), np.ones((3, 2)), PARTS, "s")
    df.to_hdf(variance_path(pred), key="df_with_missing")  # a predictions table, misnamed
    with pytest.raises(LabelFileError, match="not a variance file"):
        read_variance(pred)
    with pytest.raises(LabelFileError, match="negative"):
        write_variance(variance_frame(-np.ones((3, 2, 2)), PARTS, "s"), pred)
        read_variance(pred)
    with pytest.raises(ValueError, match="x_var"):
        write_variance(df, pred)
