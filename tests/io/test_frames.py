"""extract_frames / `poselab extract-frames`: exact picks, determinism, re-runs, crop, bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io import frames
from poselab.io.frames import extract_frames
from poselab.io.project import absolute_key, create_project
from poselab.io.synthetic import make_synthetic_video
from poselab.io.video import VideoReader


def make_project(tmp_path: Path, lengths: tuple[int, ...] = (90,)) -> Path:
    """A project with one synthetic 96x64 MJPG video per length (mouse1.avi, mouse2.avi...)."""
    (tmp_path / "src").mkdir()
    videos = []
    for k, n in enumerate(lengths):
        videos.append(tmp_path / "src" / f"mouse{k + 1}.avi")
        make_synthetic_video(videos[-1], n, (96, 64), seed=k)
    return create_project("mice", "alice", videos=videos, bodyparts=["snout", "tail"],
                          working_dir=tmp_path)


def folder(config: Path, stem: str = "mouse1") -> Path:
    return config.parent / "labeled-data" / stem


def key(config: Path, name: str = "mouse1.avi") -> str:
    """The video_sets key of a project video: its absolute path, as DeepLabCut writes it."""
    return absolute_key(config.parent / "videos" / name)


def indices(config: Path, stem: str = "mouse1") -> list[int]:
    return sorted(int(p.stem[3:]) for p in folder(config, stem).glob("img*.png"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run(config: Path, **kwargs) -> frames.ExtractResult:
    return extract_frames(config, progress=False, **kwargs)


def test_uniform_exact_indices_names_and_pixels(tmp_path: Path):
    config = make_project(tmp_path)
    result = run(config, n=4, method="uniform")
    # centres of 4 equal bins of 90 frames: floor((2k + 1) * 90 / 8); 2 digits for 90 frames
    assert [p.name for p in result.frames[key(config)]] == [
        "img11.png", "img33.png", "img56.png", "img78.png"]
    with VideoReader(config.parent / "videos" / "mouse1.avi") as reader:
        for path in result.frames[key(config)]:
            assert np.array_equal(cv2.imread(str(path)), reader.read(int(path.stem[3:])))
    # start/stop: the second half, without the frames already there (56, 78): 43 candidates
    run(config, n=3, method="uniform", start=0.5, stop=1.0)
    assert indices(config) == [11, 33, 52, 56, 67, 78, 82]
    assert result.warnings == []


def test_kmeans_same_seed_same_frames(tmp_path: Path):
    config = make_project(tmp_path)
    picks = {}
    for seed in (0, 0, 1, 2):
        for p in folder(config).glob("*.png"):
            p.unlink()
        run(config, n=5, seed=seed)
        picks.setdefault(seed, []).append(indices(config))
    assert picks[0][0] == picks[0][1]
    assert len(picks[0][0]) == 5 and all(0 <= i < 90 for i in picks[0][0])
    assert picks[1][0] != picks[0][0] or picks[2][0] != picks[0][0]


def test_rerun_adds_frames_and_touches_nothing(tmp_path: Path):
    config = make_project(tmp_path)
    run(config, n=5)
    labels = folder(config) / "CollectedData_alice.csv"
    labels.write_text("scorer,alice\n")
    (folder(config) / "CollectedData_alice.h5").write_bytes(b"\x89HDF fake")
    before = snapshot(folder(config))
    stats = {p.name: p.stat().st_mtime_ns for p in folder(config).iterdir()}
    result = run(config, n=5)
    assert len(result.frames[key(config)]) == 5
    assert len(indices(config)) == 10  # 5 new ones, no duplicate index
    after = snapshot(folder(config))
    assert all(after[name] == data for name, data in before.items())
    assert all(p.stat().st_mtime_ns == stats[p.name] for p in folder(config).iterdir()
               if p.name in stats)
    assert not list(folder(config).glob(".*"))  # no temporary files left behind


def test_crop_recorded_in_config_with_comments(tmp_path: Path):
    config = make_project(tmp_path, (90, 40))
    result = run(config, n=3, method="uniform", crop="10,80,4,60", videos=["mouse1"])
    assert list(result.frames) == [key(config)]
    assert all(cv2.imread(str(p)).shape == (56, 70, 3) for p in result.frames[key(config)])
    text = config.read_text()
    assert "crop: 10, 80, 4, 60" in text and "crop: 0, 96, 0, 64" in text  # mouse2 unchanged
    assert "# Project definitions (do not edit)" in text and "# Cropping for analysis" in text
    again = run(config, n=2, method="uniform", videos=[str(tmp_path / "src" / "mouse1.avi")])
    assert all(cv2.imread(str(p)).shape == (56, 70, 3) for p in again.frames[key(config)])


def test_candidates_are_subsampled_to_bound_memory(tmp_path: Path, monkeypatch):
    config = make_project(tmp_path)
    monkeypatch.setattr(frames, "MAX_CANDIDATES", 9)  # 90 frames -> every 10th is a candidate
    run(config, n=4)
    assert len(indices(config)) == 4 and all(i % 10 == 0 for i in indices(config))


def test_kmeans_on_identical_frames_still_gives_n_distinct(tmp_path: Path):
    config = make_project(tmp_path, (30,))
    video = tmp_path / "src" / "mouse1.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (96, 64))
    for _ in range(30):
        writer.write(np.full((64, 96, 3), 90, np.uint8))
    writer.release()
    run(config, n=6)
    assert len(indices(config)) == 6


def test_truncated_video_extracts_within_the_true_count_and_warns(tmp_path: Path):
    config = make_project(tmp_path)
    video = tmp_path / "src" / "mouse1.avi"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])
    with VideoReader(video) as reader:
        count = reader.count_frames()
    assert count < 90
    result = run(config, n=4, method="kmeans")
    assert len(indices(config)) == 4 and max(indices(config)) < count
    assert len(result.warnings) == 1 and "mouse1.avi" in result.warnings[0]


BAD_INPUT = [
    ({"method": "median"}, "unknown"),
    ({"n": 0}, "positive"),
    ({"n": 91}, "only 90 candidate"),
    ({"start": 0.6, "stop": 0.4}, "less than stop"),
    ({"start": -0.1}, r"\[0, 1\]"),
    ({"stop": 1.5}, r"\[0, 1\]"),
    ({"crop": "0,200,0,64"}, "outside the 96x64 frame"),
    ({"crop": "1,2,3"}, "four integers"),
    ({"videos": ["mouse9.avi"]}, "not a video of this project"),
    ({"n": 30}, "mouse2.avi: cannot add 30 frames"),  # only the second video is too short
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT)
def test_bad_input_raises_and_writes_nothing(tmp_path: Path, kwargs: dict, message: str):
    config = make_project(tmp_path, (90, 20))
    before = snapshot(config.parent)
    with pytest.raises(PoselabError, match=message):
        run(config, **kwargs)
    assert snapshot(config.parent) == before


@pytest.mark.parametrize("content", ["garbage", "empty"])
def test_unreadable_or_empty_video_raises_and_writes_nothing(tmp_path: Path, content: str):
    config = make_project(tmp_path, (90, 20))
    video = tmp_path / "src" / "mouse2.avi"
    if content == "garbage":
        video.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (96, 64)).release()
    before = snapshot(config.parent)
    with pytest.raises(PoselabError, match="mouse2.avi"):
        run(config, n=3)
    assert snapshot(config.parent) == before


def test_cli_extract_frames(tmp_path: Path):
    config = make_project(tmp_path, (90, 20))
    runner = CliRunner()
    ok = runner.invoke(app, ["extract-frames", str(config), "--n", "3", "--method", "uniform",
                             "--videos", "mouse2", "--crop", "0,90,0,60"])
    assert ok.exit_code == 0, ok.output
    assert "videos/mouse2.avi: 3 new frames" in ok.output
    assert indices(config, "mouse2") == [3, 10, 16] and indices(config) == []
    assert "crop: 0, 90, 0, 60" in config.read_text()
    before = snapshot(config.parent)
    for args in (["--method", "median"], ["--start", "0.9", "--stop", "0.1"],
                 ["--videos", "nope.avi"], ["--crop", "0,500,0,60"]):
        bad = runner.invoke(app, ["extract-frames", str(config), *args])
        assert bad.exit_code == 2 and "error:" in bad.output, (args, bad.output)
    assert snapshot(config.parent) == before
