"""Shared fixtures: small generated videos/projects, and the real data in ../shared/data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OPENFIELD = SHARED_DATA / "openfield-Pranav-2018-10-30"


@pytest.fixture
def openfield_dir() -> Path:
    """The read-only DeepLabCut openfield example (skipped when ../shared/data is absent)."""
    if not (OPENFIELD / "config.yaml").is_file():
        pytest.skip(f"{OPENFIELD} not available")
    return OPENFIELD


@pytest.fixture
def openfield_copy(openfield_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the openfield project (without its video, which tests rarely need)."""
    dest = tmp_path / openfield_dir.name
    shutil.copytree(openfield_dir, dest, ignore=shutil.ignore_patterns("*.mp4"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def write_video(path: Path, n_frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """A tiny MJPG video whose frames differ (frame index drawn as a bright bar)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    assert writer.isOpened()
    for i in range(n_frames):
        frame = np.full((h, w, 3), 40, np.uint8)
        frame[:, (i * 5) % w : (i * 5) % w + 4] = 250
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def tiny_video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "mouse1.avi")
