"""Smoothing and ensembles against ground truth in every frame, plus jumps on openfield.

Synthetic part: a training video (seed 1) and a test video (seed 2) of poselab's synthetic
mouse with occluders drifting over it, snout-coloured spots on the floor and pixel noise
(`poselab.io.synthetic.Disturbances`), so a single model errs in some frames. Every 10th
frame of the training video is labeled from its ground truth; M members (demo preset, seeds
0..M-1, short budgets) are trained through the Python API, each analyzes the whole test
video, and these are scored against its ground truth in every frame, side by side:

- raw single model (member 0), its median (window 5) and Savitzky-Golay (window 7, order 3)
  filters from poselab.analysis.postprocess (pcutoff 0: they see every point, as the others),
- Kalman (constant velocity + RTS smoother, poselab.analysis.smoothing) on member 0, with
  and without its outlier re-weighting (--iterations 0),
- the ensemble mean (poselab.analysis.ensemble), Kalman on the ensemble (variance sidecar),
- the ensemble-kalman-smoother package (EKS) on the members, when `--eks-python` names a
  Python that has it (it pins jax and opencv-contrib, so it lives in its own venv).

Figures: median and p95 error (px, all frames x keypoints), frame-to-frame jitter (mean
|(p[t+1] - p[t]) - (g[t+1] - g[t])|, px) and coverage (fraction of finite points). Target:
Kalman-on-ensemble p95 >= 30% below raw, median not worse, jitter lower.

Openfield part (DeepLabCut's example, copied to --out; no ground truth): a quick model
(fastest_lite0, --openfield-minutes), the whole 2,330-frame video analyzed, and the number of
jumps > 20 px between consecutive frames before and after smoothing.

Re-running reuses trained runs and analyses under --out. Prints a table and one JSON line,
and writes the comparison plot (--plot).

    python benchmarks/bench_smoothing.py [--out /tmp/bench-smoothing] [--members 3]
        [--epochs 60] [--frames 1800] [--eks-python /tmp/eks-venv/bin/python]
        [--openfield-minutes 5] [--no-openfield] [--plot benchmarks/smoothing.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.analysis.analyze import analyze_videos
from poselab.demo import DEMO_DATE, label_from_truth
from poselab.io.predictions import predictions_arrays, read_predictions, write_predictions
from poselab.io.project import create_project
from poselab.io.synthetic import SYNTHETIC_BODYPARTS, Disturbances, make_synthetic_video
from poselab.pose.train_config import resolve_config
from poselab.pose.training import train

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"
SIZE = (320, 240)
DISTURB = Disturbances(noise=12.0, occluders=3, distractors=6)
EKS_SCRIPT = Path(__file__).with_name("_eks_runner.py")


# ----------------------------------------------------------------------------- data and models
def synthetic_data(out: Path, frames: int) -> tuple[Path, Path, pd.DataFrame]:
    """(project config, test video, test ground truth); reused when already there."""
    out.mkdir(parents=True, exist_ok=True)
    train_video, test_video = out / "train-mouse.mp4", out / "test-mouse.mp4"
    truth_h5 = out / "test-mouse_groundtruth.h5"
    if not truth_h5.is_file():
        train_truth = make_synthetic_video(train_video, 600, SIZE, seed=1, disturb=DISTURB)
        write_predictions(train_truth, out / "train-mouse_groundtruth.h5")
        truth = make_synthetic_video(test_video, frames, SIZE, seed=2, disturb=DISTURB)
        write_predictions(truth, truth_h5)
    config = out / f"smooth-bench-{DEMO_DATE.isoformat()}" / "config.yaml"
    if not config.is_file():
        config = create_project("smooth", "bench", [train_video], list(SYNTHETIC_BODYPARTS),
                                working_dir=out, date=DEMO_DATE)
        train_truth = pd.read_hdf(out / "train-mouse_groundtruth.h5", "df_with_missing")
        label_from_truth(config, train_video, train_truth, list(range(0, 600, 10)))
    return config, test_video, pd.read_hdf(truth_h5, "df_with_missing")


def trained_member(config: Path, seed: int, epochs: int, preset: str = "demo",
                   minutes: float | None = None) -> tuple[Path, float]:
    """Run dir of member `seed` (trained now unless a finished one is there) and minutes."""
    run = config.parent / "models" / f"member{seed}"
    done = run / "bench-finished.json"
    if done.is_file():
        return run, json.loads(done.read_text())["minutes"]
    if run.is_dir():
        shutil.rmtree(run)  # an interrupted run: start it again
    cfg = resolve_config(preset, {"epochs": epochs, "seed": seed, "max_minutes": minutes})
    start = time.monotonic()
    train(config, cfg, name=run.name, progress=False)
    minutes = (time.monotonic() - start) / 60
    done.write_text(json.dumps({"minutes": round(minutes, 1)}))
    return run, minutes


def epochs_trained(run: Path) -> int:
    """Epochs in the run's metrics.csv (a time budget may stop a run early)."""
    return len(pd.read_csv(run / "metrics.csv"))


def analyzed(run: Path, video: Path, dest: Path) -> Path:
    return analyze_videos(run, [video], dest=dest, batch_size=16)[0]


# ----------------------------------------------------------------------------- metrics
def metrics(xy: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Median / p95 error, jitter and coverage of xy (N, K, 2) against truth (N, K, 2)."""
    err = np.linalg.norm(xy - truth, axis=-1)  # (N, K)
    finite = np.isfinite(err)
    jitter = np.linalg.norm(np.diff(xy, axis=0) - np.diff(truth, axis=0), axis=-1)
    return {"median_px": float(np.median(err[finite])),
            "p95_px": float(np.percentile(err[finite], 95)),
            "jitter_px": float(np.nanmean(jitter)),
            "coverage": float(finite.mean())}


def jumps(xy: np.ndarray, px: float = 20.0) -> int:
    """Keypoint moves of more than `px` between consecutive frames (NaN steps do not count)."""
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)
    return int(np.sum(step > px))


def run_eks(python: str, members: list[Path], out: Path) -> tuple[np.ndarray | None, str]:
    """EKS (ensemble-kalman-smoother) on the members' files, in its own Python; (xy, note)."""
    dest = out / "eks.npy"
    csvs = []  # EKS reads DeepLabCut CSVs (its venv has no PyTables)
    for i, h5 in enumerate(members):
        csvs.append(out / "eks-input" / f"member{i}.csv")
        csvs[-1].parent.mkdir(parents=True, exist_ok=True)
        read_predictions(h5).to_csv(csvs[-1])
    cmd = [python, str(EKS_SCRIPT), str(dest), *map(str, csvs)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"EKS failed: {proc.stderr.strip().splitlines()[-1:]}"
    return np.load(dest), f"EKS {proc.stdout.strip()} ({time.monotonic() - start:.1f} s)"


# ----------------------------------------------------------------------------- the comparison
def compare(member_h5: list[Path], truth_df: pd.DataFrame, out: Path, eks_python: str | None
            ) -> tuple[dict[str, dict], dict[str, np.ndarray], dict]:
    from poselab.analysis.ensemble import combine_prediction_files
    from poselab.analysis.postprocess import filter_frame
    from poselab.analysis.smoothing import smooth_predictions

    truth, _, _ = predictions_arrays(truth_df)
    raw_df = read_predictions(member_h5[0])
    tracks: dict[str, np.ndarray] = {"raw single model": predictions_arrays(raw_df)[0]}
    for name, method, window in (("median filter (5)", "median", 5),
                                 ("Savitzky-Golay (7, 3)", "savgol", 7)):
        tracks[name] = predictions_arrays(filter_frame(raw_df, method, window, 3, 0.0))[0]
    timing = {}
    start = time.monotonic()
    single = smooth_predictions(member_h5[0], dest=out / "kalman-single")
    timing["kalman_single_s"] = time.monotonic() - start
    tracks["Kalman, single model"] = predictions_arrays(read_predictions(single))[0]
    plain = smooth_predictions(member_h5[0], dest=out / "kalman-plain", iterations=0)
    tracks["Kalman, single, no re-weighting"] = predictions_arrays(read_predictions(plain))[0]
    for i, h5 in enumerate(member_h5[1:], start=1):
        tracks[f"raw member {i} (for reference)"] = predictions_arrays(read_predictions(h5))[0]
    if len(member_h5) > 1:
        ens_h5, _ = combine_prediction_files(member_h5, out / "ensemble" / "test-mouse_ens.h5")
        tracks[f"ensemble mean ({len(member_h5)})"] = predictions_arrays(
            read_predictions(ens_h5))[0]
        start = time.monotonic()
        smoothed = smooth_predictions(ens_h5)
        timing["kalman_ensemble_s"] = time.monotonic() - start
        tracks[f"Kalman, ensemble ({len(member_h5)})"] = predictions_arrays(
            read_predictions(smoothed))[0]
        if eks_python:
            xy, note = run_eks(eks_python, member_h5, out)
            timing["eks"] = note
            if xy is not None:
                tracks[f"EKS package, ensemble ({len(member_h5)})"] = xy
    return {name: metrics(xy, truth) for name, xy in tracks.items()}, tracks, timing


def plot(results: dict, tracks: dict, truth: np.ndarray, path: Path, openfield: dict | None
         ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels, ratios = (3, [1.1, 1.6, 1]) if openfield else (2, [1.1, 1.6])
    fig, axes = plt.subplots(1, panels, figsize=(15 if openfield else 13, 4.2),
                             gridspec_kw={"width_ratios": ratios})
    names = list(results)
    y = np.arange(len(names))[::-1]
    ax = axes[0]
    ax.barh(y + 0.2, [results[n]["p95_px"] for n in names], 0.4, label="p95 error")
    ax.barh(y - 0.2, [results[n]["median_px"] for n in names], 0.4, label="median error")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("error vs ground truth (px)")
    ax.legend(fontsize=8)
    ax.set_title("synthetic mouse, every frame", fontsize=10)
    # the snout's x around the frame where the raw model errs most
    err = np.linalg.norm(tracks[names[0]][:, 0] - truth[:, 0], axis=-1)
    centre = int(np.nanargmax(err))
    lo, hi = max(0, centre - 60), min(len(truth), centre + 60)
    t = np.arange(lo, hi)
    ax = axes[1]
    ax.plot(t, truth[lo:hi, 0, 0], "k-", lw=2.5, alpha=0.35, label="ground truth")
    low, high = truth[lo:hi, 0, 0].min() - 25, truth[lo:hi, 0, 0].max() + 25
    raw = tracks[names[0]][lo:hi, 0, 0]
    ax.plot(t, np.clip(raw, low, high), ".", ms=4, label=f"{names[0]} (clipped to the axes)")
    for n in names:
        if n.startswith(("Kalman, single model", "Kalman, ensemble", "EKS")):
            ax.plot(t, tracks[n][lo:hi, 0, 0], "-", lw=1.2, label=n)
    ax.set_ylim(low - 2, high + 2)
    if openfield:
        ax.legend(fontsize=7, loc="lower left")
    else:  # the free space right of the plot
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_xlabel("frame")
    ax.set_ylabel("snout x (px)")
    ax.set_title("the raw model's worst stretch", fontsize=10)
    if openfield:
        ax = axes[2]
        labels = list(openfield["jumps"])
        ax.bar(range(len(labels)), [openfield["jumps"][n] for n in labels])
        ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8, ha="right")
        ax.set_ylabel("jumps > 20 px between frames")
        ax.set_title(f"openfield video ({openfield['frames']} frames, no ground truth)",
                     fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hour_timing(out: Path) -> dict:
    """Seconds `smooth_predictions` takes on 108,000 frames x 17 keypoints (one hour)."""
    from poselab.analysis.smoothing import smooth_predictions
    from poselab.io.predictions import predictions_frame

    rng = np.random.default_rng(0)
    n, k = 108_000, 17
    xy = 320 + np.cumsum(rng.normal(scale=0.3, size=(n, k, 2)), axis=0)
    xy += rng.normal(scale=1.5, size=xy.shape)
    lik = rng.beta(8, 1, size=(n, k))
    (out / "hour").mkdir(parents=True, exist_ok=True)
    (h5,) = write_predictions(predictions_frame(xy, lik, [f"p{i}" for i in range(k)], "s"),
                              out / "hour" / "hour.h5")
    timing = {}
    for iterations in (0, 2):
        start = time.monotonic()
        smooth_predictions(h5, iterations=iterations)
        timing[f"iterations_{iterations}_s"] = round(time.monotonic() - start, 1)
    return timing


def openfield_part(data: Path, out: Path, minutes: float, prepare_only: bool) -> dict | None:
    project = out / "openfield"
    if not (project / "config.yaml").is_file():
        shutil.copytree(data, project)
        for p in [project, *project.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    config = project / "config.yaml"
    run, train_min = trained_member(config, 0, 300, "fastest_lite0", minutes)
    video = next((project / "videos").glob("*.mp4"))
    start = time.monotonic()
    raw_h5 = analyzed(run, video, out / "openfield-analysis")
    analyze_min = (time.monotonic() - start) / 60
    if prepare_only:
        return None
    from poselab.analysis.postprocess import filter_frame
    from poselab.analysis.smoothing import smooth_predictions

    raw_df = read_predictions(raw_h5)
    start = time.monotonic()
    smoothed = smooth_predictions(raw_h5)
    smooth_s = time.monotonic() - start
    raw = predictions_arrays(raw_df)[0]
    result = {"frames": len(raw), "train_min": round(train_min, 1),
              "analyze_min": round(analyze_min, 1), "kalman_s": round(smooth_s, 2), "jumps": {
                  "raw": jumps(raw),
                  "median filter (5)": jumps(predictions_arrays(
                      filter_frame(raw_df, "median", 5, 3, 0.0))[0]),
                  "Kalman": jumps(predictions_arrays(read_predictions(smoothed))[0])}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-smoothing"))
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--frames", type=int, default=1800)
    parser.add_argument("--eks-python", default=None)
    parser.add_argument("--openfield", type=Path, default=OPENFIELD)
    parser.add_argument("--openfield-minutes", type=float, default=5.0)
    parser.add_argument("--no-openfield", action="store_true")
    parser.add_argument("--no-hour", action="store_true", help="skip timing a one-hour file")
    parser.add_argument("--prepare-only", action="store_true",
                        help="train and analyze, then stop")
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "smoothing.png")
    args = parser.parse_args()

    start = time.monotonic()
    config, video, truth_df = synthetic_data(args.out / "synthetic", args.frames)
    members, train_minutes, epochs = [], [], []
    for seed in range(args.members):
        run, minutes = trained_member(config, seed, args.epochs)
        train_minutes.append(round(minutes, 1))
        epochs.append(epochs_trained(run))
        members.append(analyzed(run, video, args.out / "synthetic" / "analysis" / run.name))
        print(f"member {seed}: {run} ({minutes:.1f} min training)", flush=True)
    openfield = None
    if not args.no_openfield and (args.openfield / "config.yaml").is_file():
        openfield = openfield_part(args.openfield, args.out, args.openfield_minutes,
                                   args.prepare_only)
    if args.prepare_only:
        return
    results, tracks, timing = compare(members, truth_df, args.out, args.eks_python)
    if not args.no_hour:
        timing["one_hour_108000x17"] = hour_timing(args.out)
    truth = predictions_arrays(truth_df)[0]
    print(f"\n{len(truth)} test frames x {truth.shape[1]} keypoints, {args.members} members "
          f"(epochs {epochs}, training minutes {train_minutes})")
    print(f"{'method':34s} {'median px':>9s} {'p95 px':>8s} {'jitter px':>9s} {'coverage':>8s}")
    for name, m in results.items():
        print(f"{name:34s} {m['median_px']:9.2f} {m['p95_px']:8.2f} {m['jitter_px']:9.2f} "
              f"{m['coverage']:8.3f}")
    raw = results["raw single model"]
    ens = next((m for n, m in results.items() if n.startswith("Kalman, ensemble")), None)
    verdict = None
    if ens:
        verdict = {"p95_reduction": round(1 - ens["p95_px"] / raw["p95_px"], 3),
                   "median_not_worse": ens["median_px"] <= raw["median_px"],
                   "jitter_lower": ens["jitter_px"] < raw["jitter_px"]}
        print(f"Kalman on the ensemble vs raw: p95 {100 * verdict['p95_reduction']:.0f}% lower "
              f"(target >= 30%), median not worse: {verdict['median_not_worse']}, jitter "
              f"lower: {verdict['jitter_lower']}")
    print(f"timing: {timing}")
    if openfield:
        print(f"openfield ({openfield['frames']} frames): jumps > 20 px {openfield['jumps']}; "
              f"training {openfield['train_min']} min, analysis {openfield['analyze_min']} min, "
              f"Kalman {openfield['kalman_s']} s")
    plot(results, tracks, truth, args.plot, openfield)
    print(f"plot: {args.plot}")
    print(json.dumps({"bench": "smoothing", "results": results, "verdict": verdict,
                      "openfield": openfield, "timing": timing, "members": args.members,
                      "epochs": epochs, "training_minutes": train_minutes,
                      "minutes": round((time.monotonic() - start) / 60, 1)}, default=str))


if __name__ == "__main__":
    sys.exit(main())
