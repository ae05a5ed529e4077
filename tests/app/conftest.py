"""Fixtures for the app tests: a folder the app may browse with a synthetic video, a state
folder, live app servers, and a headless Chromium (Debian's /usr/bin/chromium, as the
labeler tests; skipped with a reason when it or Playwright is missing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.labeler.labeler_support import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The folder the app is started with: holds data/mouse.avi (48 frames, 96x64)."""
    from poselab.demo import write_synthetic_video

    folder = tmp_path / "lab"
    write_synthetic_video(folder / "data" / "mouse.avi", n_frames=48, size=(96, 64), seed=0)
    return folder


@pytest.fixture
def labeled_project(root: Path) -> Path:
    """config.yaml of a synthetic project inside `root`, every 4th frame labeled."""
    from poselab.demo import make_synthetic_project

    config, _, _ = make_synthetic_project(root / "projects", "syn", n_frames=48, size=(96, 64))
    return config


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def apps() -> Iterator[Callable[..., object]]:
    """apps(roots, configs=(), **kw) -> a started BackgroundApp, stopped at the end."""
    from poselab.app import BackgroundApp

    started = []

    def start(roots, configs=(), **kw):
        server = BackgroundApp(roots, configs, **kw)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.thread.is_alive():
            server.stop()


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API allows one instance at a time, and the labeler's
    # tests start their own for the session after these.
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright (Python) is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
