"""Fixtures for the labeler tests: small synthetic projects, a live server, a Playwright page.

Browser tests share one headless Chromium per session (Debian's /usr/bin/chromium; they skip
with a reason when it or Playwright is missing) and get a fresh context per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .labeler_support import CHROMIUM, CHROMIUM_ARGS, OPENFIELD, LabelerPage, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """config.yaml of a 2-folder project (mouse1: 6 frames, mouse2: 3), 64x48 frames."""
    return make_project(tmp_path / "proj")


@pytest.fixture
def openfield_copy(tmp_path: Path) -> Path:
    """A writable copy of the DeepLabCut openfield example (its video left out)."""
    if not (OPENFIELD / "config.yaml").is_file():
        pytest.skip(f"{OPENFIELD} not available")
    dest = tmp_path / OPENFIELD.name
    shutil.copytree(OPENFIELD, dest, ignore=shutil.ignore_patterns("*.mp4"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest / "config.yaml"


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """serve(config, **kw) -> URL of a BackgroundServer running until the test ends."""
    from poselab.labeler import BackgroundServer

    servers = []

    def start(config: Path, **kw) -> str:
        server = BackgroundServer(config, **kw)
        servers.append(server)
        return server.start()

    yield start
    for s in servers:
        s.stop()


# ----------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser():
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


@pytest.fixture
def lpage(browser) -> Iterator[LabelerPage]:
    """A fresh browser context and page (1000x700) wrapped in LabelerPage."""
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    page.set_default_timeout(10_000)
    helper = LabelerPage(page)
    yield helper
    context.close()
