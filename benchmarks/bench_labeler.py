"""Labeler speed: next-frame paint time and autosave latency, in headless Chromium.

Makes a temporary project of 1280x1024 PNG frames, starts `poselab label --no-browser` as a
subprocess (as a user would), and drives the page with Playwright:

- paint: in the page, performance.now() from the next-frame key event until the requestAnimation
  Frame after the new image is drawn (window.poselab.framePainted()). "after labeling" leaves
  0.4 s between steps (a user places points; prefetch runs meanwhile); "rapid" steps onto new
  frames with no pause (holding D); "jump" uses G to go to frames never shown nor prefetched
  (fetch + decode).
- autosave: a click on the image until BOTH CollectedData .h5 and .csv on disk hold the point.
- video (labeling straight from a video, on DeepLabCut's openfield video m3v1mp4.mp4,
  640x480, 2330 frames, listed in the project's video_sets): opening it (the server counts
  its frames once), then performance.now() from a seek to the requestAnimationFrame after
  that frame is drawn: random seeks to frames never shown, steps forward and backward (D/A),
  and a scrub (seeks every 16 ms, as a dragged slider sends them: the time from the last one
  to its frame on screen).

Targets (shared/specs/performance.md): paint <= 150 ms, autosave <= 1 s, video seek to
painted frame <= 150 ms median.

Usage: python benchmarks/bench_labeler.py [--frames 72] [--steps 30] [--video PATH | --no-video]
Needs Debian's chromium at /usr/bin/chromium and playwright (pip install -e '.[dev]').
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OPENFIELD_VIDEO = (Path(__file__).resolve().parents[2] / "shared" / "data"
                   / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4")
SEEK_JS = """async (i) => {
  const t0 = performance.now();
  await window.poselab.seekVideo(i);
  return performance.now() - t0;
}"""
SCRUB_JS = """async (targets) => {
  for (const i of targets.slice(0, -1)) {
    window.poselab.seekVideo(i);
    await new Promise((r) => setTimeout(r, 16));
  }
  const t0 = performance.now();
  await window.poselab.seekVideo(targets[targets.length - 1]);
  return performance.now() - t0;
}"""
STEP_JS = """async (key) => {
  const t0 = performance.now();
  window.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
  await window.poselab.framePainted();
  return performance.now() - t0;
}"""


def make_frames(root: Path, n: int, size=(1280, 1024), video: Path | None = None) -> Path:
    """A project with n camera-like frames (smooth arena, sensor noise, a moving blob)."""
    w, h = size
    rng = np.random.default_rng(0)
    folder = root / "labeled-data" / "cam1"
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 60 * np.sin(xx / 240) * np.cos(yy / 310)
    for i in range(n):
        img = base + rng.normal(0, 4, (h, w)).astype(np.float32)
        cx, cy = 200 + 20 * i, 300 + 10 * i
        img -= 70 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 60.0 ** 2))
        gray = np.clip(img, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i:04d}.png"), cv2.merge([gray, gray, gray]))
    config = root / "config.yaml"
    sets = f"video_sets:\n  {video}:\n    crop: 0, 640, 0, 480\n" if video else ""
    config.write_text("Task: bench\nscorer: bench\ndate: Jan01\nbodyparts:\n- snout\n- leftear\n"
                      "- rightear\n- tailbase\nskeleton:\n- [snout, leftear]\n- [snout, rightear]\n"
                      f"colormap: rainbow\n{sets}", encoding="utf-8")
    return config


def stats(values: list[float]) -> dict:
    a = np.asarray(values)
    return {"median": round(float(np.median(a)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "max": round(float(a.max()), 1), "n": len(a)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=72)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--video", type=Path, default=OPENFIELD_VIDEO,
                        help="video for the scrubbing figures (default: openfield m3v1mp4.mp4)")
    parser.add_argument("--no-video", action="store_true", help="skip the video figures")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    video = None if args.no_video else args.video.resolve()
    if video is not None and not video.is_file():
        print(f"{video}: not found; skipping the video figures (--video PATH)")
        video = None
    with tempfile.TemporaryDirectory() as tmp:
        config = make_frames(Path(tmp) / "proj", args.frames, video=video)
        png_mb = np.mean([p.stat().st_size for p in config.parent.rglob("*.png")]) / 1e6
        proc = subprocess.Popen([sys.executable, "-m", "poselab", "label", str(config),
                                 "--port", "0", "--no-browser"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = ""
            while "http://" not in line:
                line = proc.stdout.readline()
                if not line and proc.poll() is not None:
                    raise SystemExit("poselab label did not start")
            url = re.search(r"http://\S+", line).group(0)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                            args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                for _ in range(100):
                    try:
                        page.goto(url)
                        break
                    except Exception:  # noqa: BLE001 - server still starting
                        time.sleep(0.05)
                while not page.evaluate("window.poselab && window.poselab.state().painted"):
                    time.sleep(0.02)
                result = run(page, config, args.steps, png_mb, browser.version)
                if video is not None:
                    result["video"] = run_video(page, args.steps)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(result))


def run(page, config: Path, steps: int, png_mb: float, chromium: str) -> dict:
    from poselab.io.labels import read_labels

    def step(key: str) -> float:
        return page.evaluate(STEP_JS, key)

    for _ in range(3):  # warm-up
        step("d")
        time.sleep(0.4)
    after_labeling = []
    for _ in range(steps):
        after_labeling.append(step("d"))
        time.sleep(0.4)
    rapid = [step("d") for _ in range(10)]  # holding D: unvisited frames, no idle time
    time.sleep(0.5)
    jumps = []
    n = page.evaluate("window.poselab.state().n_frames")
    for target in range(3 + steps + 10 + 6, n + 1, 4):  # 1-based, never shown nor prefetched
        page.keyboard.press("g")
        page.fill("#goto-input", str(target))
        jumps.append(page.evaluate("""async () => {
          const t0 = performance.now();
          document.getElementById('goto-form').requestSubmit();
          await window.poselab.framePainted();
          return performance.now() - t0; }"""))
        assert page.evaluate("window.poselab.state().frame_index") == target - 1
        time.sleep(0.3)
    print(f"next-frame paint after labeling (ms): {stats(after_labeling)}")
    print(f"next-frame paint, rapid stepping over new frames (ms): {stats(rapid)}")
    print(f"jump to an unprefetched frame (ms): {stats(jumps)}")

    folder = config.parent / "labeled-data" / "cam1"
    h5, csv = folder / "CollectedData_bench.h5", folder / "CollectedData_bench.csv"
    page.keyboard.press("m")  # quick mode: every click moves the same bodypart
    latencies = []
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = rng.uniform([100, 100], [1100, 900])
        cx, cy = page.evaluate("([x, y]) => window.poselab.imageToClient(x, y)", [x, y])
        s = page.evaluate("window.poselab.state()")
        frame, bp = s["frame_name"], s["active_bodypart"]
        t0 = time.perf_counter()
        page.mouse.click(cx, cy)
        want = page.evaluate("window.poselab.state().points")[bp]
        stamps = {p: p.stat().st_mtime_ns if p.exists() else 0 for p in (h5, csv)}
        while True:
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"autosave: {bp} on {frame} not on disk after 10 s ({want})")
            if all(p.exists() and p.stat().st_mtime_ns != stamps[p] for p in (h5, csv)):
                try:
                    got = [read_labels(p).loc[("labeled-data", "cam1", frame)]
                           [("bench", bp, "x")] for p in (h5, csv)]
                    if got == [want[0], want[0]]:
                        break
                except Exception:  # noqa: BLE001 - caught between the two renames
                    pass
                stamps = {p: p.stat().st_mtime_ns for p in (h5, csv)}
            time.sleep(0.002)
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.2)
    print(f"autosave latency, click -> .h5 and .csv on disk (ms): {stats(latencies)}")
    return {
        "bench": "labeler", "frame_size": "1280x1024", "png_mb": round(png_mb, 2),
        "paint_after_labeling_ms": stats(after_labeling), "paint_rapid_ms": stats(rapid),
        "jump_unprefetched_ms": stats(jumps), "autosave_ms": stats(latencies),
        "targets": {"paint_ms": 150, "autosave_ms": 1000}, "chromium": chromium,
        "machine": machine(),
    }


def run_video(page, seeks: int) -> dict:
    """Seek-to-painted-frame times in the page's video mode (see the module docstring)."""
    t0 = time.perf_counter()
    page.click("#videos li[data-video='0']")
    while not page.evaluate("(s => s.video && s.painted)(window.poselab.state())"):
        time.sleep(0.01)
    opened = (time.perf_counter() - t0) * 1000
    n = page.evaluate("window.poselab.state().video.n_frames")
    rng = np.random.default_rng(2)
    targets = [int(t) for t in rng.choice(np.arange(50, n - 50), seeks + 12, replace=False)]
    random_seeks = []
    for t in targets[:seeks]:
        random_seeks.append(page.evaluate(SEEK_JS, t))
        assert page.evaluate("window.poselab.state().video.index") == t
        time.sleep(0.2)  # a person looks at the frame
    forward = [page.evaluate(STEP_JS, "d") for _ in range(20)]  # holding D
    time.sleep(0.3)
    backward = [page.evaluate(STEP_JS, "a") for _ in range(20)]  # holding A
    time.sleep(0.3)
    scrubs = []
    for t in targets[seeks:]:  # a 10-frame-per-step drag ending on t
        path = [max(0, t - 10 * k) for k in range(12, -1, -1)]
        scrubs.append(page.evaluate(SCRUB_JS, path))
        time.sleep(0.3)
    page.keyboard.press("Escape")
    print(f"video: open (count frames once) {opened:.0f} ms, {n} frames")
    print(f"video: random seek -> painted frame (ms): {stats(random_seeks)}")
    print(f"video: step forward (D) -> painted (ms): {stats(forward)}")
    print(f"video: step backward (A) -> painted (ms): {stats(backward)}")
    print(f"video: scrub, last seek -> its frame painted (ms): {stats(scrubs)}")
    return {"file": "m3v1mp4.mp4 (640x480)", "n_frames": n, "open_ms": round(opened),
            "seek_ms": stats(random_seeks), "step_forward_ms": stats(forward),
            "step_backward_ms": stats(backward), "scrub_ms": stats(scrubs),
            "target_seek_ms": 150}


def machine() -> str:
    """CPU model and core count, e.g. 'AMD EPYC x2'."""
    import os

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} x{os.cpu_count()}"


if __name__ == "__main__":
    main()
