"""Accuracy within a CPU time budget on DeepLabCut's openfield example, never chosen on test.

Trains on the seeded 50% train / 50% test split of the 116 labeled openfield frames (in a
temporary copy of the project; ../shared/data stays untouched) with a preset under a
wall-clock budget (`--max-minutes`: the schedule is planned to fit it), for each seed and
each budget, then evaluates the model the run's rule selects (the final checkpoint, or the
best on validation with --val-fraction) on the test split: the test split chooses nothing.
Prints one line per run, a table, a JSON line, and with --plot a PNG of test error against
minutes, one line per seed.

Reference points: human labeling variability on this arena 2.69 px; DeepLabCut 3's ImageNet
ResNet-50 2.01 px on the same split after 200 epochs on a GPU (DeepLabCut PR 2613).

    python benchmarks/bench_time_to_accuracy.py [--preset cpu] [--minutes 10,30,60]
        [--seeds 0,1,2] [--set key=value ...] [--plot benchmarks/accuracy-vs-minutes.png]
        [--keep DIR] [--replot OUTPUT_OF_AN_EARLIER_RUN --plot PNG]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from poselab.pose.evaluation import evaluate
from poselab.pose.train_config import resolve_config
from poselab.pose.training import train

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"
ANCHORS = {"DeepLabCut 3 ResNet-50 (GPU, 200 epochs)": 2.01, "human variability": 2.69}


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.mp4", "*_labeled", "models"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest / "config.yaml"


def one_run(data: Path, work: Path, preset: str, seed: int, minutes: float,
            assignments: list[str]) -> dict:
    config = copy_project(data, work / f"openfield-s{seed}-{minutes:g}min")
    cfg = resolve_config(preset, {"train_fraction": 0.5, "seed": seed,
                                  "max_minutes": minutes}, assignments)
    start = time.monotonic()
    run = train(config, cfg, name="run", progress=False)
    wall = (time.monotonic() - start) / 60
    result = evaluate(run)
    test = result["test"]
    row = {"seed": seed, "budget_minutes": minutes, "wall_minutes": round(wall, 2),
           "epochs": result["epoch"] + 1, "selection": result["selection"],
           "test_px": test["mean_px_error"], "test_rmse": test["rmse"], "test_pck5": test["pck5"],
           "test_kept_pcutoff": test["kept_pcutoff"], "ece": test["calibration"]["ece"],
           "auroc": test["calibration"].get("auroc"), "run": str(run)}
    print(f"seed {seed}, {minutes:g} min budget: test mean error {row['test_px']:.2f} px "
          f"(RMSE {row['test_rmse']:.2f}, PCK@5 {row['test_pck5']:.1%}) after {row['epochs']} "
          f"epochs, {wall:.1f} min wall; {result['selection']}", flush=True)
    return row


def plot(rows: list[dict], out: Path, preset: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, seed in enumerate(sorted({r["seed"] for r in rows})):
        colour = f"C{i}"
        mine = sorted((r for r in rows if r["seed"] == seed), key=lambda r: r["budget_minutes"])
        ax.plot([r["budget_minutes"] for r in mine], [r["test_px"] for r in mine], "o-",
                color=colour, label=f"seed {seed}: finished model per budget")
        # the test error logged while the longest run trained (a model mid-schedule, with
        # its lr still high: not what a shorter budget gives; drawn only to show the shape)
        metrics = Path(mine[-1]["run"]) / "metrics.csv"
        if metrics.exists():
            import pandas as pd

            m = pd.read_csv(metrics).dropna(subset=["test_px_error"])
            ax.plot(m["elapsed_minutes"], m["test_px_error"], ":", color=colour, lw=1,
                    label=f"seed {seed}: logged during that run (mid-schedule)")
    ax.set_ylim(1.5, 4.0)
    for name, value in ANCHORS.items():
        ax.axhline(value, ls="--", lw=1, color="grey")
        ax.text(ax.get_xlim()[0], value, f" {name} {value} px", va="bottom", fontsize=8,
                color="dimgrey")
    ax.axhline(1.90, ls=":", color="tab:red", lw=1)
    ax.set(xlabel="training budget on 2 CPU cores (minutes)", ylabel="test mean error (px)",
           title=f"openfield, 50% split, preset {preset}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=OPENFIELD)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--minutes", default="30", help="comma-separated budgets")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", dest="assignments", action="append", default=[])
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the project copies and runs here")
    parser.add_argument("--replot", type=Path, help="redraw --plot from an earlier run's "
                        "output file (runs kept with --keep add their logged curves)")
    args = parser.parse_args()
    if args.replot:  # the rows of an earlier run's JSON line (its last line of output)
        rows = json.loads(args.replot.read_text().strip().splitlines()[-1])["rows"]
        plot(rows, args.plot, args.preset)
        print(f"plot: {args.plot}")
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="poselab-tta-"))
    budgets = [float(m) for m in args.minutes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [one_run(args.data, work, args.preset, seed, minutes, args.assignments)
            for minutes in budgets for seed in seeds]
    print("\nbudget  seed  epochs  test px  RMSE  PCK@5  ECE    AUROC")
    for r in rows:
        print(f"{r['budget_minutes']:6g}  {r['seed']:4d}  {r['epochs']:6d}  {r['test_px']:7.2f}  "
              f"{r['test_rmse']:4.2f}  {r['test_pck5']:5.1%}  {r['ece']:.3f}  "
              f"{(r['auroc'] or float('nan')):.3f}")
    for minutes in budgets:
        errors = [r["test_px"] for r in rows if r["budget_minutes"] == minutes]
        print(f"{minutes:g} min: mean over seeds {sum(errors) / len(errors):.2f} px "
              f"(target <= 1.90, stretch 1.75)")
    if args.plot:
        plot(rows, args.plot, args.preset)
        print(f"plot: {args.plot}")
    print(json.dumps({"benchmark": "time_to_accuracy", "preset": args.preset,
                      "assignments": args.assignments, "rows": rows}))


if __name__ == "__main__":
    main()
