"""Robustness benchmark (issue 22): one training recipe on datasets that look nothing alike.

Datasets: DeepLabCut's openfield example (a temporary copy; seeded 50% train / 50% test)
and every variant of poselab.io.synthetic_suite (rendered into a temporary folder with the
benchmark's seed; seeded 70% / 30%): many keypoints with thin parts, two views in one
frame, a small animal in a 1280x1024 frame, few labels, 10% of keypoints unlabeled, low
contrast, a light animal on a dark floor, motion blur. Each is trained through the Python
API (poselab.pose.training.train, the preset or `poselab train`'s defaults, a per-dataset
time budget) and graded by poselab.pose.evaluation.evaluate with its default checkpoint
rule (best on a validation split, else the final checkpoint: never chosen on test).

Printed per dataset: frames, keypoints, image size, test mean pixel error, PCK@5, the
share of test keypoints predicted above pcutoff (kept), the error against the exact ground
truth on every test keypoint (synthetic only; it includes keypoints left unlabeled on
purpose), optimizer steps run, the first step at which the logged test error fell below
20 px (from metrics.csv: epochs x batches per epoch), minutes, and whether the issue's
target (<= 3 px on every synthetic variant) is met; then one JSON line.

    python benchmarks/bench_robustness.py [--preset NAME] [--set key=value ...]
        [--minutes 30] [--seed 0] [--variants openfield,many_keypoints,...] [--frames N]
        [--keep DIR]
    python benchmarks/bench_robustness.py --contact-sheet benchmarks/robustness-variants.png
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.synthetic_suite import (
    SUITE_VARIANTS,
    load_ground_truth,
    make_suite_project,
    preview_frame,
)
from poselab.pose.train_config import default_preset

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"
DATASETS = ["openfield", *SUITE_VARIANTS]
TARGET_PX = 3.0  # the issue's target on every synthetic variant
PLATEAU_PX = 20.0  # "left the background plateau": test error first below this


def copy_openfield(dest: Path) -> Path:
    shutil.copytree(OPENFIELD, dest, ignore=shutil.ignore_patterns("*.mp4", "*_labeled"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest / "config.yaml"


def prepare(name: str, work: Path, seed: int, frames: int | None) -> tuple[Path, float]:
    """(config.yaml, train fraction) of a dataset, made under work."""
    if name == "openfield":
        if not OPENFIELD.is_dir():
            raise SystemExit(f"openfield data not found at {OPENFIELD}")
        return copy_openfield(work / "openfield"), 0.5
    return make_suite_project(name, work / "suite", seed=seed, n_frames=frames), 0.7


def batches_per_epoch(n_train: int, batch_size: int) -> int:
    """As training.py's loader: the last partial batch is dropped when there are more frames
    than one batch (one process)."""
    return n_train // batch_size if n_train > batch_size else 1


def step_figures(run: Path, batch_size: int) -> tuple[int, int | None]:
    """(optimizer steps run, first step with logged test error < PLATEAU_PX, or None)."""
    metrics = pd.read_csv(run / "metrics.csv")
    split = json.loads((run / "split.json").read_text())
    per_epoch = batches_per_epoch(len(split["train"]), batch_size)
    step_col = next((c for c in ("step", "steps") if c in metrics.columns), None)
    steps = (metrics[step_col] if step_col else (metrics["epoch"] + 1) * per_epoch).astype(int)
    below = metrics["test_px_error"].notna() & (metrics["test_px_error"] < PLATEAU_PX)
    first = int(steps[below].iloc[0]) if below.any() else None
    return int(steps.iloc[-1]), first


def truth_errors(run: Path, config: Path) -> tuple[float, float | None]:
    """Mean px error of the run's model against the exact ground truth on its test frames:
    (every keypoint, only those the labels leave out (None when there are none))."""
    from poselab.io.labels import read_labels
    from poselab.io.project import open_project
    from poselab.pose.predict import Predictor

    project = open_project(config)
    split = json.loads((run / "split.json").read_text())
    keys = [tuple(k.split("/")) for k in split["test"]]  # ("labeled-data", folder, image)
    images = np.stack([cv2.imread(str(project.root.joinpath(*k))) for k in keys])
    xy, _ = Predictor.from_dir(run).predict_frames(images)  # (B, K, 2)
    truth = load_ground_truth(config).loc[keys].to_numpy().reshape(len(keys), -1, 2)
    labels = read_labels(project.label_file(project.root / keys[0][0] / keys[0][1]))
    unlabeled = np.isnan(labels.loc[keys].to_numpy().reshape(len(keys), -1, 2)[..., 0])
    err = np.linalg.norm(xy - truth, axis=-1)  # (B, K)
    return float(err.mean()), (float(err[unlabeled].mean()) if unlabeled.any() else None)


def run_dataset(name: str, work: Path, args) -> dict:
    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project
    from poselab.pose.evaluation import evaluate
    from poselab.pose.train_config import resolve_config
    from poselab.pose.training import train

    config, fraction = prepare(name, work, args.seed, args.frames)
    project = open_project(config)
    frames = load_labeled_frames(project)
    h, w = cv2.imread(str(frames.paths[0])).shape[:2]
    cfg = resolve_config(args.preset or default_preset(), {"train_fraction": fraction,
                                                           "seed": args.seed,
                                       "max_minutes": args.minutes}, args.assignments)
    print(f"\n== {name}: {len(frames)} frames, {len(frames.bodyparts)} keypoints, {w}x{h}; "
          f"{cfg.backbone}, {cfg.epochs} epochs max, {args.minutes} min", flush=True)
    start = time.monotonic()
    run = train(config, cfg, name="robustness")
    minutes = (time.monotonic() - start) / 60
    result = evaluate(run)
    test = result["test"]
    steps, first = step_figures(run, cfg.batch_size)
    row = {"dataset": name, "frames": len(frames), "keypoints": len(frames.bodyparts),
           "size": f"{w}x{h}", "test_px": test["mean_px_error"], "pck5": test["pck5"],
           "kept_pcutoff": test["kept_pcutoff"], "truth_px": None, "hidden_px": None,
           "steps": steps, "steps_below_20px": first, "minutes": minutes,
           "selection": result.get("selection"), "run": str(run) if args.keep else None}
    if name != "openfield":
        row["truth_px"], row["hidden_px"] = truth_errors(run, config)
        row["target_met"] = bool(test["mean_px_error"] <= TARGET_PX)
    return row


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_table(rows: list[dict]) -> None:
    head = (f"{'dataset':<16}{'frames':>7}{'kp':>4}{'size':>11}{'test px':>9}{'PCK@5':>7}"
            f"{'kept':>6}{'truth px':>9}{'steps':>7}{'<20px @':>9}{'min':>6}  target")
    print("\n" + head)
    for r in rows:
        if "error" in r:
            print(f"{r['dataset']:<16}error: {r['error'][:100]}")
            continue
        target = {True: "met", False: "NOT met"}.get(r.get("target_met"), "-")
        print(f"{r['dataset']:<16}{r['frames']:>7}{r['keypoints']:>4}{r['size']:>11}"
              f"{_fmt(r['test_px'], '.2f'):>9}{_fmt(r['pck5'], '.0%'):>7}"
              f"{_fmt(r['kept_pcutoff'], '.0%'):>6}{_fmt(r['truth_px'], '.2f'):>9}"
              f"{r['steps']:>7}{_fmt(r['steps_below_20px'], 'd'):>9}"
              f"{r['minutes']:>6.1f}  {target}")


def contact_sheet(path: Path, seed: int) -> Path:
    """One frame of every variant with its keypoints: the whole frame and a zoom on the
    animal, side by side, in a grid of two columns."""
    from poselab.viz.plots import bodypart_colors, draw_keypoints

    tiles, size = [], 300
    for name in SUITE_VARIANTS:
        img, kp, names = preview_frame(name, seed)
        colors = bodypart_colors("rainbow", len(names))
        h, w = img.shape[:2]
        z = size / h
        full = draw_keypoints(cv2.resize(img, (round(w * z), size), interpolation=cv2.INTER_AREA),
                              kp * z + (z - 1) / 2, colors, radius=2)
        lo, hi = kp.min(axis=0), kp.max(axis=0)
        half = max(hi - lo) / 2 + 12
        x0, y0 = np.floor((lo + hi) / 2 - half).astype(int)
        x1, y1 = x0 + int(2 * half), y0 + int(2 * half)
        pad = cv2.copyMakeBorder(img, 200, 200, 200, 200, cv2.BORDER_CONSTANT)
        crop = pad[y0 + 200:y1 + 200, x0 + 200:x1 + 200]
        zc = size / crop.shape[0]
        zoom = draw_keypoints(cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC),
                              (kp - [x0, y0]) * zc + (zc - 1) / 2, colors, radius=3)
        tile = np.hstack([full, np.full((size, 6, 3), 255, np.uint8), zoom])
        label = f"{name}: {len(names)} kp, {w}x{h}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        tile[:th + 12, :tw + 12] //= 3  # a dark box behind the caption
        cv2.putText(tile, label, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
    width = max(t.shape[1] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 4, 4, 4, 4 + width - t.shape[1], cv2.BORDER_CONSTANT,
                                value=(255, 255, 255)) for t in tiles]
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]
    sheet = np.vstack(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet):
        raise SystemExit(f"cannot write {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None,
                        help="training preset (default: what `poselab train` uses on this "
                        "machine: cpu on a CPU)")
    parser.add_argument("--set", dest="assignments", action="append", default=[],
                        help="training option override key=value (repeatable)")
    parser.add_argument("--minutes", type=float, default=30.0, help="budget per dataset")
    parser.add_argument("--seed", type=int, default=0, help="data, split and training seed")
    parser.add_argument("--variants", default=",".join(DATASETS),
                        help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--frames", type=int, default=None,
                        help="labeled frames per synthetic variant (default: the variant's)")
    parser.add_argument("--keep", type=Path, help="make projects and runs here and keep them")
    parser.add_argument("--contact-sheet", type=Path,
                        help="only write a preview of every variant to this PNG")
    args = parser.parse_args()

    if args.contact_sheet:
        print(contact_sheet(args.contact_sheet, args.seed))
        return
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown datasets {unknown}; have {DATASETS}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="poselab-robustness-"))
    rows = []
    try:
        for name in names:
            try:
                rows.append(run_dataset(name, work / name, args))
            except PoselabError as exc:  # e.g. weights not available offline: say, go on
                print(f"error: {name}: {exc}", flush=True)
                rows.append({"dataset": name, "error": str(exc), "target_met": False})
            print_table(rows)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    synthetic = [r for r in rows if r["dataset"] != "openfield"]
    print(f"\ntarget <= {TARGET_PX} px test error on every synthetic variant: "
          + ("met" if synthetic and all(r["target_met"] for r in synthetic) else "NOT met"))
    print(json.dumps({"benchmark": "robustness", "preset": args.preset,
                      "set": args.assignments, "minutes_per_dataset": args.minutes,
                      "seed": args.seed, "frames": args.frames, "python": sys.version.split()[0],
                      "datasets": rows}))


if __name__ == "__main__":
    main()
