"""Prediction and variance tables stay readable by pandas 2 (DeepLabCut 3.0.2, keypoint-moseq):
pandas 3 writes no `pandas_version` attribute, and pandas 2 then takes the table for a
pre-0.10.1 file and fails to read it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tables

from poselab.io.labels import H5_KEY
from poselab.io.predictions import (
    PANDAS_TABLE_VERSION,
    predictions_frame,
    read_predictions,
    read_variance,
    variance_frame,
    write_predictions,
    write_variance,
)


def _version(path: Path) -> str | None:
    with tables.open_file(str(path)) as h5:
        attrs = h5.get_node(f"/{H5_KEY}")._v_attrs
        return str(attrs["pandas_version"]) if "pandas_version" in attrs._v_attrnames else None


def test_tables_carry_the_pandas_version_pandas_2_needs(tmp_path: Path):
    xy = np.random.default_rng(0).uniform(0, 50, (6, 2, 2))
    df = predictions_frame(xy, np.full((6, 2), 0.9), ["a", "b"], "s")
    h5 = write_predictions(df, tmp_path / "vs.h5")[0]
    assert _version(h5) == PANDAS_TABLE_VERSION == "0.15.2"
    pd.testing.assert_frame_equal(read_predictions(h5), df)  # this pandas reads it as before
    side = write_variance(variance_frame(np.ones((6, 2, 2)), ["a", "b"], "s"), h5)
    assert _version(side) == PANDAS_TABLE_VERSION
    assert read_variance(h5).shape == (6, 4)
