"""The label store: exact round trips, rows by name, not-visible sidecar, crash-safe commits."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poselab.io.labels import empty_labels, read_labels, write_labels
from poselab.labeler.edits import BadEdit, parse_edits
from poselab.labeler.store import (
    JOURNAL_NAME,
    NOTVISIBLE_NAME,
    ConflictError,
    FolderStore,
    recover,
)

BPS = ["snout", "leftear", "rightear", "tail"]


def _store(config: Path, folder: str = "mouse1", bodyparts=BPS) -> FolderStore:
    return FolderStore(config.parent / "labeled-data" / folder, "tester", bodyparts)


def _files(store: FolderStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_labels(store.h5), read_labels(store.csv)


def test_first_edit_creates_both_files_with_every_image(project: Path):
    store = _store(project)
    assert store.df is None and store.label_file() is None
    store.apply(parse_edits({"edits": [{"frame": "img0002.png", "bodypart": "leftear",
                                        "value": [10.25, 20.5]}]}, set(store.images), BPS))
    h5, csv = _files(store)
    pd.testing.assert_frame_equal(h5, csv)
    assert list(h5.index) == [("labeled-data", "mouse1", f"img{i:04d}.png") for i in range(6)]
    assert h5.loc[("labeled-data", "mouse1", "img0002.png"), ("tester", "leftear", "x")] == 10.25
    assert h5.notna().sum().sum() == 2  # one point; all-NaN rows are kept
    assert not list(store.folder.glob(".poselab-tmp-*"))
    assert not (store.folder / JOURNAL_NAME).exists()


def test_rows_are_matched_by_name_and_order_is_kept(project: Path):
    folder = project.parent / "labeled-data" / "mouse1"
    names = ["img0003.png", "img0000.png", "img0005.png"]  # unsorted, and not every image
    df = empty_labels("tester", BPS, "mouse1", names)
    df.iloc[:, 0] = [3.0, 0.0, 5.0]
    df.iloc[:, 1] = [30.0, 0.5, 50.0]
    write_labels(df, folder / "CollectedData_tester.h5")
    store = _store(project)
    assert store.frame_values()["img0003.png"]["snout"] == (3.0, 30.0)
    edits = [{"frame": "img0005.png", "bodypart": "tail", "value": [1, 2]},
             {"frame": "img0001.png", "bodypart": "snout", "value": [7, 8]}]
    store.apply(parse_edits({"edits": edits}, set(store.images), BPS))
    h5, csv = _files(store)
    pd.testing.assert_frame_equal(h5, csv)
    # existing rows keep their order, the new image goes last (the file was not sorted)
    assert [t[2] for t in h5.index] == names + ["img0001.png"]
    assert h5.loc[("labeled-data", "mouse1", "img0005.png"), ("tester", "tail", "x")] == 1.0
    assert h5.loc[("labeled-data", "mouse1", "img0005.png"), ("tester", "snout", "x")] == 5.0


def test_new_rows_go_in_place_when_the_file_is_sorted(project: Path):
    folder = project.parent / "labeled-data" / "mouse1"
    write_labels(empty_labels("tester", BPS, "mouse1", ["img0000.png", "img0004.png"]),
                 folder / "CollectedData_tester.h5")
    store = _store(project)
    store.apply([("img0002.png", "snout", (1.0, 1.0))])
    assert [t[2] for t in read_labels(store.h5).index] == ["img0000.png", "img0002.png",
                                                           "img0004.png"]


def test_openfield_save_without_edits_is_exact(openfield_copy: Path):
    folder = openfield_copy.parent / "labeled-data" / "m4s1"
    original = read_labels(folder / "CollectedData_Pranav.h5")
    store = FolderStore(folder, "Pranav", ["snout", "leftear", "rightear", "tailbase"])
    store.save()
    for path in (store.h5, store.csv):
        pd.testing.assert_frame_equal(read_labels(path), original, check_exact=True)


def test_new_config_bodypart_is_a_nan_column_and_extra_ones_are_refused(project: Path):
    store = _store(project)
    store.apply([("img0000.png", "snout", (1.0, 2.0))])
    grown = _store(project, bodyparts=BPS + ["tailtip"])
    assert grown.error is None
    grown.apply([("img0001.png", "snout", (3.0, 4.0))])
    h5 = read_labels(grown.h5)
    assert h5[("tester", "tailtip", "x")].isna().all()
    assert h5.loc[("labeled-data", "mouse1", "img0000.png"), ("tester", "snout", "y")] == 2.0
    shrunk = _store(project, bodyparts=BPS[:2])
    assert shrunk.error and "not in config.yaml" in shrunk.error
    with pytest.raises(Exception, match="read-only|not in config"):
        shrunk.apply([("img0000.png", "snout", (1.0, 1.0))])


def test_not_visible_is_nan_plus_sidecar_and_a_real_label_wins(project: Path):
    store = _store(project)
    store.apply([("img0001.png", "leftear", "nv"), ("img0001.png", "snout", (5.0, 6.0))])
    h5 = read_labels(store.h5)
    assert h5.index[1][2] == "img0001.png" and np.isnan(h5.iloc[1, 2:4]).all()  # leftear
    side = json.loads((store.folder / NOTVISIBLE_NAME).read_text())
    assert side["frames"] == {"img0001.png": ["leftear"]}
    again = _store(project)
    assert again.frame_values()["img0001.png"] == {"snout": (5.0, 6.0), "leftear": "nv"}
    # another tool labels the point: the stale flag no longer counts
    df = read_labels(store.h5)
    df.loc[("labeled-data", "mouse1", "img0001.png"), ("tester", "leftear", "x")] = 9.0
    df.loc[("labeled-data", "mouse1", "img0001.png"), ("tester", "leftear", "y")] = 9.0
    write_labels(df, store.h5)
    assert _store(project).frame_values()["img0001.png"]["leftear"] == (9.0, 9.0)
    # deleting (value None) clears the flag
    store = _store(project)
    store.apply([("img0001.png", "leftear", None)])
    assert json.loads((store.folder / NOTVISIBLE_NAME).read_text())["frames"] == {}


def test_outside_change_is_a_conflict_and_same_bytes_are_not(project: Path):
    store = _store(project)
    store.apply([("img0000.png", "snout", (1.0, 2.0))])
    os.utime(store.h5, ns=(1, 1))  # touched, same bytes
    assert not store.disk_changed()
    df = read_labels(store.h5)
    df.iloc[0, 0] = 99.0
    write_labels(df, store.h5)
    assert store.disk_changed()
    with pytest.raises(ConflictError):
        store.apply([("img0000.png", "tail", (3.0, 4.0))])
    assert read_labels(store.h5).iloc[0, 0] == 99.0  # nothing was overwritten
    store.reload()
    store.apply([("img0000.png", "tail", (3.0, 4.0))])
    h5 = read_labels(store.h5)
    assert h5.iloc[0, 0] == 99.0 and h5.iloc[0, 6] == 3.0


def test_twins_that_differ_open_the_newer_one(project: Path):
    store = _store(project)
    store.apply([("img0000.png", "snout", (1.0, 2.0))])
    df = read_labels(store.csv)
    df.iloc[0, 0] = 42.0
    df.to_csv(store.csv)  # a hand edit of the CSV, newer than the h5
    again = _store(project)
    assert again.frame_values()["img0000.png"]["snout"] == (42.0, 2.0)
    assert any("differ" in n for n in again.notices)


@pytest.mark.parametrize("crash_at", range(7))
def test_a_crash_at_any_rename_recovers_to_one_committed_state(project: Path, monkeypatch,
                                                                crash_at: int):
    store = _store(project)
    store.apply([("img0000.png", "snout", (1.0, 2.0)), ("img0001.png", "leftear", "nv")])
    before = read_labels(store.h5)
    real_replace = os.replace
    calls = []

    def dying_replace(src, dst):
        if len(calls) == crash_at:
            raise KeyboardInterrupt("killed")  # stands for SIGKILL between two syscalls
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    finished = True
    try:
        store.apply([("img0002.png", "tail", (7.0, 8.0)), ("img0003.png", "rightear", "nv")])
    except KeyboardInterrupt:
        finished = False
    monkeypatch.setattr(os, "replace", real_replace)
    after_kill = [read_labels(p) for p in (store.h5, store.csv)]  # both always parseable
    for df in after_kill:
        assert df.equals(before) or df.iloc[2, 6] == 7.0
    recovered = _store(project)  # opening the folder runs recover()
    h5, csv = _files(recovered)
    pd.testing.assert_frame_equal(h5, csv)
    journaled = crash_at >= 3  # 2 temp files + the journal rename come first
    assert h5.equals(before) != (journaled or finished)
    leftovers = [p.name for p in store.folder.iterdir() if p.name.startswith((".poselab-tmp",
                                                                             "..poselab-tmp"))]
    assert leftovers == [] and not (store.folder / JOURNAL_NAME).exists()


def test_recover_ignores_a_journal_pointing_outside(tmp_path: Path):
    (tmp_path / "victim.txt").write_text("keep")
    (tmp_path / ".poselab-tmp-x").write_text("evil")
    (tmp_path / JOURNAL_NAME).write_text(json.dumps({"moves": [[".poselab-tmp-x",
                                                                  "../victim.txt"]]}))
    recover(tmp_path)
    assert (tmp_path / "victim.txt").read_text() == "keep"
    assert not (tmp_path / JOURNAL_NAME).exists()


def test_predictions_are_read_and_never_written(project: Path):
    folder = project.parent / "labeled-data" / "mouse1"
    from poselab.io.predictions import predictions_frame

    xy = np.full((2, 4, 2), 12.5)
    lik = np.array([[0.9, 0.2, np.nan, 0.7]] * 2)
    df = predictions_frame(xy, lik, BPS, "DLC_resnet50")
    df.index = [f"labeled-data/mouse1/img000{i}.png" for i in range(2)]
    df.to_hdf(folder / "machinelabels-iter0.h5", key="df_with_missing")
    stamp = (folder / "machinelabels-iter0.h5").stat().st_mtime_ns
    store = _store(project)
    preds = store.predictions()
    assert preds["file"] == "machinelabels-iter0.h5"
    assert preds["points"]["img0001.png"]["snout"] == [12.5, 12.5, 0.9]
    assert preds["points"]["img0001.png"]["rightear"][2] is None
    store.apply([("img0000.png", "snout", (1.0, 1.0))])
    store.save()
    assert (folder / "machinelabels-iter0.h5").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("payload, message", [
    (None, "expected a JSON object"),
    ({"edits": "x"}, "expected a JSON object"),
    ({"edits": [1]}, "expected an object"),
    ({"edits": [{"frame": "../../config.yaml", "bodypart": "snout", "value": None}]}, "frame"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "nose", "value": None}]}, "bodypart"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "snout", "value": [1]}]}, "value"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "snout", "value": [1, "2"]}]}, "value"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "snout", "value": [True, 2]}]}, "value"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "snout", "value": [1e300, 2]}]}, "value"),
    ({"edits": [{"frame": "img0000.png", "bodypart": "snout"}]}, "value"),
])
def test_malformed_edits_are_refused(payload, message: str):
    with pytest.raises(BadEdit, match=message):
        parse_edits(payload, {"img0000.png"}, BPS)


def test_store_copes_with_a_folder_without_images(tmp_path: Path):
    folder = tmp_path / "labeled-data" / "empty"
    folder.mkdir(parents=True)
    store = FolderStore(folder, "tester", BPS)
    assert store.images == [] and store.counts() == {"n_images": 0, "n_labeled": 0,
                                                     "n_complete": 0}
    shutil.rmtree(folder)
