"""The suggestions sidecar (poselab.io.suggestions) and `extract-outliers` writing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poselab.errors import PoselabError
from poselab.io.suggestions import (
    SUGGESTIONS_NAME,
    read_suggestions,
    suggestions_path,
    write_suggestions,
)


def test_write_then_read_round_trip(tmp_path: Path):
    assert read_suggestions(tmp_path) == []  # no sidecar: no suggestions, no error
    path = write_suggestions(tmp_path, [{"image": "img0012.png", "score": 0.9, "reason": "jump"},
                                        {"image": "img0003.png", "score": None, "reason": ""}],
                             "outliers")
    assert path == tmp_path / SUGGESTIONS_NAME == suggestions_path(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["source"] == "outliers"
    assert [f["image"] for f in data["frames"]] == ["img0012.png", "img0003.png"]
    assert read_suggestions(tmp_path) == [
        {"image": "img0012.png", "score": 0.9, "reason": "jump", "source": "outliers"},
        {"image": "img0003.png", "score": None, "reason": "", "source": "outliers"}]
    assert [p.name for p in tmp_path.iterdir()] == [SUGGESTIONS_NAME]  # no temp file left


def test_merge_by_image_puts_the_new_ranking_first_and_keeps_the_rest(tmp_path: Path):
    write_suggestions(tmp_path, [{"image": "a.png", "score": 0.1, "reason": "old a"},
                                 {"image": "b.png", "score": 0.2, "reason": "old b"}], "outliers")
    write_suggestions(tmp_path, [{"image": "c.png", "score": 0.7, "reason": "new c"},
                                 {"image": "a.png", "score": 0.5, "reason": "new a"}], "suggest")
    got = read_suggestions(tmp_path)
    assert [(g["image"], g["reason"], g["source"]) for g in got] == [
        ("c.png", "new c", "suggest"), ("a.png", "new a", "suggest"),
        ("b.png", "old b", "outliers")]
    assert json.loads(suggestions_path(tmp_path).read_text())["source"] == "suggest"


@pytest.mark.parametrize("text, match", [
    ("{not json", "malformed JSON"),
    ("[1, 2]", "not a suggestions file"),
    ('{"version": 7, "frames": []}', "version 7"),
    ('{"version": 1, "frames": [{"image": "../x.png"}]}', "file name"),
    ('{"version": 1, "frames": [{"image": "a.png", "score": "high"}]}', "finite number"),
    ("[" * 100_000 + "]" * 100_000, "malformed JSON"),
])
def test_a_corrupt_sidecar_is_a_one_line_error_naming_it(tmp_path: Path, text: str, match: str):
    suggestions_path(tmp_path).write_text(text, encoding="utf-8")
    with pytest.raises(PoselabError, match=match) as err:
        read_suggestions(tmp_path)
    assert SUGGESTIONS_NAME in str(err.value) and "\n" not in str(err.value)
    # the next write replaces the unusable file rather than failing
    write_suggestions(tmp_path, [{"image": "a.png", "score": 1, "reason": "r"}], "outliers")
    assert [g["image"] for g in read_suggestions(tmp_path)] == ["a.png"]


def test_bad_items_write_nothing(tmp_path: Path):
    with pytest.raises(PoselabError, match="file name"):
        write_suggestions(tmp_path, [{"image": "ok.png"}, {"image": "a/b.png"}], "outliers")
    with pytest.raises(PoselabError, match="finite"):
        write_suggestions(tmp_path, [{"image": "ok.png", "score": float("nan")}], "outliers")
    with pytest.raises(PoselabError, match="source"):
        write_suggestions(tmp_path, [{"image": "ok.png"}], "")
    with pytest.raises(PoselabError, match="not a labeled-data folder"):
        write_suggestions(tmp_path / "missing", [{"image": "ok.png"}], "outliers")
    assert not suggestions_path(tmp_path).exists()


def test_extract_outliers_writes_the_frames_it_extracts(tmp_path: Path):
    from poselab.analysis.outliers import extract_outliers
    from poselab.io.predictions import write_predictions
    from poselab.io.project import create_project
    from poselab.io.synthetic import make_synthetic_video

    (tmp_path / "src").mkdir()
    video = tmp_path / "src" / "mouse1.avi"
    df = make_synthetic_video(video, n_frames=40, size=(96, 64), seed=0)
    bodyparts = list(dict.fromkeys(df.columns.get_level_values("bodyparts")))
    config = create_project("mice", "alice", [video], bodyparts, working_dir=tmp_path)
    scorer = df.columns.get_level_values("scorer")[0]
    df.loc[10:19, (scorer, bodyparts[0], "x")] += 40.0  # jumps at 10 and 20
    df.loc[30, (scorer, bodyparts[-1], "likelihood")] = 0.1
    pred = write_predictions(df, tmp_path / "mouse1DLC.h5")[0]
    result = extract_outliers(config, "mouse1", pred, n=10, pcutoff=0.6, progress=False)
    folder = config.parent / "labeled-data" / "mouse1"
    got = read_suggestions(folder)
    assert sorted(g["image"] for g in got) == sorted(p.name for p in result.frames)
    by_index = {int(g["image"][3:-4]): g for g in got}
    assert sorted(by_index) == [10, 20, 30]
    assert all(g["source"] == "outliers" for g in got)
    assert by_index[10]["reason"].startswith("jump ") and f"px ({bodyparts[0]})" in \
        by_index[10]["reason"]
    assert by_index[10]["score"] == 0.0  # every likelihood is 1
    assert "likelihood 0.10" in by_index[30]["reason"]
    assert by_index[30]["score"] == pytest.approx(0.9)
