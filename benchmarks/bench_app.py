"""`poselab app`: how fast each page is interactive, and what the app costs training/analysis.

Makes a synthetic project (320x240 video of 300 frames, 50 labeled frames, as the demo),
starts `poselab app --no-browser` as a subprocess (as a user would) and measures:

- overhead: the same training (`poselab train`, resnet18 without pretrained weights, a few
  epochs) run from the command line and as a job of the app, alternately (CLI, app, CLI,
  app) so that a change of machine load hits both; compared on the engine's own figures in
  metrics.csv (seconds per epoch, total minutes). Likewise `poselab analyze` of the video from
  the command line and as the app's job, compared on the frames/s analysis records in its
  _meta.json. The app runs the same command in a background process under a
  pseudo-terminal, so any difference is the app's.
- pages: for each page, a fresh browser context loads URL#/<page>/<project> and the time
  from navigation start until the page has its data on screen and its controls wired
  (document.body.dataset.ready, set by static/app.js), `--repeat` times; for Label, until the
  labeler has painted its first frame (window.poselab.framePainted()). Target: <= 1 s.

Usage: python benchmarks/bench_app.py [--epochs 6] [--repeat 5]
Needs Debian's chromium at /usr/bin/chromium and playwright (pip install -e '.[dev]').
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TRAIN = ["--backbone", "resnet18", "--weights", "none", "--batch-size", "8",
         "--set", "workers=0", "--set", "augment.crop_size=[128, 128]",
         "--set", "head_width=64", "--set", "eval_train=false"]
PAGES = ["projects", "frames", "label", "train", "analyze"]


def _json(url: str, payload: dict | None = None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _wait_job(base: str, job_id: int) -> dict:
    while True:
        job = _json(f"{base}/api/jobs/{job_id}")
        if job["status"] not in ("queued", "running"):
            if job["status"] != "done":
                raise SystemExit(f"job {job['title']} {job['status']}: {job['note']}")
            return job
        time.sleep(0.5)


def _epochs(run: Path) -> tuple[float, float]:
    """(median seconds per epoch, total minutes) from the run's metrics.csv."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    seconds = [float(r["seconds"]) for r in rows]
    return statistics.median(seconds), float(rows[-1]["elapsed_minutes"])


def _poselab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "poselab", *args], check=True,
                   stdout=subprocess.DEVNULL)


def overhead(base: str, pid: str, config: Path, video: Path, epochs: int) -> dict:
    models = config.parent / "models"
    out: dict = {"train_cli": [], "train_app": [], "analyze_cli": [], "analyze_app": []}
    run = None
    for i, way in enumerate(["cli", "app", "cli", "app"]):
        if way == "cli":
            name = f"cli-{i}"
            _poselab("train", str(config), "--name", name, "--epochs", str(epochs), *TRAIN)
        else:
            job = _json(f"{base}/api/projects/{pid}/train", {
                "backbone": "resnet18", "weights": "none", "epochs": epochs,
                "sets": "\n".join(TRAIN[TRAIN.index("--set") + 1::2] + ["batch_size=8"])})
            _wait_job(base, job["id"])
            name = job["meta"]["run"]
        per_epoch, minutes = _epochs(models / name)
        out[f"train_{way}"].append({"run": name, "s_per_epoch": per_epoch, "minutes": minutes})
        print(f"  train via {way}: {per_epoch:.2f} s/epoch, {minutes:.2f} min", flush=True)
        run = models / name
    for way in ["cli", "app", "cli", "app"]:
        if way == "cli":
            _poselab("analyze", str(run), str(video), "--overwrite")
        else:
            (job,) = _json(f"{base}/api/projects/{pid}/analyze",
                           {"run": run.name, "videos": [0], "report": False})
            _wait_job(base, job["id"])
        meta = next(video.parent.glob(f"{video.stem}*{run.name}_meta.json"))
        fps = json.loads(meta.read_text())["frames_per_second"]
        out[f"analyze_{way}"].append(fps)
        print(f"  analyze via {way}: {fps:.1f} frames/s", flush=True)
    return out


def pages(url: str, pid: str, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {p: [] for p in PAGES}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(repeat):
            for page_name in PAGES:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                if page_name == "label":
                    page.goto(f"{url}label/{pid}/")
                    _poll(page, "!!window.poselab")
                    ms = page.evaluate("window.poselab.framePainted().then(() =>"
                                       " performance.now())")
                else:
                    page.goto(f"{url}#/{page_name}/{pid}")
                    _poll(page, f"document.body.dataset.ready === '{page_name}'")
                    ms = float(page.evaluate("document.body.dataset.readyAt"))
                times[page_name].append(ms / 1000)
                context.close()
        browser.close()
    return times


def _poll(page, expr: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expr):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {expr}")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from poselab.demo import make_synthetic_project

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        root = Path(tmp)
        config, _, _ = make_synthetic_project(root / "lab", "bench", n_frames=300,
                                              size=(320, 240), label_every=6)
        project = config.parent
        video = project / "videos" / "mouse.avi"
        app = subprocess.Popen(
            [sys.executable, "-m", "poselab", "app", str(config), "--root", str(root),
             "--no-browser", "--port", "0", "--state-dir", str(root / "state")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = app.stdout.readline()
            url = re.search(r"(http://\S+/)", line).group(1)
            base = url.rstrip("/")
            pid = _json(f"{base}/api/state")["projects"][0]["id"]
            result: dict = {"load_average_start": round(load, 2),
                            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
            if not args.skip_overhead:
                print(f"overhead ({args.epochs} epochs each; load average {load:.1f}):",
                      flush=True)
                result["overhead"] = overhead(base, pid, config, video, args.epochs)
            else:  # the pages need a run and an analysis to show
                _poselab("train", str(config), "--name", "r", "--epochs", "1", *TRAIN)
                _poselab("analyze", str(project / "models" / "r"), str(video))
            times = pages(url, pid, args.repeat)
        finally:
            app.terminate()
            app.wait(timeout=60)
    result["pages_s"] = {p: {"median": round(statistics.median(t), 3), "max": round(max(t), 3)}
                         for p, t in times.items()}
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    print("\npage        median s   max s   (target <= 1 s)")
    for p, t in result["pages_s"].items():
        print(f"{p:<10} {t['median']:>9.3f} {t['max']:>7.3f}")
    if "overhead" in result:
        o = result["overhead"]
        cli = statistics.mean(r["s_per_epoch"] for r in o["train_cli"])
        via = statistics.mean(r["s_per_epoch"] for r in o["train_app"])
        fps_cli, fps_app = statistics.mean(o["analyze_cli"]), statistics.mean(o["analyze_app"])
        result["train_s_per_epoch"] = {"cli": round(cli, 3), "app": round(via, 3),
                                       "app_vs_cli": round(via / cli - 1, 3)}
        result["analyze_fps"] = {"cli": round(fps_cli, 2), "app": round(fps_app, 2),
                                 "app_vs_cli": round(fps_app / fps_cli - 1, 3)}
        print(f"\ntraining s/epoch: CLI {cli:.2f}, app {via:.2f} ({via / cli - 1:+.1%})")
        print(f"analysis frames/s: CLI {fps_cli:.1f}, app {fps_app:.1f} "
              f"({fps_app / fps_cli - 1:+.1%})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
