"""The whole workflow in headless Chromium, on a synthetic video, through the pages only:
create a project, extract frames, label two frames, train (closing the tab and restarting
the server meanwhile: the job goes on, then the interrupted run resumes), analyze, play the
labeled video, see the plots and the report, open an outlier frame in the labeler.

One test on purpose: every step needs the one before, and each real job (a `poselab`
process) costs seconds. Screenshots of every page go to $POSELAB_APP_SHOTS when it is set.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from poselab.io.project import open_project
from tests.labeler.labeler_support import LabelerPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PlaywrightError = pytest.importorskip("playwright.sync_api").Error

# A tiny training: a few seconds a run on 2 cores (the numbers are not the point here).
TRAIN_OPTIONS = "\n".join(["workers=0", "head_width=32", "batch_size=2", "eval_train=false",
                           "augment.crop_size=[64, 64]", "precision=fp32"])
EPOCHS = 200  # never reached: the run is interrupted, then resumed to a few epochs only
SHOTS = os.environ.get("POSELAB_APP_SHOTS")


def _until(page, predicate: str, timeout: float = 60.0, arg=None):
    """Poll a JS expression until truthy (the page's CSP forbids wait_for_function)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = page.evaluate(predicate, arg)
        except PlaywrightError as exc:  # a navigation replaced the document meanwhile
            if "context was destroyed" not in str(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.1)


def _ready(page, name: str) -> None:
    _until(page, f"document.body?.dataset.ready === '{name}'", 20)  # body: null while loading


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _pick(page, *names: str, button: str) -> None:
    """In the open file browser: walk into folders by name, pick files, press `button`."""
    for name in names:
        item = page.locator("#dialog .browser-list li", has_text=name).first
        kind = item.get_attribute("data-kind")
        item.click()
        if kind == "dir":
            page.wait_for_selector(f"#dialog .browser-path:has-text('{name}')")
    page.locator("#dialog button", has_text=button).click()
    page.wait_for_selector("#dialog", state="hidden")


def _job_status(page, kind: str) -> str | None:
    return page.evaluate("(kind) => (window.poselabApp.jobs.list.find(j => j.kind === kind)"
                         " || {}).status || null", kind)


def test_the_whole_workflow_in_the_browser(browser, apps, root: Path, state: Path):
    server = apps([root], state_dir=state)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    requests: list[str] = []
    errors: list[str] = []

    def watch(p):
        p.on("request", lambda r: requests.append(r.url))
        p.on("pageerror", lambda e: errors.append(str(e)))

    watch(page)

    # -- Projects: create one from a video picked in the file browser
    page.goto(server.url)
    _ready(page, "projects")
    page.fill("#new-name", "maze")
    page.fill("#new-experimenter", "ann")
    page.fill("#new-bodyparts", "snout, leftear, rightear, tailbase")
    page.fill("#new-skeleton", "snout-leftear, snout-rightear")
    page.click("#new-pick-videos")
    _pick(page, str(root.resolve()), "data", "mouse.avi", button="Choose")
    assert page.inner_text("#new-videos") == str((root / "data" / "mouse.avi").resolve())
    page.click("#new-pick-dir")
    _pick(page, str(root.resolve()), button="Use this folder")
    page.click("#new-create")
    page.wait_for_selector("#project-facts h1:has-text('maze')")
    _ready(page, "projects")
    pid = page.evaluate("window.poselabApp.pid")
    project = open_project(next(root.glob("maze-ann-*/config.yaml")))
    assert project.skeleton == [("snout", "leftear"), ("snout", "rightear")]
    assert project.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    thumb = page.locator("#videos-table img.thumb")
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") == 96  # frame 0
    _shot(page, "projects")

    # -- Frames: extract 4 frames, watch the job, see the grid
    page.click("#pages a[data-page=frames]")
    _ready(page, "frames")
    page.select_option("#extract-method", "uniform")
    page.fill("#extract-n", "4")
    page.click("#extract-start-button")
    _until(page, "document.querySelectorAll('#frames-grid .frame-cell').length === 4", 60)
    assert _job_status(page, "extract") == "done"
    _shot(page, "frames")

    # -- Label: the first frame opens in the labeler; two frames get all four bodyparts
    page.click("#frames-grid .frame-cell >> nth=0")
    page.wait_for_url("**/label/**")
    page.wait_for_load_state()
    lp = LabelerPage(page)
    lp.wait("s => s.painted && s.folder === 'mouse'", 15)
    assert page.locator("#app-nav a[data-page=train]").count() == 1  # the app's links
    spots = [(40, 30), (46, 25), (46, 35), (62, 31)]
    for _ in range(2):
        for x, y in spots:
            lp.click_image(x, y)
        lp.wait("s => Object.values(s.points).every(p => p !== null)")
        lp.press("d")
        lp.painted()
    lp.saved()
    _shot(page, "label")

    # -- Train: start, close the tab, reopen: the job goes on, the curve and ETA are live
    page.click("#app-nav a[data-page=train]")
    _ready(page, "train")
    page.select_option("#train-preset", "")
    page.select_option("#train-backbone", "resnet18")
    page.select_option("#train-weights", "none")
    page.fill("#train-epochs", str(EPOCHS))
    page.fill("#train-sets", TRAIN_OPTIONS)
    page.click("#train-start")
    _until(page, "window.poselabApp.jobs.list.some(j => j.kind === 'train')", 10)
    page.close()
    page = context.new_page()
    watch(page)
    page.goto(f"{server.url}#/train/{pid}")
    _ready(page, "train")
    _until(page, "document.querySelector('#runs-table tr[data-state=training]')", 60)
    _until(page, "document.querySelector('#learning-curve') && document.querySelector("
                 "'#run-eta')", 60)
    _shot(page, "train-running")

    # -- Restart the server mid-training: the run is interrupted, then resumed from the page
    run_name = page.get_attribute("#runs-table tr[data-state=training]", "data-run")
    server.stop()
    assert server.ctx.table.list()[0].status == "interrupted"
    server = apps([root], state_dir=state)
    page.goto(f"{server.url}#/train/{pid}")
    _ready(page, "train")
    done = int(page.inner_text(f"#runs-table tr[data-run='{run_name}'] td:nth-child(3)")
               .split("/")[0])
    assert done >= 1 and page.get_attribute(f"#runs-table tr[data-run='{run_name}']",
                                            "data-state") == "resumable"
    page.fill("#resume-epochs", str(done + 1))
    page.click("#resume-run")
    _until(page, f"document.querySelector(\"#runs-table tr[data-run='{run_name}']\")"
                 "?.dataset.state === 'finished'", 240)  # a loaded CI machine
    _until(page, "document.querySelector('#bodypart-table')", 60)
    assert page.inner_text(f"#runs-table tr[data-run='{run_name}'] td:nth-child(3)") == \
        f"{done + 1} / {done + 1}"
    assert page.locator("#bodypart-table tbody tr").count() == 4
    _shot(page, "train")

    # -- Analyze: one job per video; the labeled video plays, plots and report show
    page.click("#pages a[data-page=analyze]")
    _ready(page, "analyze")
    page.click("#analyze-start")
    page.wait_for_selector("#player-canvas", timeout=120_000)
    page.click("#player-play")
    _until(page, "Number(document.querySelector('#player-frame')?.textContent.split(' ')[0])"
                 " >= 5", 20)
    assert page.locator("#plots img").count() == 4
    _until(page, "[...document.querySelectorAll('#plots img')].every(i => i.naturalWidth > 0)")
    assert page.locator("#report-frame").count() == 1
    _shot(page, "analyze")
    href = page.get_attribute("#outliers a.outlier >> nth=0", "href")
    assert f"label/{pid}/" in href and "video=0&vframe=" in href
    frame = int(href.split("vframe=")[1])
    page.click("#outliers a.outlier >> nth=0")
    page.wait_for_url("**/label/**")
    page.wait_for_load_state()
    lp = LabelerPage(page)
    state_ = lp.wait("s => s.painted && s.video !== null", 15)
    assert state_["video"]["id"] == 0 and state_["video"]["index"] == frame

    origin = "/".join(server.url.split("/")[:3])
    foreign = [r for r in requests if not r.startswith(("http://127.0.0.1:", "data:", "blob:"))]
    assert not foreign, foreign
    assert all(r.startswith("http://127.0.0.1:") for r in requests) and origin
    assert not errors, errors
    context.close()
