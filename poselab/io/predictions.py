"""Prediction files: DeepLabCut's predictions table, read, written and viewed as arrays.

A predictions table has an integer frame index 0..N-1 (one row per video frame) and columns
(scorer, bodyparts, coords) with coords x, y, likelihood; the .h5 key is df_with_missing
(table format), the optional .csv twin has the same three header rows. Analysis writes a
`<stem>_meta.json` beside it (fps, frame count, run, ...), read by `read_meta`.

Uncertainty of a predictions file (an ensemble's across-member variance, a smoother's
posterior variance) lives in a sidecar `<stem>_variance.h5` beside it (`write_variance`,
`read_variance`): same key and frame index, columns (scorer, bodyparts, coords) with coords
x_var, y_var in px^2. The main file stays exactly DeepLabCut's layout, so every reader of
DeepLabCut predictions still reads it; tools that know the sidecar pick it up by name.

Everything that reads or writes these files goes through this module, so drawing (viz/) and
post-processing (analysis/) depend only on io/.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import LabelFileError
from poselab.io.fileio import atomic_write
from poselab.io.labels import COLUMN_NAMES, H5_KEY, _read_csv, _read_h5, label_bodyparts

# DeepLabCut's default likelihood threshold, used when neither the caller nor a config gives one.
DEFAULT_PCUTOFF = 0.6


def predictions_frame(
    xy: np.ndarray, likelihood: np.ndarray, bodyparts: list[str], scorer: str
) -> pd.DataFrame:
    """Predictions in DeepLabCut's layout from xy (N, K, 2) and likelihood (N, K)."""
    n, k = likelihood.shape
    if xy.shape != (n, k, 2) or len(bodyparts) != k:
        raise ValueError(f"xy {xy.shape}, likelihood {likelihood.shape}, {k} bodyparts disagree")
    values = np.concatenate([xy, likelihood[..., None]], axis=2).reshape(n, 3 * k)
    columns = pd.MultiIndex.from_product(
        [[scorer], bodyparts, ["x", "y", "likelihood"]], names=COLUMN_NAMES
    )
    return pd.DataFrame(values.astype("float64"), index=pd.RangeIndex(n), columns=columns)


def predictions_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(xy (N, K, 2), likelihood (N, K), bodyparts) of a predictions table."""
    bodyparts = label_bodyparts(df)
    scorer = df.columns.get_level_values("scorer")[0]
    sub = df[scorer]
    xy = np.stack(
        [sub.loc[:, (bodyparts, c)].to_numpy("float64") for c in ("x", "y")], axis=-1
    )
    lik = sub.loc[:, (bodyparts, "likelihood")].to_numpy("float64")
    return xy, lik, bodyparts


# What pandas < 3 writes in the `pandas_version` attribute of a table; pandas 3 writes none,
# and pandas 2 (DeepLabCut 3.0.2, keypoint-moseq) then takes the file for a pre-0.10.1 one and
# fails on it ("'NoneType' object has no attribute 'startswith'").
PANDAS_TABLE_VERSION = "0.15.2"


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """`df` as an HDF5 table (key df_with_missing) that every pandas reads, 2.x included."""
    import tables

    df.to_hdf(path, key=H5_KEY, mode="w", format="table")
    with tables.open_file(str(path), mode="a") as h5:
        attrs = h5.get_node(f"/{H5_KEY}")._v_attrs
        if "pandas_version" not in attrs._v_attrnames:
            attrs.pandas_version = PANDAS_TABLE_VERSION


def write_predictions(df: pd.DataFrame, path: str | os.PathLike, csv: bool = False) -> list[Path]:
    """Write predictions as .h5 (key df_with_missing, table format) and optionally .csv."""
    h5 = Path(path).with_suffix(".h5")
    atomic_write(h5, lambda tmp: write_table(df, tmp))
    written = [h5]
    if csv:
        atomic_write(h5.with_suffix(".csv"), lambda tmp: df.to_csv(tmp))
        written.append(h5.with_suffix(".csv"))
    return written


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions .h5 (key df_with_missing) or .csv twin, validated.

    Raises:
        LabelFileError: missing file, not a predictions table (columns, coords, index).
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: predictions file not found")
    if path.suffix not in (".h5", ".csv"):
        raise LabelFileError(f"{path}: expected a predictions .h5 (or .csv) file")
    df = _read_h5(path) if path.suffix == ".h5" else _read_csv(path)
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 3:
        raise LabelFileError(f"{path}: not a predictions file (columns must be scorer, "
                             "bodyparts, coords)")
    coords = list(dict.fromkeys(cols.get_level_values(2)))
    if sorted(coords) != ["likelihood", "x", "y"]:
        raise LabelFileError(f"{path}: not a predictions file (coords {coords}, expected x, y, "
                             "likelihood; a CollectedData label file has no likelihood)")
    if cols.get_level_values(0).nunique() != 1:
        raise LabelFileError(f"{path}: several scorers in one predictions file")
    if not pd.api.types.is_integer_dtype(df.index) or (
        len(df) and not np.array_equal(df.index.to_numpy(), np.arange(len(df)))
    ):
        raise LabelFileError(f"{path}: the index must be the frame numbers 0..N-1")
    df.columns = cols.set_names(COLUMN_NAMES)
    try:
        return df.apply(pd.to_numeric).astype("float64")
    except (ValueError, TypeError) as exc:
        raise LabelFileError(f"{path}: non-numeric value ({exc})") from exc


def read_meta(path: str | os.PathLike) -> dict:
    """The `<stem>_meta.json` written beside a predictions file by analysis ({} if none).

    A filtered or smoothed file (`<stem>_filtered.h5`, `<stem>_smoothed.h5`) shares the
    metadata of `<stem>.h5`.
    """
    path = Path(path)
    stem = path.stem.removesuffix("_filtered").removesuffix("_smoothed")
    meta = path.with_name(f"{stem}_meta.json")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------- variance sidecar
VARIANCE_COORDS = ["x_var", "y_var"]
VARIANCE_SUFFIX = "_variance"


def variance_path(path: str | os.PathLike) -> Path:
    """The variance sidecar `<stem>_variance.h5` of a predictions file (.h5 or .csv).

    A path that already names a sidecar is returned as it is.
    """
    path = Path(path)
    if path.stem.endswith(VARIANCE_SUFFIX):
        return path.with_suffix(".h5")
    return path.with_name(f"{path.stem}{VARIANCE_SUFFIX}.h5")


def variance_frame(var: np.ndarray, bodyparts: list[str], scorer: str) -> pd.DataFrame:
    """A variance table from var (N, K, 2) (px^2 of x and y), in the sidecar's layout."""
    n, k, two = var.shape
    if two != 2 or len(bodyparts) != k:
        raise ValueError(f"variance {var.shape} and {len(bodyparts)} bodyparts disagree")
    columns = pd.MultiIndex.from_product([[scorer], bodyparts, VARIANCE_COORDS],
                                         names=COLUMN_NAMES)
    return pd.DataFrame(var.reshape(n, 2 * k).astype("float64"), index=pd.RangeIndex(n),
                        columns=columns)


def variance_arrays(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(var (N, K, 2), bodyparts) of a variance table."""
    bodyparts = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
    scorer = df.columns.get_level_values("scorer")[0]
    sub = df[scorer]
    var = np.stack([sub.loc[:, (bodyparts, c)].to_numpy("float64") for c in VARIANCE_COORDS],
                   axis=-1)
    return var, bodyparts


def write_variance(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a variance table as the sidecar of the predictions file `path` (atomically).

    Args:
        df: index = frame numbers, columns (scorer, bodyparts, coords) with coords x_var, y_var.
        path: the predictions file it belongs to (or the sidecar path itself).

    Returns:
        The sidecar path `<stem>_variance.h5`.
    """
    coords = list(dict.fromkeys(df.columns.get_level_values(-1)))
    if df.columns.nlevels != 3 or sorted(coords) != VARIANCE_COORDS:
        raise ValueError(f"a variance table has columns (scorer, bodyparts, coords) with coords "
                         f"{VARIANCE_COORDS}, got {coords}")
    out = variance_path(path)
    return atomic_write(out, lambda tmp: write_table(df, tmp))


def read_variance(path: str | os.PathLike) -> pd.DataFrame:
    """Read the variance sidecar of a predictions file (or the sidecar itself), validated.

    Raises:
        LabelFileError: no sidecar, or not a variance table (columns, coords, index, negative).
    """
    side = variance_path(path)
    if not side.is_file():
        raise LabelFileError(f"{side}: variance file not found")
    df = _read_h5(side)
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 3:
        raise LabelFileError(f"{side}: not a variance file (columns must be scorer, bodyparts, "
                             "coords)")
    coords = list(dict.fromkeys(cols.get_level_values(2)))
    if sorted(coords) != VARIANCE_COORDS:
        raise LabelFileError(f"{side}: not a variance file (coords {coords}, expected "
                             f"{', '.join(VARIANCE_COORDS)})")
    if not pd.api.types.is_integer_dtype(df.index):
        raise LabelFileError(f"{side}: the index must be the frame numbers")
    df.columns = cols.set_names(COLUMN_NAMES)
    try:
        df = df.apply(pd.to_numeric).astype("float64")
    except (ValueError, TypeError) as exc:
        raise LabelFileError(f"{side}: non-numeric value ({exc})") from exc
    if (df.to_numpy() < 0).any():
        raise LabelFileError(f"{side}: negative variance")
    return df
