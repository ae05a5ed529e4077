"""extract_outliers / `poselab extract-outliers`: candidates, PNGs, machinelabels, re-runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from poselab.analysis.outliers import extract_outliers, find_candidates
from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io.labels import (
    H5_KEY,
    empty_labels,
    read_machine_labels,
    write_labels,
)
from poselab.io.predictions import predictions_arrays, write_predictions
from poselab.io.project import create_project
from poselab.io.synthetic import make_synthetic_video

BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]
OUTLIERS = [10, 30, 45]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """(config, predictions .h5, predictions): a 60-frame video whose predictions jump at
    frames 10 and 30 (snout shifted 40 px on 10..29) and have a low likelihood at 45."""
    (tmp_path / "src").mkdir()
    video = tmp_path / "src" / "mouse1.avi"
    df = make_synthetic_video(video, n_frames=60, size=(96, 64), seed=0)
    config = create_project("mice", "alice", [video], BODYPARTS, working_dir=tmp_path)
    scorer = df.columns.get_level_values("scorer")[0]
    df.loc[10:29, (scorer, "snout", "x")] += 40.0
    df.loc[45, (scorer, "tailbase", "likelihood")] = 0.1
    pred = write_predictions(df, tmp_path / "mouse1DLC.h5")[0]
    return config, pred, df


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def folder(config: Path) -> Path:
    return config.parent / "labeled-data" / "mouse1"


def test_find_candidates_per_criterion(project):
    _, _, df = project
    xy, lik, _ = predictions_arrays(df)
    assert find_candidates(xy, lik, ["jump"], 20, 0.6).tolist() == [10, 30]
    assert find_candidates(xy, lik, ["likelihood"], 20, 0.6).tolist() == [45]
    assert find_candidates(xy, lik, ["jump", "likelihood"], 50, 0.6).tolist() == [45]
    with pytest.raises(PoselabError, match="criteria"):
        find_candidates(xy, lik, ["median"], 20, 0.6)


def test_extracts_all_candidates_with_machinelabels(project):
    config, pred, df = project
    labels = write_labels(empty_labels("alice", BODYPARTS, "mouse1", ["img05.png"]),
                          folder(config) / "CollectedData_alice.h5")
    before = {p: p.read_bytes() for p in labels}
    result = extract_outliers(config, "mouse1", pred, n=10, progress=False)
    assert result.candidates == OUTLIERS
    assert [p.name for p in result.frames] == ["img10.png", "img30.png", "img45.png"]
    assert all(p.is_file() and p.parent == folder(config) for p in result.frames)
    assert any("only 3 new candidates" in m for m in result.messages)
    assert result.machinelabels == folder(config) / "machinelabels-iter0.h5"
    ml = read_machine_labels(result.machinelabels)
    assert list(ml.index) == [("labeled-data", "mouse1", f"img{i}.png") for i in OUTLIERS]
    assert ml.dtypes.eq("float64").all()
    assert list(ml.columns.get_level_values("bodyparts").unique()) == BODYPARTS
    np.testing.assert_array_equal(ml.to_numpy(), df.loc[OUTLIERS].to_numpy())
    assert pd.read_hdf(result.machinelabels, H5_KEY).shape == (3, 12)
    assert {p: p.read_bytes() for p in labels} == before  # CollectedData untouched

    state = snapshot(config.parent)
    again = extract_outliers(config, "mouse1", pred, n=10, progress=False)
    assert again.frames == [] and again.machinelabels is None
    assert any("nothing written" in m for m in again.messages)
    assert snapshot(config.parent) == state  # no duplicates, no rewrite


def test_kmeans_picks_then_merges_without_replacing_rows(project):
    config, pred, df = project
    first = extract_outliers(config, "mouse1", pred, n=2, seed=0, progress=False)
    picked = sorted(int(p.stem[3:]) for p in first.frames)
    assert len(picked) == 2 and set(picked) <= set(OUTLIERS)
    path = first.machinelabels
    old = read_machine_labels(path)
    old.iloc[0, 0] = -7.0  # a row the user's file already has: must survive the merge
    old.to_hdf(path, key=H5_KEY, mode="w")
    second = extract_outliers(config, "mouse1", pred, n=5, progress=False)
    rest = sorted(set(OUTLIERS) - set(picked))
    assert [int(p.stem[3:]) for p in second.frames] == rest
    ml = read_machine_labels(path)
    assert len(ml) == 3 and not ml.index.has_duplicates and ml.iloc[0, 0] == -7.0
    row = ml.loc[("labeled-data", "mouse1", f"img{rest[0]}.png")].to_numpy()
    np.testing.assert_array_equal(row, df.loc[rest[0]].to_numpy())


def test_crop_shifts_machinelabels_into_image_pixels(project):
    config, pred, df = project
    text = config.read_text()
    assert "crop: 0, 96, 0, 64" in text
    config.write_text(text.replace("crop: 0, 96, 0, 64", "crop: 8, 88, 4, 60"))
    result = extract_outliers(config, "mouse1", pred, n=10, progress=False)
    assert cv2.imread(str(result.frames[0])).shape == (56, 80, 3)
    ml = read_machine_labels(result.machinelabels)
    scorer = df.columns.get_level_values("scorer")[0]
    x = ml[(scorer, "snout", "x")].to_numpy()
    y = ml[(scorer, "snout", "y")].to_numpy()
    np.testing.assert_allclose(x, df.loc[OUTLIERS, (scorer, "snout", "x")].to_numpy() - 8)
    np.testing.assert_allclose(y, df.loc[OUTLIERS, (scorer, "snout", "y")].to_numpy() - 4)


def test_bad_input_writes_nothing(project, tmp_path: Path):
    config, pred, df = project
    short = write_predictions(df.iloc[:50], tmp_path / "short.h5")[0]
    renamed = write_predictions(df.rename(columns={"snout": "nose"}), tmp_path / "ren.h5")[0]
    before = snapshot(config.parent)
    cases = ((short, ["jump"], "50 prediction rows"), (renamed, ["jump"], "bodyparts"),
             (pred, ["jump", "median"], "criteria"), (tmp_path / "no.h5", ["jump"], "not found"))
    for path, criteria, match in cases:
        with pytest.raises(PoselabError, match=match):
            extract_outliers(config, "mouse1", path, criteria=criteria, progress=False)
    with pytest.raises(PoselabError, match="not a video of this project"):
        extract_outliers(config, "mouse9", pred, progress=False)
    assert snapshot(config.parent) == before


def test_cli_extract_outliers(project, tmp_path: Path):
    config, pred, df = project
    runner = CliRunner()
    before = snapshot(config.parent)
    short = write_predictions(df.iloc[:50], tmp_path / "short.h5")[0]
    for args in ([str(short)], [str(pred), "--criteria", "median"], [str(pred), "--n", "0"],
                 [str(pred), "--jump-px", "-1"]):
        bad = runner.invoke(app, ["extract-outliers", str(config), "mouse1.avi", *args])
        assert bad.exit_code == 2 and "error:" in bad.output, (args, bad.output)
    assert snapshot(config.parent) == before
    ok = runner.invoke(app, ["extract-outliers", str(config), "mouse1.avi", str(pred),
                             "--criteria", "jump", "--jump-px", "20"])
    assert ok.exit_code == 0, ok.output
    assert "2 candidate frames" in ok.output
    assert sorted(p.name for p in folder(config).glob("img*.png")) == ["img10.png", "img30.png"]
