"""Projects: create, open (poselab and DeepLabCut configs), repair paths, keep comments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from poselab.errors import ConfigError, PoselabError
from poselab.io.project import add_videos, create_project, open_project, resolve_pcutoff
from tests.conftest import write_video


def test_create_project_layout(tiny_video: Path, tmp_path: Path):
    config = create_project("openfield", "alice", [tiny_video], ["snout", "tailbase"],
                            working_dir=tmp_path / "w", date=dt.date(2026, 1, 2))
    root = config.parent
    assert root.name == "openfield-alice-2026-01-02"
    assert (root / "videos" / "mouse1.avi").is_file()
    assert (root / "videos" / "mouse1.avi").is_symlink()  # linked, not copied, by default
    assert (root / "labeled-data" / "mouse1").is_dir()
    project = open_project(config)
    assert project.task == "openfield" and project.scorer == "alice"
    assert project.bodyparts == ["snout", "tailbase"]
    assert project.get("date") == "Jan02"
    assert project.get("numframes2pick") == 20 and project.get("TrainingFraction") == [0.95]
    assert project.get("project_path") == str(root.resolve())
    # video keys are absolute paths, as DeepLabCut writes them (its extract_frames opens the
    # key as written), with the frame size as crop; the symlink's path, not its target's
    key = (root / "videos" / "mouse1.avi").absolute().as_posix()
    assert dict(project.cfg["video_sets"]) == {key: {"crop": "0, 64, 0, 48"}}
    assert project.videos[0].path == root / "videos" / "mouse1.avi"


def test_create_project_copy_videos(tiny_video: Path, tmp_path: Path):
    config = create_project("p", "bob", [tiny_video], copy_videos=True, working_dir=tmp_path)
    video = config.parent / "videos" / "mouse1.avi"
    assert video.is_file() and not video.is_symlink()
    assert open_project(config).bodyparts == ["bodypart1", "bodypart2", "bodypart3", "objectA"]


def test_create_project_bad_video_writes_nothing(tmp_path: Path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(PoselabError, match="broken.mp4"):
        create_project("p", "bob", [bad], working_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    with pytest.raises(PoselabError, match="not found"):
        create_project("p", "bob", [tmp_path / "missing.mp4"], working_dir=tmp_path / "w")


def test_create_project_refuses_existing(tiny_video: Path, tmp_path: Path):
    create_project("p", "bob", [tiny_video], working_dir=tmp_path, date=dt.date(2026, 1, 1))
    with pytest.raises(PoselabError, match="already exists"):
        create_project("p", "bob", [tiny_video], working_dir=tmp_path, date=dt.date(2026, 1, 1))


def test_add_videos_keeps_comments_and_unknown_dlc_keys(tiny_video: Path, tmp_path: Path):
    config = create_project("p", "bob", [tiny_video], working_dir=tmp_path)
    text = config.read_text()
    text = text.replace("numframes2pick: 20", "numframes2pick: 20  # my own note")
    text += "SuperAnimalConversionTables:\n  superanimal_topviewmouse:\n    snout: nose\n"
    config.write_text(text)
    second = write_video(tmp_path / "mouse2.avi", size=(80, 60))
    added = add_videos(config, [second])
    assert added == [config.parent / "videos" / "mouse2.avi"]
    text = config.read_text()
    assert "# my own note" in text and "# Keypoints, in the order used everywhere" in text
    assert "superanimal_topviewmouse:" in text and "snout: nose" in text
    project = open_project(config)
    key = (config.parent / "videos" / "mouse2.avi").absolute().as_posix()
    assert project.cfg["video_sets"][key]["crop"] == "0, 80, 0, 60"
    assert (config.parent / "labeled-data" / "mouse2").is_dir()
    with pytest.raises(PoselabError, match="already in the project"):
        add_videos(config, [second])


def test_open_dlc_project_repairs_moved_paths(tmp_path: Path):
    """A project made on Windows at another path opens here; nothing is rewritten on open."""
    root = tmp_path / "moved-project"
    (root / "videos").mkdir(parents=True)
    write_video(root / "videos" / "m1.avi")
    config = root / "config.yaml"
    config.write_text(
        "# Project definitions (do not edit)\nTask: t\nscorer: s\ndate: Oct30\n"
        "multianimalproject:\nidentity:\nproject_path: C:\\Users\\lab\\t-s-2020-10-30\n"
        "engine: pytorch\nvideo_sets:\n  C:\\Users\\lab\\t-s-2020-10-30\\videos\\m1.avi:\n"
        "    crop: 0, 64, 0, 48\nbodyparts:\n- a\n- b\nskeleton:\n- - a\n  - b\n"
        "pcutoff: 0.6\nSuperAnimalConversionTables:\n"
    )
    before = config.read_bytes()
    project = open_project(config)
    assert project.root == root.absolute()
    assert project.videos[0].exists and project.videos[0].path.name == "m1.avi"
    assert project.skeleton == [("a", "b")]
    assert config.read_bytes() == before
    project.save()  # the repaired project_path and video key are written; the rest is kept
    text = config.read_text()
    assert f"project_path: {root.resolve()}" in text
    assert "engine: pytorch" in text and "# Project definitions (do not edit)" in text
    video = (root / "videos" / "m1.avi").resolve().as_posix()
    assert dict(open_project(config).cfg["video_sets"]) == {video: {"crop": "0, 64, 0, 48"}}
    assert "C:\\Users" not in text


def test_video_keys_open_from_anywhere_and_follow_a_moved_project(tiny_video: Path,
                                                                 tmp_path: Path, monkeypatch):
    """Keys are absolute, so a tool that opens the key as written (DeepLabCut's
    extract_frames, sleap-io) finds the video from any working directory; after the project
    moves, poselab still finds it and writes the new path on the next save. An old relative
    key is repaired the same way."""
    import shutil

    import cv2

    config = create_project("p", "bob", [tiny_video], copy_videos=True,
                            working_dir=tmp_path / "a", date=dt.date(2026, 1, 1))
    monkeypatch.chdir(tmp_path)
    (key,) = open_project(config).cfg["video_sets"]
    assert Path(key).is_absolute() and cv2.VideoCapture(key).isOpened()
    moved = tmp_path / "b" / config.parent.name
    shutil.move(config.parent, moved)
    project = open_project(moved / "config.yaml")
    assert project.videos[0].exists and project.videos[0].key == key  # found, not yet written
    project.save()
    (new_key,) = open_project(moved / "config.yaml").cfg["video_sets"]
    assert new_key == (moved / "videos" / "mouse1.avi").absolute().as_posix()
    assert cv2.VideoCapture(new_key).isOpened()
    text = (moved / "config.yaml").read_text().replace(new_key, "videos/mouse1.avi")
    (moved / "config.yaml").write_text(text)  # a key written by an older poselab
    assert open_project(moved / "config.yaml").videos[0].exists
    add_videos(moved / "config.yaml", [write_video(tmp_path / "mouse2.avi")])
    keys = list(open_project(moved / "config.yaml").cfg["video_sets"])
    assert keys == [new_key, (moved / "videos" / "mouse2.avi").absolute().as_posix()]


def test_open_openfield_example(openfield_dir: Path):
    project = open_project(openfield_dir / "config.yaml")
    assert project.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert project.root == openfield_dir
    # video_sets holds a placeholder; the real video is found in videos/
    assert not project.videos[0].exists
    assert [p.name for p in project.unlisted_videos()] == ["m3v1mp4.mp4"]


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Task: t\nscorer: s\nbodypart: [a]\n", r"config.yaml:3: unknown key 'bodypart' "
                                                 r"\(did you mean 'bodyparts'\?\)"),
        ("Task: t\nscorer: s\nbodyparts: [a]\nnumframes2pik: 5\n", "did you mean 'numframes2pick'"),
        ("Task: t\nscorer: s\nbodyparts: [a\n", "malformed YAML"),
        ("Task: t\nscorer: s\nbodyparts: [a]\nmultianimalproject: true\n", "not supported yet"),
        ("Task: t\nscorer: s\n", "'bodyparts' is missing"),
        ("Task: t\nscorer: s\nbodyparts: [a, a]\n", "duplicate"),
        ("Task: t\nscorer: s\nbodyparts: [a]\npcutoff: 2\n", "pcutoff must be"),
        ("Task: t\nscorer: s\nbodyparts: [a]\nskeleton: [[a, z]]\n", "pair of bodyparts"),
        ("", "empty"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_messages(tmp_path: Path, body: str, message: str):
    with pytest.raises(ConfigError, match=message):
        open_project(_config(tmp_path, body))


def test_missing_config(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        open_project(tmp_path / "nope.yaml")


def test_resolve_pcutoff_explicit_then_project_then_default(tiny_video: Path, tmp_path: Path):
    config = create_project("pc", "me", [tiny_video], ["a", "b"], working_dir=tmp_path)
    project = open_project(config)
    project.cfg["pcutoff"] = 0.4
    project.save()
    assert resolve_pcutoff(0.9, config) == 0.9
    assert resolve_pcutoff(None, config) == 0.4
    assert resolve_pcutoff(None) == 0.6
