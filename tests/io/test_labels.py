"""Label files: every DeepLabCut flavour in, canonical out, exact round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poselab.errors import LabelFileError
from poselab.io.labels import (
    canonical_labels,
    conform_labels,
    labels_to_arrays,
    read_labels,
    write_labels,
)
from poselab.io.predictions import predictions_arrays, predictions_frame, write_predictions


def _table(index, bodyparts=("a", "b"), coords=("x", "y"), scorer="s") -> pd.DataFrame:
    cols = pd.MultiIndex.from_product([[scorer], list(bodyparts), list(coords)],
                                      names=["scorer", "bodyparts", "coords"])
    values = np.arange(len(index) * len(cols), dtype=float).reshape(len(index), -1) + 0.25
    return pd.DataFrame(values, index=index, columns=cols)


def _assert_canonical(df: pd.DataFrame):
    assert df.index.nlevels == 3 and list(df.index.names) == [None, None, None]
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert set(df.columns.get_level_values("coords")) <= {"x", "y"}
    assert (df.dtypes == "float64").all()


def test_openfield_round_trip_is_exact(openfield_dir: Path, tmp_path: Path):
    folder = openfield_dir / "labeled-data" / "m4s1"
    h5 = read_labels(folder / "CollectedData_Pranav.h5")
    csv = read_labels(folder / "CollectedData_Pranav.csv")
    _assert_canonical(h5)
    assert h5.shape == (116, 8)
    assert h5.index[0] == ("labeled-data", "m4s1", "img0000.png")
    pd.testing.assert_frame_equal(h5, csv)
    written_h5, written_csv = write_labels(h5, tmp_path / "CollectedData_Pranav.h5")
    pd.testing.assert_frame_equal(read_labels(written_h5), h5)
    pd.testing.assert_frame_equal(read_labels(written_csv), h5)
    # what DeepLabCut itself reads
    raw = pd.read_hdf(written_h5, "df_with_missing")
    pd.testing.assert_frame_equal(raw, h5)
    raw_csv = pd.read_csv(written_csv, header=[0, 1, 2], index_col=[0, 1, 2])
    assert raw_csv.shape == (116, 8)


def test_windows_string_index_and_stray_likelihood(tmp_path: Path):
    index = ["labeled-data\\m1\\img001.png", "labeled-data\\m1\\img002.png"]
    df = _table(index, coords=("x", "y", "likelihood"))
    path = tmp_path / "CollectedData_s.h5"
    df.to_hdf(path, key="keypoints")  # napari-deeplabcut's key
    out = read_labels(path)
    _assert_canonical(out)
    assert list(out.index) == [("labeled-data", "m1", "img001.png"),
                               ("labeled-data", "m1", "img002.png")]
    assert out.shape == (2, 4)


def test_tuple_index_csv_with_nan(tmp_path: Path):
    index = pd.MultiIndex.from_tuples([("labeled-data", "v", "img1.png"),
                                       ("labeled-data", "v", "img2.png")])
    df = _table(index)
    df.iloc[1, :] = np.nan  # an all-NaN row is kept
    df.iloc[0, 1] = np.nan
    h5, csv = write_labels(df, tmp_path / "CollectedData_s.csv")
    assert h5.suffix == ".h5" and csv.suffix == ".csv"
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("scorer,,,s") and lines[2].startswith("coords,,,x,y")
    assert lines[4] == "labeled-data,v,img2.png,,,,"
    for path in (h5, csv):
        pd.testing.assert_frame_equal(read_labels(path), canonical_labels(df))


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path):
    df = _table(pd.MultiIndex.from_tuples([("labeled-data", "v", "img1.png")]))
    write_labels(df, tmp_path / "CollectedData_s.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CollectedData_s.csv",
                                                          "CollectedData_s.h5"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello\nworld\n", "not a DeepLabCut label CSV"),
        ("scorer,s,s\nbodyparts,a,a\ncoords,x,y\nlabeled-data/v/i.png,1,zz\n", "non-numeric"),
        ("scorer,s,s\nbodyparts,a,a\ncoords,x,z\nlabeled-data/v/i.png,1,2\n", "unexpected coords"),
        ("scorer,s\nbodyparts,a\ncoords,x\nlabeled-data/v/i.png,1\n", "lacks an x or a y"),
    ],
)
def test_malformed_csv(tmp_path: Path, content: str, message: str):
    path = tmp_path / "CollectedData_s.csv"
    path.write_text(content)
    with pytest.raises(LabelFileError, match=message):
        read_labels(path)


def test_missing_or_corrupt_files(tmp_path: Path):
    with pytest.raises(LabelFileError, match="not found"):
        read_labels(tmp_path / "CollectedData_s.h5")
    bad = tmp_path / "CollectedData_s.h5"
    bad.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(LabelFileError, match="not a readable HDF5"):
        read_labels(bad)


def test_conform_to_config_bodyparts():
    df = canonical_labels(_table(["labeled-data/v/i.png"], bodyparts=("b", "a")))
    out = conform_labels(df, ["a", "b", "c"])  # c was added to config.yaml
    assert list(out.columns.get_level_values("bodyparts")[::2]) == ["a", "b", "c"]
    assert out[("s", "c", "x")].isna().all()
    assert out[("s", "a", "x")].iloc[0] == df[("s", "a", "x")].iloc[0]
    with pytest.raises(LabelFileError, match=r"\['b'\] are not in config.yaml"):
        conform_labels(df, ["a"])


def test_arrays_view(tmp_path: Path):
    df = canonical_labels(_table(["labeled-data/v/i1.png", "labeled-data/v/i2.png"]))
    df.iloc[1, 2:4] = np.nan
    frames = labels_to_arrays(df, tmp_path)
    assert frames.keypoints.shape == (2, 2, 2) and frames.keypoints.dtype == np.float32
    assert frames.paths[1] == tmp_path / "labeled-data" / "v" / "i2.png"
    assert frames.keypoints[0, 1, 0] == np.float32(df.iloc[0, 2])  # (a, b) x
    assert np.isnan(frames.keypoints[1, 1]).all()
    assert frames.bodyparts == ["a", "b"]


def test_predictions_layout_round_trip(tmp_path: Path):
    rng = np.random.default_rng(0)
    xy, lik = rng.random((5, 3, 2)) * 100, rng.random((5, 3))
    df = predictions_frame(xy, lik, ["a", "b", "c"], "poselab_test")
    assert list(df.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
    (h5, csv) = write_predictions(df, tmp_path / "videoposelab_test.h5", csv=True)
    back = pd.read_hdf(h5, "df_with_missing")
    pd.testing.assert_frame_equal(back, df)
    xy2, lik2, names = predictions_arrays(back)
    np.testing.assert_array_equal(xy2, xy)
    np.testing.assert_array_equal(lik2, lik)
    assert names == ["a", "b", "c"] and csv.is_file()


def test_csv_whose_first_frame_is_unlabeled(tmp_path: Path):
    """pandas' header=[0, 1, 2] would eat an all-empty first data row; it must survive."""
    index = pd.MultiIndex.from_tuples([("labeled-data", "v", "img1.png"),
                                       ("labeled-data", "v", "img2.png")])
    df = _table(index)
    df.iloc[0, :] = np.nan
    _, csv = write_labels(df, tmp_path / "CollectedData_s.h5")
    back = read_labels(csv)
    assert len(back) == 2 and back.iloc[0].isna().all()
    pd.testing.assert_frame_equal(back, canonical_labels(df))


def test_a_folder_labeled_under_another_scorer_is_merged_not_dropped(openfield_copy: Path,
                                                                    caplog):
    """The openfield labels re-saved under another capitalisation of the scorer (and a
    second folder whose file carries another scorer's name) still train: every labeled
    frame is loaded, and the mismatch is a warning naming the file."""
    import logging
    import shutil

    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project

    project = open_project(openfield_copy / "config.yaml")
    reference = load_labeled_frames(project)
    folder = openfield_copy / "labeled-data" / "m4s1"
    h5 = folder / "CollectedData_Pranav.h5"
    df = read_labels(h5)
    df.columns = df.columns.set_levels(["pranav"], level="scorer")
    write_labels(df, h5)  # same file name, scorer 'pranav' inside
    # a second folder labeled by someone else entirely
    other = openfield_copy / "labeled-data" / "second"
    other.mkdir()
    first_rows = df.iloc[:3].copy()
    for name in first_rows.index.get_level_values(2):
        shutil.copy(folder / name, other / name)
    first_rows.index = pd.MultiIndex.from_tuples(
        [("labeled-data", "second", n) for n in first_rows.index.get_level_values(2)])
    first_rows.columns = first_rows.columns.set_levels(["Someone"], level="scorer")
    write_labels(first_rows, other / "CollectedData_Someone.h5")
    with caplog.at_level(logging.WARNING):
        frames = load_labeled_frames(open_project(openfield_copy / "config.yaml"))
    assert len(frames) == len(reference) + 3
    np.testing.assert_array_equal(frames.keypoints[: len(reference)], reference.keypoints)
    assert not np.isnan(frames.keypoints).all(axis=(1, 2)).any()  # no frame became all-NaN
    text = caplog.text
    assert "CollectedData_Pranav.h5: labels by scorer 'pranav'" in text
    assert "CollectedData_Someone.h5" in text
