"""Helpers shared by the labeler tests: synthetic projects and a Playwright page wrapper.

(A plain module rather than conftest.py so test files can import these names.) The page's CSP
forbids eval, so LabelerPage.wait polls `page.evaluate` instead of `wait_for_function`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OPENFIELD = SHARED_DATA / "openfield-Pranav-2018-10-30"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BODYPARTS = ["snout", "leftear", "rightear", "tail"]
MARKED_PIXEL = (10, 20)  # (col, row) painted pure red in every synthetic frame


def synthetic_frame(i: int, size: tuple[int, int]) -> np.ndarray:
    """A BGR frame: grey gradient, a bar that moves with i, one red pixel (col 10, row 20)."""
    w, h = size
    x = np.linspace(40, 160, w, dtype=np.float32)
    y = np.linspace(0, 40, h, dtype=np.float32)[:, None]
    img = np.repeat((x + y).astype(np.uint8)[..., None], 3, axis=2)
    bar = (i * 7) % max(1, w - 4)
    img[:, bar : bar + 3] = 230
    col, row = MARKED_PIXEL
    img[row, col] = (0, 0, 255)
    return img


def make_project(root: Path, folders: dict[str, int] | None = None,
                 size: tuple[int, int] = (64, 48), bodyparts: list[str] | None = None,
                 skeleton: list[list[str]] | None = None) -> Path:
    """A DeepLabCut-layout project with PNG frames and no labels yet; returns config.yaml."""
    import cv2

    bodyparts = bodyparts or BODYPARTS
    folders = folders or {"mouse1": 6, "mouse2": 3}
    skeleton = skeleton if skeleton is not None else [[bodyparts[0], bodyparts[1]],
                                                      [bodyparts[0], bodyparts[2]]]
    root.mkdir(parents=True, exist_ok=True)
    for name, n in folders.items():
        folder = root / "labeled-data" / name
        folder.mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(folder / f"img{i:04d}.png"), synthetic_frame(i, size))
    lines = ["Task: labtest", "scorer: tester", "date: Jan01", f"project_path: {root}",
             "video_sets: {}", "bodyparts:", *[f"- {b}" for b in bodyparts],
             "skeleton:", *[f"- [{a}, {b}]" for a, b in skeleton],
             "skeleton_color: white", "pcutoff: 0.6", "dotsize: 6", "colormap: rainbow"]
    config = root / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def seed_labels(config: Path, folder: str, points: dict[str, dict[str, tuple[float, float]]],
                bodyparts: list[str] | None = None, scorer: str = "tester") -> Path:
    """Write CollectedData for `folder` holding `points` {image: {bodypart: (x, y)}}."""
    from poselab.io.info import list_images
    from poselab.io.labels import empty_labels, write_labels

    bodyparts = bodyparts or BODYPARTS
    path = config.parent / "labeled-data" / folder
    df = empty_labels(scorer, bodyparts, folder, list_images(path))
    for image, bps in points.items():
        for bp, (x, y) in bps.items():
            df.loc[("labeled-data", folder, image), (scorer, bp, "x")] = x
            df.loc[("labeled-data", folder, image), (scorer, bp, "y")] = y
    return write_labels(df, path / f"CollectedData_{scorer}.h5")[0]


class LabelerPage:
    """A Playwright page on the labeler plus the helpers the tests share."""

    def __init__(self, page):
        self.page = page
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))

    def open(self, url: str) -> LabelerPage:
        self.page.goto(url)
        self.wait("s => s.painted")
        return self

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def state(self) -> dict:
        return self.js("window.poselab.state()")

    def wait(self, predicate: str, timeout: float = 5.0) -> dict:
        """Poll `predicate` (a JS function of state()) until true; returns that state."""
        deadline = time.monotonic() + timeout
        while True:
            ok, state = self.js(f"(() => {{ if (!window.poselab) return [false, null];"
                                f" const s = window.poselab.state();"
                                f" return [!!({predicate})(s), s]; }})()")
            if ok:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {predicate}; state: {state}")
            time.sleep(0.01)

    def painted(self) -> dict:
        self.js("window.poselab.framePainted()")
        return self.wait("s => s.painted")

    def saved(self, timeout: float = 5.0) -> dict:
        return self.wait("s => s.saved", timeout)

    def to_client(self, x: float, y: float) -> tuple[float, float]:
        cx, cy = self.js("([x, y]) => window.poselab.imageToClient(x, y)", [x, y])
        return cx, cy

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        x, y = self.js("([x, y]) => window.poselab.clientToImage(x, y)", [cx, cy])
        return x, y

    def click_image(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.to_client(x, y))

    def press(self, *keys: str) -> None:
        for k in keys:
            self.page.keyboard.press(k)

    def legend_active(self) -> str | None:
        return self.js("document.querySelector('#legend .bp.active')?.dataset.bodypart ?? null")

    def badge(self) -> str:
        return self.js("document.getElementById('badge').dataset.bodypart")

    def toast(self) -> str:
        return self.js("document.getElementById('toast').textContent")

    def rect(self, selector: str) -> dict:
        """The client rectangle of an element: {left, top, right, bottom, width, height}."""
        return self.js(f"(() => {{ const r = document.querySelector({selector!r})"
                       f".getBoundingClientRect(); return {{left: r.left, top: r.top, "
                       f"right: r.right, bottom: r.bottom, width: r.width, "
                       f"height: r.height}}; }})()")

    def on_screen(self, x: float, y: float) -> bool:
        """Whether image point (x, y) is inside the visible stage."""
        cx, cy = self.to_client(x, y)
        r = self.rect("#overlay-canvas")
        return r["left"] <= cx <= r["right"] and r["top"] <= cy <= r["bottom"]

    def foreign_requests(self, url: str) -> list[str]:
        origin = "/".join(url.split("/")[:3])
        return [r for r in self.requests if not r.startswith(origin + "/")]
