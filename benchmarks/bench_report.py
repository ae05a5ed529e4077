"""Quality report of a one-hour video: build time, page size and load time in real Chromium.

Generates synthetic predictions for 108,000 frames (one hour at 30 frames/s) x 17 keypoints
(smooth random paths, beta-distributed likelihoods, 0.2% glitches of 60 px) with a 16-segment
skeleton, writes the report with `poselab.analysis.report.write_report`, opens it in
/usr/bin/chromium (headless, through Playwright) --loads times, and prints the build seconds,
the HTML size, the load times (navigation start to the load event, and the wall time of
`page.goto`), console errors, requests other than the page, and one JSON line. Target: the
page loads in under 2 s; the script exits 1 when the median load is slower.

    python benchmarks/bench_report.py [--frames 108000] [--keypoints 17] [--loads 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from poselab.analysis.report import write_report
from poselab.io.predictions import predictions_frame, write_predictions

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def make_predictions(folder: Path, n: int, k: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    parts = [f"part{i}" for i in range(k)]
    xy = 320 + np.cumsum(rng.normal(scale=0.3, size=(n, k, 2)), axis=0)
    glitch = rng.random((n, k)) < 0.002
    xy[glitch] += 60
    lik = rng.beta(8, 1, size=(n, k))
    (h5,) = write_predictions(predictions_frame(xy, lik, parts, "DLC_hour"), folder / "hour.h5")
    config = folder / "config.yaml"
    skeleton = "".join(f"- [part{i}, part{i + 1}]\n" for i in range(k - 1))
    config.write_text(f"Task: t\nscorer: s\nbodyparts: [{', '.join(parts)}]\nskeleton:\n"
                      f"{skeleton}pcutoff: 0.6\n", encoding="utf-8")
    return h5, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=108_000)
    parser.add_argument("--keypoints", type=int, default=17)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        h5, config = make_predictions(Path(tmp), args.frames, args.keypoints)
        start = time.perf_counter()
        html = write_report(h5, config=config)
        build = time.perf_counter() - start
        size = html.stat().st_size
        loads, walls, errors, foreign = [], [], [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for _ in range(args.loads):
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                page = context.new_page()
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.on("request", lambda r, url=html.resolve().as_uri():
                        r.url != url and foreign.append(r.url))
                start = time.perf_counter()
                page.goto(html.resolve().as_uri(), wait_until="load")
                walls.append(time.perf_counter() - start)
                loads.append(page.evaluate(
                    "() => { const t = performance.getEntriesByType('navigation')[0];"
                    " return t.loadEventEnd - t.startTime; }") / 1000)
                context.close()
            browser.close()
    load = statistics.median(loads)
    print(f"{args.frames:,} frames x {args.keypoints} keypoints: report built in {build:.2f} s, "
          f"{size / 1e3:.0f} kB")
    print(f"Chromium load (navigation to load event), median of {args.loads}: {load:.3f} s "
          f"(wall {statistics.median(walls):.3f} s); console errors {len(errors)}, "
          f"other requests {len(foreign)}")
    ok = load < 2.0 and not errors and not foreign
    print(f"target < 2 s, no errors, no requests: {'PASS' if ok else 'FAIL'}")
    print(json.dumps({"bench": "report", "frames": args.frames, "keypoints": args.keypoints,
                      "build_s": round(build, 3), "html_kb": round(size / 1e3, 1),
                      "load_s": round(load, 3), "wall_s": round(statistics.median(walls), 3),
                      "console_errors": len(errors), "other_requests": len(foreign)}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
