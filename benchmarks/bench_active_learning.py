"""Active learning with simulated labeling: `suggest` against random and k-means frames.

Protocol (per seed): start from 10 labeled frames (k-means extraction, shared by the three
arms), then each round every arm adds 10 frames, chosen by `suggest` (the previous round's
model ranks the candidates), at random, or by k-means extraction (`extract-frames`); the
"person" labels them from ground truth and a model is retrained from ImageNet weights with
a fixed number of optimizer steps (the same for every arm and round; a step budget, not
minutes, so a busy machine does not change the result). Every model is graded on a fixed
held-out test set that chooses nothing. Every training uses exactly the labeled frames
(learning_curve.prepare_subset: training's own test split is one held-out frame).

(a) synthetic: a 192x144 synthetic mouse video (poselab.io.synthetic) with two drifting
    occluders, three snout-coloured distractor spots, pixel noise, and lighting changes over
    time (dim stretches, 12% of the frames, and glare, 8%), so some frames are much harder
    than others. Keypoints hidden under an occluder are left unlabeled, as a person would,
    and are not graded. Frames 0-69 of every 100 are the pool (the project's video), frames 78-97
    (every 2nd) the test set; the gap keeps near-duplicates of test frames out of the pool.
    `suggest` runs on the project as a user would: it scans the video and writes PNGs.
(b) openfield: DeepLabCut's openfield example (116 labeled frames, ../shared/data); a seeded
    50% of the labeled frames is the pool, the other 50% the test set. `suggest` ranks the
    pool's unlabeled frames with the same scoring and diversity functions (score_frames,
    frame_features, pick_diverse), labeled frames counting as covered.

Targets (issue 18): on (a), `suggest` reaches the error random selection reaches with its
full budget using at most 60% of the labels; on (b), it is not worse than random. The
learning-curve estimate is checked too: a power law fitted to random selection's first
three rounds predicts the labels needed for random's final error; compared with the labels
it actually took.

Prints one line per trained model, tables, one JSON line; --plot writes the curves.

    python benchmarks/bench_active_learning.py [--part synthetic|openfield|both]
        [--seeds 0,1,2] [--rounds 5] [--steps 800] [--plot benchmarks/active-learning.png]
        [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from poselab.analysis.learning_curve import (
    estimate_labels,
    fit_power_law,
    grade_run,
    prepare_subset,
)
from poselab.analysis.suggest import frame_features, pick_diverse, score_frames, suggest_frames
from poselab.demo import label_from_truth
from poselab.io.frames import FRAME_NAME, extract_frames, name_digits, write_frame
from poselab.io.labels import (
    LabeledFrames,
    empty_labels,
    load_labeled_frames,
    load_project_labels,
    write_labels,
)
from poselab.io.project import create_project, open_project
from poselab.io.synthetic import (
    SYNTHETIC_BODYPARTS,
    Disturbances,
    keypoints_to_frame,
    make_scene,
    render_frame,
)
from poselab.io.video import VideoReader
from poselab.pose import run_dir
from poselab.pose.data import make_split
from poselab.pose.predict import Predictor
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train

ROOT = Path(__file__).resolve().parents[1]
OPENFIELD = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30"
ARMS = ("suggest", "random", "kmeans")
START, STEP = 10, 10
SIZE, N_FRAMES = (192, 144), 1500
ROWS: Path | None = None  # <work>/rows.jsonl, set by main

# The trainer redraws learning-curve.png after every epoch (~1 s on this machine); with 10
# labeled frames an epoch is one optimizer step, so the drawing would cost more than the
# training. The benchmark never looks at those plots: skip them.
run_dir.RunDir.plot = lambda self: None


def train_config(part: str, steps: int) -> TrainConfig:
    """The demo preset's cheap recipe (Lite0, ImageNet weights shipped offline, a narrow
    head, step lr drops), smaller crops, and a fixed number of optimizer steps. (With lr
    1e-3, a cosine schedule, the balanced loss and animal-anchored crops, 300 steps left
    the 10-frame model at 15.7 px on clean test frames against 5.9 px with this recipe.)"""
    common = dict(backbone="efficientnet_lite0", weights="imagenet", head_width=64,
                  output_stride=8, epochs=1, min_steps=steps, batch_size=8, lr=2e-3,
                  lr_schedule="step", lr_drops=[0.6, 0.85], lr_drop_factors=[0.2, 0.2],
                  warmup_epochs=2, heatmap_loss="bce", precision="fp32", workers=0,
                  eval_every=100_000, eval_train=False, calibrate="none")
    augment = dict(crop_anchor="keypoint", keypoint_crop_prob=0.9, affine_prob=0.7,
                   rotation=25, scale=[0.8, 1.2])
    if part == "synthetic":
        return TrainConfig(**common, sigma=5.0, augment={**augment, "crop_size": [96, 96]})
    return TrainConfig(**common, sigma=6.0, input_scale=0.5,
                       augment={**augment, "crop_size": [128, 128]})


# ----------------------------------------------------------------------------- (a) synthetic
@dataclass
class Synthetic:
    video: Path  # the pool video (the project's)
    truth: np.ndarray  # (P, K, 2) keypoints of the pool video's frames
    kind: np.ndarray  # (P,) "dim", "glare", "occluded" or "clean"
    test: LabeledFrames
    heldout: tuple[Path, np.ndarray]  # one test frame, trained on by no one (see prepare_subset)


def lighting(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame gain and lift: dim stretches (30 of every 230 frames) and glare (35 of 370)."""
    rng = np.random.default_rng([seed, 9])
    t = np.arange(n)
    dim = (t + rng.integers(230)) % 230 < 30
    glare = ((t + rng.integers(370)) % 370 < 35) & ~dim
    gain = np.where(dim, 0.3, np.where(glare, 0.45, 1.0))
    lift = np.where(glare, 135.0, 0.0)
    return gain, lift, dim, glare


def render_synthetic(work: Path, seed: int = 0) -> Synthetic:
    scene = make_scene(N_FRAMES, SIZE, seed, Disturbances(noise=3.0, occluders=2, distractors=3))
    gain, lift, dim, glare = lighting(N_FRAMES, seed)
    blobs = scene.clutter.occluders  # (N, n, 2)
    hidden = (np.linalg.norm(scene.keypoints[:, :, None] - blobs[:, None], axis=-1)
              < scene.clutter.radius).any(axis=2)  # (N, K): under an occluder
    # A person leaves a keypoint hidden under an occluder unlabeled, and it is not graded.
    keypoints = np.where(hidden[..., None], np.nan, scene.keypoints)
    kind = np.where(dim, "dim", np.where(glare, "glare", np.where(hidden.any(axis=1),
                                                                 "occluded", "clean")))
    t = np.arange(N_FRAMES)
    pool = t[t % 100 < 70]
    test = t[(t % 100 >= 78) & (t % 100 < 98) & (t % 2 == 0)]

    def frame(i: int) -> np.ndarray:
        img = render_frame(scene, int(i)).astype(np.float32) * gain[i] + lift[i]
        return np.clip(img, 0, 255).astype(np.uint8)

    video = work / "arena.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, SIZE)
    for i in pool:
        writer.write(frame(i))
    writer.release()
    (work / "test").mkdir(exist_ok=True)
    paths = []
    for i in test:
        paths.append(work / "test" / f"img{i:05d}.png")
        cv2.imwrite(str(paths[-1]), frame(i))
    test_frames = LabeledFrames(paths, keypoints[test].astype(np.float32),
                                list(SYNTHETIC_BODYPARTS))
    share = {k: f"{np.mean(kind[test] == k):.0%}" for k in ("dim", "glare", "occluded")}
    print(f"synthetic: {len(pool)} pool frames, {len(test)} test frames (test: {share})",
          flush=True)
    first = next(j for j, i in enumerate(test) if np.isfinite(keypoints[i]).all())
    return Synthetic(video, keypoints[pool], kind[pool], test_frames,
                     (paths[first], keypoints[test[first]]))


def synthetic_project(work: Path, sim: Synthetic) -> Path:
    """A project on the pool video, plus labeled-data/heldout/ holding the one frame that
    training's own test split takes (see prepare_subset)."""
    config = create_project("al", "sim", [sim.video], list(SYNTHETIC_BODYPARTS),
                            working_dir=work)
    folder = config.parent / "labeled-data" / "heldout"
    folder.mkdir()
    shutil.copy2(sim.heldout[0], folder / "img0.png")
    df = empty_labels("sim", list(SYNTHETIC_BODYPARTS), "heldout", ["img0.png"])
    df.loc[:, :] = sim.heldout[1].reshape(1, -1)
    write_labels(df, folder / "CollectedData_sim.h5")
    return config


def train_project(config: Path, cfg: TrainConfig, seed: int, work: Path) -> Path:
    """Train on every labeled pool frame of the project (the heldout frame is training's
    test split)."""
    project = open_project(config)
    frames = load_labeled_frames(project)
    held = [i for i, p in enumerate(frames.paths) if p.parent.name == "heldout"]
    subset = [i for i in range(len(frames)) if i not in held]
    scratch, run_cfg = prepare_subset(project, load_project_labels(project), frames, cfg,
                                      subset, held[0], seed, work)
    return train(scratch, run_cfg, name="run", progress=False)


def write_frames(config: Path, video: Path, indices) -> None:
    """Frames written as extract-frames writes them (name, padding, pixels)."""
    folder = open_project(config).labeled_data_dir / video.stem
    with VideoReader(video) as reader:
        digits = name_digits(folder, reader.n_frames)
        for i, frame in reader.frames([int(i) for i in indices]):
            write_frame(folder, i, frame, digits)


def picked(config: Path, stem: str = "arena") -> list[int]:
    folder = open_project(config).labeled_data_dir / stem
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := FRAME_NAME.fullmatch(p.name)))


def run_synthetic(sim: Synthetic, work: Path, seed: int, rounds: int, steps: int,
                  candidates: int, arms: list[str]) -> list[dict]:
    truth = keypoints_to_frame(sim.truth)
    cfg = train_config("synthetic", steps)
    base = work / f"synthetic-s{seed}"
    start = synthetic_project(base / "start", sim)
    extract_frames(start, n=START, method="kmeans", seed=seed, progress=False)
    label_from_truth(start, sim.video, truth)
    run0 = train_project(start, cfg, seed, base / "start-run")
    first = grade(sim.test, run0, "synthetic", seed, "all", 0, START, sim.kind[picked(start)])
    rows = [{**first, "arm": arm} for arm in arms]
    for arm in arms:
        config = Path(shutil.copytree(start.parent, base / arm / start.parent.name,
                                      symlinks=True)) / "config.yaml"
        run, rng = run0, np.random.default_rng([seed, 7])
        for r in range(1, rounds):
            if arm == "suggest":
                suggest_frames(config, run, n=STEP, candidates=candidates, device="cpu",
                               progress=False)
            elif arm == "random":  # the person picks frames at random (and writes them)
                have = set(picked(config))
                left = [i for i in range(len(sim.truth)) if i not in have]
                write_frames(config, sim.video, sorted(rng.choice(left, STEP, replace=False)))
            else:
                extract_frames(config, n=STEP, method="kmeans", seed=seed * 100 + r,
                               progress=False)
            label_from_truth(config, sim.video, truth)  # every frame in the folder
            run = train_project(config, cfg, seed, base / arm / f"run{r}")
            have = picked(config)
            rows.append(grade(sim.test, run, "synthetic", seed, arm, r, len(have),
                              sim.kind[have]))
    return rows


# ----------------------------------------------------------------------------- (b) openfield
def run_openfield(work: Path, seed: int, rounds: int, steps: int, arms: list[str]
                  ) -> list[dict]:
    base = work / f"openfield-s{seed}"
    shutil.copytree(OPENFIELD, base / "project", ignore=shutil.ignore_patterns("*.mp4"))
    for p in [base, *base.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    project = open_project(base / "project" / "config.yaml")
    frames = load_labeled_frames(project)
    labels = load_project_labels(project)
    split = make_split(len(frames), 0.5, seed)
    pool, test = split.train, split.test
    cfg = train_config("openfield", steps)
    start = kmeans_pick(frames, pool, START, seed)
    rows, chosen = [], {}

    def fit(subset: list[int], tag: str) -> Path:
        scratch, run_cfg = prepare_subset(project, labels, frames, cfg, sorted(subset), test[0],
                                          seed, base / tag)
        return train(scratch, run_cfg, name="run", progress=False)

    run0 = fit(start, "start")
    first = grade(frames, run0, "openfield", seed, "all", 0, START, None, test)
    for arm in arms:
        rows.append({**first, "arm": arm})
        chosen[arm] = list(start)
    for arm in arms:
        rng = np.random.default_rng([seed, 7])
        run = run0
        for r in range(1, rounds):
            left = [i for i in pool if i not in chosen[arm]]
            if len(left) < STEP:
                break
            if arm == "suggest":
                predictor = Predictor.from_dir(run, device="cpu")
                images = [cv2.imread(str(frames.paths[i])) for i in left]
                score = np.concatenate([score_frames(predictor, img[None]).score
                                        for img in images])
                covered = frame_features(cv2.imread(str(frames.paths[i])) for i in chosen[arm])
                new = [left[p] for p in pick_diverse(score, frame_features(images), STEP,
                                                     covered)]
            elif arm == "random":
                new = rng.choice(left, STEP, replace=False).tolist()
            else:  # k-means over the unlabeled pool frames, as extract-frames clusters
                new = kmeans_pick(frames, left, STEP, seed * 100 + r)
            chosen[arm] += [int(i) for i in new]
            run = fit(chosen[arm], f"{arm}-run{r}")
            rows.append(grade(frames, run, "openfield", seed, arm, r, len(chosen[arm]), None,
                              test))
    return rows


def kmeans_pick(frames: LabeledFrames, left: list[int], n: int, seed: int) -> list[int]:
    from sklearn.cluster import MiniBatchKMeans

    x = frame_features(cv2.imread(str(frames.paths[i])) for i in left).astype(np.float32)
    km = MiniBatchKMeans(n, random_state=seed, n_init=3, batch_size=256).fit(x)
    dist = ((x - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1)
    picks = {int(np.flatnonzero(km.labels_ == c)[np.argmin(dist[km.labels_ == c])])
             for c in range(n) if (km.labels_ == c).any()}
    for extra in np.argsort(-dist):  # empty clusters: the frames farthest from a centroid
        if len(picks) >= n:
            break
        picks.add(int(extra))
    return [left[p] for p in sorted(picks)]


# ----------------------------------------------------------------------------- common
def grade(frames: LabeledFrames, run: Path, part: str, seed: int, arm: str, r: int,
          labels: int, kinds, test: list[int] | None = None) -> dict:
    indices = list(range(len(frames))) if test is None else test
    metrics, epoch = grade_run(run, frames, indices, device="cpu")
    row = {"part": part, "seed": seed, "arm": arm, "round": r, "labels": labels,
           "test_px": metrics["mean_px_error"], "test_pck5": metrics["pck5"],
           "epochs": epoch + 1}
    if kinds is not None:
        row["picked"] = {k: int(np.sum(np.asarray(kinds) == k))
                         for k in ("dim", "glare", "occluded", "clean")}
    if ROWS is not None:  # every row on disk at once: a crash later loses nothing
        with ROWS.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
    print(f"{part} seed {seed} {arm:8s} round {r}: {labels:3d} labels -> {row['test_px']:.2f} "
          f"px (PCK@5 {row['test_pck5']:.1%})" + (f", picked {row['picked']}"
                                                  if "picked" in row else ""), flush=True)
    return row


def mean_curve(rows: list[dict], part: str, arm: str) -> dict[int, float]:
    mine = [r for r in rows if r["part"] == part and r["arm"] == arm]
    return {n: float(np.mean([r["test_px"] for r in mine if r["labels"] == n]))
            for n in sorted({r["labels"] for r in mine})}


def verdict(rows: list[dict], part: str) -> dict:
    sug, rnd = mean_curve(rows, part, "suggest"), mean_curve(rows, part, "random")
    full = max(rnd)
    reached = [n for n in sorted(sug) if sug[n] <= rnd[full]]
    out = {"random_full_labels": full, "random_full_px": rnd[full],
           "suggest_full_px": sug.get(full), "suggest_labels_to_match": reached[0] if reached
           else None}
    out["label_fraction"] = reached[0] / full if reached else None
    out["kmeans_full_px"] = mean_curve(rows, part, "kmeans").get(full)
    return out


def learning_curve_check(rows: list[dict], part: str) -> dict | None:
    """Fit random selection's first three rounds; predict labels for its final error."""
    mine = [r for r in rows if r["part"] == part and r["arm"] == "random"]
    sizes = sorted({r["labels"] for r in mine})
    if len(sizes) < 4:
        return None
    early = [{"size": r["labels"], "seed": r["seed"], "test_px": r["test_px"]}
             for r in mine if r["labels"] in sizes[:3]]
    target = mean_curve(rows, part, "random")[sizes[-1]]
    try:
        fit = fit_power_law([r["size"] for r in early], [r["test_px"] for r in early])
        est = estimate_labels(early, fit, target)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        return {"error": str(exc)}
    return {"fitted_on": sizes[:3], "target_px": target, "actual_labels": sizes[-1],
            "predicted_labels": est.labels if math.isfinite(est.labels) else None,
            "interval": [est.low, est.high] if math.isfinite(est.low) else None,
            "fit": [fit.a, fit.b, fit.c]}


def report(rows: list[dict]) -> dict:
    """Print the tables and verdicts; returns the summary per part."""
    summary = {}
    for part in sorted({r["part"] for r in rows}):
        seeds = sorted({r["seed"] for r in rows if r["part"] == part})
        print(f"\n{part}: mean test error (px) over seeds {seeds}")
        curves = {arm: mean_curve(rows, part, arm) for arm in ARMS}
        print("labels  " + "  ".join(f"{a:>8s}" for a in ARMS))
        for n in sorted(set().union(*curves.values())):
            print(f"{n:6d}  " + "  ".join(f"{curves[a].get(n, float('nan')):8.2f}"
                                          for a in ARMS))
        if not (curves["suggest"] and curves["random"]):
            continue
        v = verdict(rows, part)
        v["learning_curve"] = learning_curve_check(rows, part)
        summary[part] = v
        if part == "synthetic":
            ok = v["label_fraction"] is not None and v["label_fraction"] <= 0.6
            print(f"suggest matched random's {v['random_full_labels']}-label error "
                  f"({v['random_full_px']:.2f} px) with {v['suggest_labels_to_match']} labels "
                  f"(target <= 60%): {'met' if ok else 'NOT met'}")
        elif v["suggest_full_px"] is not None:
            ok = v["suggest_full_px"] <= v["random_full_px"]
            print(f"at {v['random_full_labels']} labels suggest {v['suggest_full_px']:.2f} px vs "
                  f"random {v['random_full_px']:.2f} px (target: not worse): "
                  f"{'met' if ok else 'NOT met'}")
        lc = v["learning_curve"]
        if lc and lc.get("predicted_labels") is not None:
            interval = lc["interval"] or [float("nan")] * 2
            print(f"learning curve from {lc['fitted_on']}: {lc['predicted_labels']:.0f} labels "
                  f"predicted for {lc['target_px']:.2f} px (80% {interval[0]:.0f}-"
                  f"{interval[1]:.0f}); it took {lc['actual_labels']}")
    return summary


def plot(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("synthetic", "openfield") if any(r["part"] == p for r in rows)]
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4), squeeze=False)
    colors = {"suggest": "tab:red", "random": "tab:blue", "kmeans": "tab:green"}
    for ax, part in zip(axes[0], parts, strict=True):
        for arm in ARMS:
            for seed in sorted({r["seed"] for r in rows}):
                mine = sorted((r for r in rows if r["part"] == part and r["arm"] == arm
                               and r["seed"] == seed), key=lambda r: r["labels"])
                ax.plot([r["labels"] for r in mine], [r["test_px"] for r in mine], "-",
                        color=colors[arm], alpha=0.25, lw=1)
            curve = mean_curve(rows, part, arm)
            if not curve:
                continue
            ax.plot(list(curve), list(curve.values()), "o-", color=colors[arm],
                    label=f"{arm} (mean)")
        ax.set(xlabel="labeled frames", ylabel="mean test error (px)",
               title=f"{part}: frames chosen by")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("synthetic", "openfield", "both"), default="both")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=5, help="training rounds: labels "
                        "10, 20, ... 10 * rounds")
    parser.add_argument("--steps", type=int, default=800, help="optimizer steps per training "
                        "(300 left 50-frame models at 12 px where 900 reached 2 px)")
    parser.add_argument("--candidates", type=int, default=400, help="suggest: frames scored")
    parser.add_argument("--arms", default=",".join(ARMS), help="which arms to run")
    parser.add_argument("--merge", type=Path, help="an earlier run's output (its last line, "
                        "the JSON): its rows of the other arms join the tables and plot")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest "
                        "on a busy 2-core machine)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--keep", type=Path, help="keep projects and runs here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.keep or Path(tempfile.mkdtemp(prefix="poselab-al-"))
    work.mkdir(parents=True, exist_ok=True)
    global ROWS
    ROWS = work / "rows.jsonl"
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a for a in ARMS if a in args.arms.split(",")]
    started = time.monotonic()
    rows: list[dict] = []
    sim = None
    if args.part in ("synthetic", "both"):
        (work / "synthetic-data").mkdir(exist_ok=True)
        sim = render_synthetic(work / "synthetic-data")
    for seed in seeds:
        if sim is not None:
            rows += run_synthetic(sim, work, seed, args.rounds, args.steps, args.candidates,
                                  arms)
        if args.part in ("openfield", "both"):
            rows += run_openfield(work, seed, args.rounds, args.steps, arms)
    if args.merge:  # rows of the arms not run now, from an earlier run's output
        earlier = json.loads(args.merge.read_text().strip().splitlines()[-1])["rows"]
        rows += [r for r in earlier if r["arm"] not in arms]
    summary = report(rows)
    print(f"\n{(time.monotonic() - started) / 60:.1f} min in all")
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")
    print(json.dumps({"benchmark": "active_learning", "seeds": seeds, "rounds": args.rounds,
                      "steps": args.steps, "summary": summary, "rows": rows}, default=float))


if __name__ == "__main__":
    main()
