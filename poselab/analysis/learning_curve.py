"""How many labels are enough: test error against the number of labeled frames.

`learning_curve(config, cfg, sizes, seeds)`:
1. A fixed test split of the labeled frames (`make_split`'s test part for `test_fraction`,
   seeded by cfg.split_seed or 0) grades every model and chooses nothing; the other frames
   are the pool.
2. For seed s, a seeded permutation of the pool; the subset of size n is its first n
   frames, so subsets are nested across sizes (each larger subset contains the smaller).
3. Each (n, s) trains in a scratch project holding exactly those n labeled frames, with
   training seed s, under `max_minutes`. Training always holds out a test split of its own;
   one frame of the fixed test split is added to the scratch project and the split seed
   chosen so that this frame is training's test frame, so all n frames are trained on.
   The final checkpoint is graded on the fixed test split with Predictor (the same
   preprocessing as `poselab evaluate`).
4. The errors are fitted with err(n) = a * n^-b + c and the labels for `target_px` are
   estimated with a bootstrap interval (poselab.analysis.power_law). "More labels will not
   help much" when the largest subset's fitted error is within 10% of the floor c.

Writes <out>/learning-curve.csv (a row per run, reused by a re-run with the same settings,
so an interrupted curve continues), learning-curve.png and fit.json.

Extending: a new column is a key of `_one_run`'s row and of COLUMNS (older CSVs without it
are measured again).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poselab.analysis.power_law import (
    BOOTSTRAPS,
    Estimate,
    PowerLaw,
    estimate_labels,
    fit_power_law,
)
from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write, atomic_write_text
from poselab.io.labels import LabeledFrames, load_labeled_frames, load_project_labels
from poselab.io.project import open_project

CSV_NAME, PNG_NAME, FIT_NAME = "learning-curve.csv", "learning-curve.png", "fit.json"
COLUMNS = ["size", "seed", "test_px", "test_rmse", "test_pck5", "epochs", "minutes", "settings"]
FLAT = 0.10  # "more labels will not help much" when err(largest) - c < FLAT * err(largest)


@dataclass
class LearningCurveResult:
    """What `learning_curve` measured and concluded.

    Attributes:
        rows: one dict per run (COLUMNS), sorted by size and seed.
        fit: the power law, or None with fewer than 3 sizes.
        estimate: labels needed for the target, when a target was given and a fit exists.
        flat: True when more labels will not help much.
        lines: the conclusions, in words.
        csv, png, fit_json: files written.
    """

    rows: list[dict]
    fit: PowerLaw | None
    estimate: Estimate | None
    flat: bool
    lines: list[str] = field(default_factory=list)
    csv: Path | None = None
    png: Path | None = None
    fit_json: Path | None = None


def default_sizes(pool: int) -> list[int]:
    """10, 20, 40, ... while below the pool, then the whole pool."""
    sizes, n = [], 10
    while n < pool:
        sizes.append(n)
        n *= 2
    return [*sizes, pool]


def learning_curve(
    config_path: str | os.PathLike,
    cfg=None,
    sizes: Sequence[int] | None = None,
    seeds: int = 3,
    max_minutes: float | None = None,
    target_px: float | None = None,
    out: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    keep_runs: bool = False,
    echo: Callable[[str], object] = print,
) -> LearningCurveResult:
    """Train on nested subsets of the labeled frames and fit how test error falls with them.

    Args:
        config_path: the project's config.yaml (or its folder).
        cfg: a TrainConfig (default: TrainConfig()); seed, split and train fraction are set
            per run, val_fraction is 0 (the final checkpoint is graded).
        sizes: numbers of labeled frames to train on (default: 10, 20, 40, ... and the pool).
        seeds: runs per size (seeds 0 .. seeds - 1: subsets and training differ).
        max_minutes: time budget of each training run (default: cfg's; None trains all
            cfg.epochs).
        target_px: estimate the labels needed to reach this mean test error.
        out: folder for the CSV, PNG and fit (default: <project>/learning-curve).
        test_fraction: share of the labeled frames in the fixed test split.
        keep_runs: keep each run's scratch project and model under <out>/runs.
        echo: receives a line per finished run.

    Raises:
        PoselabError: bad options (sizes larger than the pool, ...), or too few labels.
    """
    from poselab.pose.data import make_split
    from poselab.pose.train_config import TrainConfig

    project = open_project(config_path)
    cfg = dataclasses.replace(cfg or TrainConfig())
    if max_minutes is not None:
        cfg.max_minutes = max_minutes
    cfg.validate()
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise PoselabError(f"--seeds {seeds!r}: the number of seeds must be >= 1")
    if not 0 < test_fraction < 1:
        raise PoselabError(f"--test-fraction {test_fraction!r}: must be in (0, 1)")
    if target_px is not None and not target_px > 0:
        raise PoselabError(f"--target-px {target_px!r}: must be a positive number of pixels")
    frames = load_labeled_frames(project)
    if len(frames) < 4:
        raise PoselabError(f"{project.config_path}: {len(frames)} labeled frames; a learning "
                           "curve needs at least 4 (label more with poselab label)")
    split_seed = cfg.split_seed if cfg.split_seed is not None else 0
    split = make_split(len(frames), 1.0 - test_fraction, split_seed)
    test, pool = split.test, split.train
    sizes = _check_sizes(sizes, len(pool))
    out = Path(out) if out is not None else project.root / "learning-curve"
    out.mkdir(parents=True, exist_ok=True)
    settings = _fingerprint(cfg, test, frames)
    rows = {(r["size"], r["seed"]): r for r in _read_rows(out / CSV_NAME)
            if r["settings"] == settings}
    labels = load_project_labels(project)
    todo = len(sizes) * seeds - sum((n, s) in rows for n in sizes for s in range(seeds))
    budget = (f", up to {cfg.max_minutes:g} min each (about {todo * cfg.max_minutes / 60:.1f} h)"
              if cfg.max_minutes else "")
    echo(f"learning curve: sizes {', '.join(map(str, sizes))} x {seeds} seed(s), fixed test "
         f"split of {len(test)} frames; {todo} training run(s) to do{budget}")
    for seed in range(seeds):
        for n, subset in nested_subsets(pool, sizes, [split_seed, seed]).items():
            if (n, seed) in rows:
                echo(f"{n} labels, seed {seed}: {rows[n, seed]['test_px']:.2f} px (from "
                     f"{out / CSV_NAME})")
                continue
            row = _one_run(project, labels, frames, cfg, subset, test, seed,
                           out / "runs" / f"n{n}-seed{seed}", keep_runs)
            rows[n, seed] = {**row, "settings": settings}
            _write_rows(out / CSV_NAME, rows.values())
            echo(f"{n} labels, seed {seed}: {row['test_px']:.2f} px test error "
                 f"({row['epochs']} epochs, {row['minutes']:.1f} min)")
    if not keep_runs:
        shutil.rmtree(out / "runs", ignore_errors=True)
    result = summarize([rows[n, s] for n in sizes for s in range(seeds)], target_px)
    result.csv = out / CSV_NAME
    result.fit_json = atomic_write_text(out / FIT_NAME, json.dumps(_fit_doc(result), indent=1))
    result.png = plot_learning_curve(result, out / PNG_NAME)
    return result


def nested_subsets(pool: Sequence[int], sizes: Sequence[int], seed) -> dict[int, list[int]]:
    """{n: sorted frame indices}: the first n of one seeded permutation of the pool, so each
    larger subset contains the smaller ones."""
    order = np.random.default_rng(seed).permutation(np.asarray(pool, int))
    return {int(n): sorted(int(i) for i in order[:n]) for n in sorted(sizes)}


def _check_sizes(sizes: Sequence[int] | None, pool: int) -> list[int]:
    if sizes is None:
        return default_sizes(pool)
    sizes = list(sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise PoselabError(f"--sizes {sizes}: positive integers, e.g. 10,20,40")
    if max(sizes) > pool:
        raise PoselabError(f"--sizes {max(sizes)}: only {pool} labeled frames are outside the "
                           f"fixed test split; use sizes up to {pool}")
    return sorted(set(sizes))


def _fingerprint(cfg, test: list[int], frames: LabeledFrames) -> str:
    """Runs are reused only under the same options and the same test frames."""
    doc = {"train": cfg.to_dict(), "test": [str(frames.paths[i]) for i in test]}
    return hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [{**r, "size": int(r["size"]), "seed": int(r["seed"]),
                 "test_px": float(r["test_px"]), "test_rmse": float(r["test_rmse"]),
                 "test_pck5": float(r["test_pck5"]), "epochs": int(r["epochs"]),
                 "minutes": float(r["minutes"])} for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # an old or foreign file: measured again, then replaced


def _write_rows(path: Path, rows) -> None:
    ordered = sorted(rows, key=lambda r: (r["size"], r["seed"]))

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(ordered)

    atomic_write(path, write)


def prepare_subset(project, labels, frames: LabeledFrames, cfg, subset: list[int],
                   held_out: int, seed: int, work: Path):
    """A scratch project in `work` to train on exactly the frames `subset`, and its options.

    The scratch project holds the subset's labels plus frame `held_out` (of the fixed test
    split); the split seed is chosen so that training's own test split is that frame alone
    and every subset frame is trained on.

    Returns:
        (scratch config.yaml, TrainConfig for the run).
    """
    from poselab.pose.data import image_key, make_split

    shutil.rmtree(work, ignore_errors=True)
    config = _scratch_project(project, labels, [frames.paths[i] for i in subset],
                              frames.paths[held_out], work)
    scratch = load_labeled_frames(open_project(config))
    extra = [image_key(p) for p in scratch.paths].index(image_key(frames.paths[held_out]))
    total = len(scratch)
    split_seed = next((s for s in range(100 * total)
                       if make_split(total, len(subset) / total, s).test == [extra]), None)
    if split_seed is None:  # about e^-100 unlikely; say so rather than waste a frame
        raise PoselabError(f"no split seed makes {frames.paths[held_out]} training's test "
                           "frame")
    return config, dataclasses.replace(cfg, seed=seed, split_seed=split_seed, val_fraction=0.0,
                                       train_fraction=len(subset) / total)


def _one_run(project, labels, frames: LabeledFrames, cfg, subset: list[int], test: list[int],
             seed: int, work: Path, keep: bool) -> dict:
    """Train on `subset` in a scratch project and grade on `test` (see module docstring)."""
    from poselab.pose.training import train

    config, run_cfg = prepare_subset(project, labels, frames, cfg, subset, test[0], seed, work)
    start = time.monotonic()
    run = train(config, run_cfg, name="run", progress=False)
    minutes = (time.monotonic() - start) / 60
    metrics, epoch = grade_run(run, frames, test, cfg.device)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {"size": len(subset), "seed": seed, "test_px": metrics["mean_px_error"],
            "test_rmse": metrics["rmse"], "test_pck5": metrics["pck5"], "epochs": epoch + 1,
            "minutes": round(minutes, 3)}


def _scratch_project(project, labels, images: list[Path], extra: Path, work: Path) -> Path:
    """A copy of the project's config with only `images` (+ `extra`) labeled, the images
    linked (or copied where links are not allowed)."""
    from poselab.io.labels import NOT_VISIBLE_SIDECAR, write_labels
    from poselab.pose.data import image_key

    keep = {image_key(p) for p in [*images, extra]}
    work.mkdir(parents=True)
    shutil.copy2(project.config_path, work / "config.yaml")
    chosen = labels[[f"{a}/{b}/{c}" in keep for a, b, c in labels.index]]
    for folder, table in chosen.groupby(level=1, sort=True):
        dest = work / "labeled-data" / str(folder)
        dest.mkdir(parents=True)
        for image in table.index.get_level_values(2):
            src = project.labeled_data_dir / str(folder) / str(image)
            try:
                os.symlink(src.resolve(), dest / str(image))
            except OSError:
                shutil.copy2(src, dest / str(image))
        sidecar = project.labeled_data_dir / str(folder) / NOT_VISIBLE_SIDECAR
        if sidecar.is_file():
            shutil.copy2(sidecar, dest / NOT_VISIBLE_SIDECAR)
        write_labels(table, dest / f"CollectedData_{project.scorer}.h5")
    return work / "config.yaml"


def grade_run(run: str | os.PathLike, frames: LabeledFrames, indices: Sequence[int],
                 device: str = "auto") -> tuple[dict, int]:
    """Metrics (pose.metrics.keypoint_metrics) of a run's model on some labeled frames, and
    the checkpoint's epoch: the images are read as analysis reads frames and predicted by
    `Predictor` (one image at a time, so sizes may differ)."""
    import cv2

    from poselab.pose.metrics import keypoint_metrics
    from poselab.pose.predict import Predictor

    predictor = Predictor.from_dir(run, device=device)
    order = [frames.bodyparts.index(b) for b in predictor.bodyparts]
    xys, liks = [], []
    for i in indices:
        image = cv2.imread(str(frames.paths[i]), cv2.IMREAD_COLOR)
        if image is None:
            raise PoselabError(f"{frames.paths[i]}: unreadable image")
        xy, lik = predictor.predict_frames(image[None])
        xys.append(xy[0])
        liks.append(lik[0])
    gt = frames.keypoints[list(indices)][:, order]
    absent = frames.absent_mask()[list(indices)][:, order]
    metrics = keypoint_metrics(np.stack(xys), np.stack(liks), gt.astype(np.float64),
                               float(predictor.info.get("pcutoff", 0.6)), predictor.bodyparts,
                               absent=absent)
    return metrics, predictor.epoch


def summarize(rows: Sequence[dict], target_px: float | None = None,
              n_boot: int = BOOTSTRAPS) -> LearningCurveResult:
    """Fit the curve to measured rows (size, seed, test_px) and say what it means
    (`n_boot` bootstrap refits for the target's interval)."""
    rows = sorted(rows, key=lambda r: (r["size"], r["seed"]))
    sizes = sorted({r["size"] for r in rows})
    mean = {s: float(np.mean([r["test_px"] for r in rows if r["size"] == s])) for s in sizes}
    lines = [f"{s:6d} labels: {mean[s]:.2f} px mean test error" for s in sizes]
    fit, estimate, flat = None, None, False
    if len(sizes) >= 3:
        try:
            fit = fit_power_law([r["size"] for r in rows], [r["test_px"] for r in rows])
        except PoselabError as exc:
            lines.append(str(exc))
    else:
        lines.append("fewer than 3 sizes: no curve fitted (add sizes to estimate more)")
    if fit is not None:
        largest = sizes[-1]
        now, doubled = float(fit(largest)), float(fit(2 * largest))
        lines.append(f"fit: error = {fit.a:.3g} * n^-{fit.b:.2f} + {fit.c:.2f} px (floor "
                     f"{fit.c:.2f} px)")
        flat = now - fit.c < FLAT * now
        if flat:
            lines.append(f"more labels will not help much: at {largest} labels the fitted error "
                         f"{now:.2f} px is within {FLAT:.0%} of the floor {fit.c:.2f} px "
                         f"(twice the labels: {doubled:.2f} px); look at the model, the "
                         "training time or label quality instead")
        else:
            lines.append(f"twice the labels ({2 * largest}) should give about {doubled:.2f} px")
        if target_px is not None:
            estimate = estimate_labels(rows, fit, target_px, n_boot)
            lines.append(_estimate_line(estimate, largest, mean[largest]))
    return LearningCurveResult(list(rows), fit, estimate, flat, lines)


def _estimate_line(e: Estimate, largest: int, now: float) -> str:
    if now <= e.target_px:
        return (f"target {e.target_px:g} px: already reached with {largest} labels "
                f"({now:.2f} px)")
    if not math.isfinite(e.labels):
        return (f"target {e.target_px:g} px: below the fitted floor of the error, so more "
                "labels will not help much (a better model, longer training or cleaner labels "
                "might)")
    how = "bootstrap over seeds" if e.method == "seeds" else "bootstrap of one seed's residuals"
    if e.reachable < 0.5:
        return (f"target {e.target_px:g} px: about {e.labels:.0f} labeled frames by the fit, "
                f"but {1 - e.reachable:.0%} of the {how} put the floor above the target: "
                "more labels may not get there")
    high = f"{e.high:.0f}" if math.isfinite(e.high) else "unbounded"
    return (f"target {e.target_px:g} px: about {e.labels:.0f} labeled frames (80% interval "
            f"{e.low:.0f} to {high}; {how})")


def _fit_doc(result: LearningCurveResult) -> dict:
    doc: dict = {"fit": dataclasses.asdict(result.fit) if result.fit else None,
                 "flat": result.flat, "lines": result.lines}
    if result.estimate is not None:
        doc["estimate"] = {k: (v if math.isfinite(v) else None)
                           for k, v in dataclasses.asdict(result.estimate).items()}
    return doc


def plot_learning_curve(result: LearningCurveResult, path: str | os.PathLike) -> Path:
    """Test error against labeled frames: runs, their mean, the fit and the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result.rows
    sizes = sorted({r["size"] for r in rows})
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["size"] for r in rows], [r["test_px"] for r in rows], "o", color="tab:blue",
            alpha=0.4, label="one run")
    ax.plot(sizes, [np.mean([r["test_px"] for r in rows if r["size"] == s]) for s in sizes],
            "o-", color="tab:blue", label="mean over seeds")
    if result.fit is not None:
        top = max(sizes[-1] * 4, result.estimate.labels * 1.2 if result.estimate and
                  math.isfinite(result.estimate.labels) else 0)
        x = np.geomspace(sizes[0], top, 200)
        f = result.fit
        ax.plot(x, f(x), "--", color="tab:orange",
                label=f"fit {f.a:.3g} n^-{f.b:.2f} + {f.c:.2f}")
        ax.axhline(f.c, color="grey", lw=1, ls=":", label=f"floor {f.c:.2f} px")
    if result.estimate is not None:
        e = result.estimate
        ax.axhline(e.target_px, color="tab:red", lw=1, label=f"target {e.target_px:g} px")
        if math.isfinite(e.labels):
            ax.axvline(e.labels, color="tab:red", lw=1, ls="--")
    ax.set(xscale="log", xlabel="labeled frames", ylabel="mean test error (px)",
           title="learning curve (fixed test split)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
