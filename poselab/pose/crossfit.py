"""Cross-fitted likelihood calibration for a run trained without a validation split.

A calibration map must be fitted on predictions of frames the model never trained on
(calibration.py). A run with a validation split fits it there when training ends. A run
without one (the default: every labeled frame but the test split trains) gets it here:

1. its training frames are dealt into K folds (seeded by the run's seed);
2. K fold models are trained with the run's own options (run.yaml), fold k on every
   training frame outside fold k, into RUN/crossfit/fold-<k>/ (ordinary run folders);
3. each fold model predicts its held-out fold; those K sets of held-out predictions, one per
   training frame, fit the map, which is saved as the run's calibration.json.

The test split is never used. Caveat, stated in the map's source: a fold model trained on
(K - 1)/K of the frames errs a little more than the run's model, so the map is fitted on
slightly worse predictions and leans cautious (likelihoods a little low), never
overconfident. Long: K trainings. An interrupted job resumes where it stopped (a finished
fold keeps its held-out predictions in heldout.npz; an unfinished one resumes training).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError

FOLDER = "crossfit"
HELDOUT = "heldout.npz"


def fold_indices(train: list[int], folds: int, seed: int) -> list[list[int]]:
    """Training-frame indices dealt into `folds` seeded, disjoint, sorted, non-empty folds.

    Raises:
        PoselabError: fewer than 2 folds, or a fold that would leave nothing to train on.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise PoselabError(f"--folds {folds!r}: cross-fitting needs at least 2 folds")
    if len(train) < folds:
        raise PoselabError(f"{len(train)} training frames cannot make {folds} folds; use "
                           f"--folds {max(2, len(train))} or label more frames"
                           if len(train) >= 2 else
                           f"{len(train)} training frame(s): cross-fitting needs at least 2")
    order = np.random.default_rng(seed).permutation(np.asarray(train))
    return [sorted(int(i) for i in order[k::folds]) for k in range(folds)]


def crossfit_calibration(run: str | os.PathLike, folds: int = 3, *,
                         max_minutes: float | None = None, epochs: int | None = None,
                         progress: bool | None = None):
    """Fit and save the run's likelihood calibration from K cross-fitted fold models.

    Args:
        run: a run folder (not an ensemble: calibrate its members one by one).
        folds: K, the number of fold models (each trains on (K - 1)/K of the frames).
        max_minutes: time budget of each fold model (default: the run's own budget, so a
            fold model is trained like the run's model).
        epochs: epochs of each fold model (default: the run's).
        progress: progress bars (None: only on a terminal).

    Returns:
        (calibration.Calibration, raw ECE on the held-out predictions).

    Raises:
        PoselabError: not a run, an ensemble, too few frames for the folds, or held-out
            predictions with only one kind of outcome (nothing to calibrate).
    """
    from poselab.io.labels import load_labeled_frames
    from poselab.pose.calibration import fit_calibration, save_calibration
    from poselab.pose.data import Split, read_split
    from poselab.pose.distributed import Context
    from poselab.pose.ensemble import is_ensemble
    from poselab.pose.evaluation import _project_of
    from poselab.pose.metrics import likelihood_calibration
    from poselab.pose.predict import read_run_info
    from poselab.pose.train_config import TrainConfig
    from poselab.pose.training import _train

    run = Path(run)
    if is_ensemble(run):
        raise PoselabError(f"{run} is an ensemble: calibrate each member "
                           f"(poselab calibrate {run / 'member-0'}, ...)")
    info = read_run_info(run)
    project, _ = _project_of(run, info)
    frames = load_labeled_frames(project)
    split = read_split(run / "split.json", frames)
    cfg = TrainConfig.from_dict(info["train"], str(run / "run.yaml"))
    radius = float(cfg.calibration_radius)
    if split.val:
        print(f"note: {run} has a validation split ({len(split.val)} frames), which calibrated "
              "it when training ended; the cross-fitted map replaces that one", flush=True)
    parts = fold_indices(split.train, folds, cfg.seed)
    fold_cfg = dataclasses.replace(cfg, val_fraction=0.0, calibrate="none")
    if max_minutes is not None:
        fold_cfg.max_minutes = max_minutes
    if epochs is not None:
        fold_cfg.epochs = epochs
    likelihood, correct = [], []
    for k, held in enumerate(parts):
        folder = run / FOLDER / f"fold-{k}"
        saved = folder / HELDOUT
        if not saved.is_file():
            print(f"cross-fitting fold {k + 1} of {folds}: {len(split.train) - len(held)} "
                  f"frames train, {len(held)} held out", flush=True)
            _train_fold(_train, Context(), project.config_path, fold_cfg, folder,
                        Split([i for i in split.train if i not in set(held)], [], held),
                        progress)
            _save_heldout(folder, frames, held, radius)
        data = np.load(saved)
        likelihood.append(data["likelihood"])
        correct.append(data["correct"])
    likelihood, correct = np.concatenate(likelihood), np.concatenate(correct)
    source = (f"cross-fitted: {folds} fold models on the {len(split.train)} training frames, "
              f"{len(correct)} held-out keypoints (fold models train on {folds - 1}/{folds} "
              "of the frames: slightly cautious)")
    fitted = fit_calibration(likelihood, correct, radius, source, cfg.calibrate
                             if cfg.calibrate != "none" else "auto")
    save_calibration(run, fitted)
    raw = likelihood_calibration(likelihood, np.where(correct, 0.0, np.inf), radius=radius)
    return fitted, float(raw["ece"])


def _train_fold(train_one, ctx, config_path, cfg, folder: Path, split, progress) -> None:
    """Train (or resume) one fold model into its folder."""
    try:
        if (folder / "last.pt").is_file():
            train_one(ctx, config_path, None, None, folder, None, None, progress)
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)  # a fold stopped before its first epoch
            train_one(ctx, config_path, dataclasses.replace(cfg), folder.name, None, None,
                      None, progress, models_dir=folder.parent, split=split)
        ctx.close(True)
    except BaseException:
        ctx.close(False)
        raise


def _save_heldout(folder: Path, frames, held: list[int], radius: float) -> None:
    """The fold model's raw likelihoods and outcomes on its held-out frames, saved so a
    resumed job does not predict them again."""
    import torch

    from poselab.io.fileio import atomic_write
    from poselab.pose.calibration import heldout_outcomes
    from poselab.pose.engine import resolve_device
    from poselab.pose.evaluation import eval_loader, evaluate_split
    from poselab.pose.heatmaps import Codec
    from poselab.pose.predict import load_run, run_flip_permutation, run_input_scale

    device = resolve_device("auto")
    model, info, _ = load_run(folder, "auto", device)
    model = model.to(memory_format=torch.channels_last)
    codec = Codec(**info["codec"])
    loader = eval_loader(frames, held, codec, model.mean, model.std,
                         input_scale=run_input_scale(info))
    _, pred = evaluate_split(model, loader, codec, device, None, 0.5, info["bodyparts"],
                             flip_perm=run_flip_permutation(info), radius=radius)
    likelihood, correct = heldout_outcomes(pred, radius)
    atomic_write(folder / HELDOUT,  # the temp name ends in .npz, so savez keeps it
                 lambda tmp: np.savez(tmp, likelihood=likelihood, correct=correct))
