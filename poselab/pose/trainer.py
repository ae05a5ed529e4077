"""The pose training loop: epochs of `engine.train_one_epoch`, evaluation, checkpoints, logs.

`Trainer.fit` is the whole loop; everything about folders, splits and model building lives in
training.py, and every file write goes through the RunDir that only rank 0 holds.

Model selection follows one rule, never the test split: with a validation split, best.pt is
the checkpoint with the lowest validation error; without one, the final checkpoint is the
model (last.pt). Test error is evaluated and logged for the learning curve only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poselab.pose.distributed import Context
from poselab.pose.engine import train_one_epoch
from poselab.pose.evaluation import evaluate_split
from poselab.pose.run_dir import RunDir
from poselab.pose.schedule import EMA, Plan, lr_factor, plan_epochs


@dataclass
class EvalSets:
    """Loaders of the splits evaluated during training (None: not evaluated)."""

    val: Any = None
    test: Any = None
    train: Any = None
    health: Any = None  # a few training frames, for the training-health check


@dataclass
class Progress:
    """Where a run stands: the next epoch, the last finished one, the best validation error."""

    start_epoch: int = 0
    completed: int = -1  # last epoch whose checkpoint is on disk (0-based), -1: none
    best_val: float = math.inf
    prior_minutes: float = 0.0  # wall-clock minutes of earlier sessions (resume)
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


class _StepHook:
    """Called by engine.train_one_epoch after every optimizer step: per-step lr, EMA."""

    def __init__(self, trainer: Trainer, epoch: int, steps: int) -> None:
        self.trainer, self.epoch, self.steps, self.done = trainer, epoch, max(steps, 1), 0
        trainer.set_lr(epoch)

    def step(self) -> None:
        self.done += 1
        if self.done < self.steps:  # the next epoch's hook sets its own first lr
            self.trainer.set_lr(self.epoch + self.done / self.steps)
        if self.trainer.ema is not None:
            self.trainer.ema.update(self.trainer.model)


class Trainer:
    """One run's loop. Only `run` (rank 0's RunDir, None on other ranks) writes files."""

    def __init__(self, *, model, net, optimizer, loader, train_ds, sampler, generator, cfg,
                 codec, loss_fn, device, dtype, evals: EvalSets, pcutoff: float,
                 bodyparts: list[str], ctx: Context, run: RunDir | None,
                 progress: bool | None = None, on_plan=None,
                 flip_perm: list[int] | None = None) -> None:
        self.model, self.net, self.optimizer = model, net, optimizer
        self.loader, self.train_ds, self.sampler, self.generator = (loader, train_ds, sampler,
                                                                    generator)
        self.cfg, self.codec, self.loss_fn = cfg, codec, loss_fn
        self.device, self.dtype, self.evals = device, dtype, evals
        self.pcutoff, self.bodyparts = pcutoff, bodyparts
        self.ctx, self.run, self.show_progress = ctx, run, progress
        self.on_plan = on_plan  # called with the Plan when a time budget sets the epochs
        self.flip_perm = flip_perm  # test-time flip averaging (evaluation sees what analysis sees)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.ema: EMA | None = None
        self.steps_per_epoch = len(loader)

    def start_ema(self, state: dict | None = None) -> None:
        """The weight average (from a checkpoint's "model" when resuming an EMA run)."""
        if self.cfg.ema_decay <= 0:
            return
        self.ema = EMA(self.model, self.cfg.ema_decay,
                       int(state.get("ema_updates", 0)) if state else 0)
        if state is not None and "raw_model" in state:
            self.ema.module.load_state_dict(state["model"])

    @property
    def eval_model(self):
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ the loop
    def fit(self, state: Progress) -> Progress:
        """Train epochs state.start_epoch .. cfg.epochs - 1 (or until max_minutes)."""
        cfg = self.cfg
        started = time.monotonic()
        eval_seconds: list[float] = []
        planned = False
        epoch = state.start_epoch
        while epoch < cfg.epochs:
            self.generator.manual_seed(cfg.seed * 100_003 + epoch)  # order + worker seeds
            self.train_ds.set_epoch(epoch)
            if self.sampler is not None:
                self.sampler.set_epoch(epoch)
            stats = train_one_epoch(self.net, self.loader, self.optimizer, self.loss_fn,
                                    self.device, autocast_dtype=self.dtype,
                                    scheduler=_StepHook(self, epoch, self.steps_per_epoch),
                                    progress=self.show_progress,
                                    desc=f"epoch {epoch + 1}/{cfg.epochs}")
            elapsed = (time.monotonic() - started) / 60
            done = epoch + 1 - state.start_epoch
            if done == 1 and cfg.max_minutes is None and self.run is not None:
                self._warn_if_long(elapsed, cfg.epochs - epoch - 1)
            if cfg.max_minutes is not None and done >= 2:
                pace = elapsed / done
                final_eval = (max(eval_seconds) if eval_seconds else 0.0) / 60
                projected = elapsed + pace * (cfg.epochs - epoch - 1) + final_eval
                if not planned or projected > cfg.max_minutes * 1.02:
                    plan = plan_epochs(cfg, epoch + 1, elapsed, pace, final_eval,
                                       self.steps_per_epoch)
                    planned = self._apply_plan(plan, epoch) or planned
            out_of_time = (cfg.max_minutes is not None
                           and elapsed + stats["seconds"] / 60 > cfg.max_minutes)
            out_of_time = bool(self.ctx.broadcast(out_of_time))
            last = epoch == cfg.epochs - 1 or out_of_time
            row = {"epoch": epoch, "lr": self.optimizer.param_groups[-1]["lr"], **stats}
            if self.run is not None:
                evaluate_now = (epoch + 1) % cfg.eval_every == 0 or last
                tick = time.monotonic()
                is_best = self._evaluate(row, state) if evaluate_now else False
                if evaluate_now:
                    eval_seconds.append(time.monotonic() - tick)
                self.run.save(self._checkpoint(epoch, state.best_val), best=is_best)
                state.completed = epoch
                row["elapsed_minutes"] = state.prior_minutes + (time.monotonic() - started) / 60
                self.run.append_metrics(row)
                self.run.plot()
                if evaluate_now:
                    self._log(epoch, row, time.monotonic() - started,
                              epoch + 1 - state.start_epoch)
            state.completed = epoch
            state.history.append(row)
            if self.run is not None and self.evals.health is not None:
                self._check_health(epoch)
            if out_of_time:
                state.stopped_early = True
                if self.run is not None:
                    print(f"max_minutes={cfg.max_minutes} reached after epoch {epoch + 1}; "
                          f"stopped cleanly (resume with --resume {self.run.name})")
                break
            epoch += 1
        return state

    # ------------------------------------------------------------------ pieces
    def _apply_plan(self, plan: Plan, epoch: int) -> bool:
        """Every rank takes rank 0's plan; the schedule follows it from the next step."""
        epochs = int(self.ctx.broadcast(plan.epochs))
        if epochs == self.cfg.epochs:
            return True
        self.cfg.epochs = epochs
        if self.run is not None:
            print(f"plan: {plan.note}", flush=True)
            if self.on_plan is not None:
                self.on_plan(plan)
        return True

    def calibrate(self) -> str:
        """Fit the likelihood calibration on the validation split (rank 0); one line."""
        from poselab.errors import PoselabError
        from poselab.pose.calibration import (
            fit_calibration,
            heldout_outcomes,
            save_calibration,
        )

        cfg = self.cfg
        if self.run is None or cfg.calibrate == "none":
            return ""
        if self.evals.val is None:
            return ("likelihoods are not calibrated: no validation split (cross-fit them "
                    f"on the training frames: poselab calibrate {self.run.path}; or train "
                    "with --val-fraction 0.1)")
        metrics, pred = evaluate_split(self.eval_model, self.evals.val, self.codec,
                                       self.device, self.dtype, self.pcutoff, self.bodyparts,
                                       flip_perm=self.flip_perm,
                                       radius=cfg.calibration_radius)
        likelihood, correct = heldout_outcomes(pred, cfg.calibration_radius)
        try:
            fitted = fit_calibration(likelihood, correct, cfg.calibration_radius,
                                     f"validation split: {len(correct)} keypoints",
                                     cfg.calibrate)
        except PoselabError as exc:
            return f"likelihoods are not calibrated: {exc}"
        save_calibration(self.run.path, fitted)
        return (f"likelihood calibrated ({fitted.method}, {fitted.source}); raw ECE on it "
                f"{metrics['calibration']['ece']:.3f}")

    def set_lr(self, epoch: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * lr_factor(self.cfg, epoch)

    def _split_metrics(self, loader) -> dict:
        return evaluate_split(self.eval_model, loader, self.codec, self.device, self.dtype,
                              self.pcutoff, self.bodyparts, flip_perm=self.flip_perm)[0]

    def _evaluate(self, row: dict, state: Progress) -> bool:
        """Fill the row's validation/test/train figures; True when this is the best on val."""
        is_best = False
        if self.evals.val is not None:
            val = self._split_metrics(self.evals.val)
            row.update(val_px_error=val["mean_px_error"], val_pck5=val["pck5"])
            if val["mean_px_error"] < state.best_val:  # NaN (nothing predicted) is never best
                state.best_val, is_best = val["mean_px_error"], True
        if self.evals.test is not None:  # logged for the learning curve; never chooses
            test = self._split_metrics(self.evals.test)
            row.update(test_px_error=test["mean_px_error"], test_rmse=test["rmse"],
                       test_pck5=test["pck5"])
        if self.evals.train is not None:
            row["train_px_error"] = self._split_metrics(self.evals.train)["mean_px_error"]
        return is_best

    def _warn_if_long(self, epoch_minutes: float, epochs_left: int) -> None:
        """After the first epoch: say how long the run will take when it is over an hour."""
        hours = epoch_minutes * epochs_left / 60
        if hours > 1:
            print(f"note: at {epoch_minutes * 60:.0f} s per epoch, the {epochs_left} epochs "
                  f"left take about {hours:.1f} h on this machine. For a model within a "
                  "budget, stop (Ctrl+C; --resume continues) and train with --max-minutes 30, "
                  "or --preset cpu on a CPU.", flush=True)

    def _check_health(self, epoch: int) -> None:
        """Say, while training, when a run is not learning (once per check point).

        At ~15% of the schedule, and not before 15% of the optimizer steps the recipe wants
        (min_steps: a short budget's schedule is shorter than what a model needs to leave
        the plateau, so 15% of it came too early: a 10-minute two-view run was warned at
        step 63 and found every keypoint by step 210): if the model finds (raw likelihood
        >= 0.5) fewer than 10% of the keypoints of training frames, it is still on the
        "background everywhere" plateau. At ~50%: a training error far above labeling
        noise (> 10 px and > 3% of the image diagonal) means it does not fit the frames it
        trains on.
        """
        cfg = self.cfg
        early, half = health_check_epochs(cfg.epochs, cfg.min_steps, self.steps_per_epoch)
        if epoch + 1 not in (early, half):
            return
        m = evaluate_split(self.model, self.evals.health, self.codec, self.device, self.dtype,
                           0.5, self.bodyparts)[0]
        found = m["kept_pcutoff"]
        if epoch + 1 == early and found < 0.10:
            print(f"warning: after {epoch + 1} of {cfg.epochs} epochs the model finds only "
                  f"{found:.0%} of the keypoints of training frames (likelihood >= 0.5): it is "
                  "still predicting background everywhere. Likely causes: too few optimizer "
                  "steps (more --max-minutes or --set min_steps=3000), crops that hide the "
                  "keypoints (--set augment.crop_size=auto --set augment.crop_anchor=animal) "
                  "or targets too narrow for many keypoints (--set heatmap_loss=balanced).",
                  flush=True)
        image = self.evals.health.dataset.image(self.evals.health.dataset.indices[0])
        diagonal = float(np.hypot(*image.shape[:2]))
        limit = max(10.0, 0.03 * diagonal)
        if epoch + 1 == half and m["mean_px_error"] > limit:
            print(f"warning: after {epoch + 1} of {cfg.epochs} epochs the training frames are "
                  f"missed by {m['mean_px_error']:.1f} px on average, far above labeling noise "
                  f"({limit:.0f} px): the model does not fit its own training data. Check the "
                  "labels (poselab check-labels), then train longer or with larger crops.",
                  flush=True)

    def _checkpoint(self, epoch: int, best_val: float) -> dict:
        """"model" holds the weights to use (the EMA when on); "raw_model" the trained ones."""
        state = {"model": self.eval_model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "epoch": epoch, "best_val_px_error": best_val, "train": self.cfg.to_dict(),
                 "model_config": self.model.config()}
        if self.ema is not None:
            state.update(raw_model=self.model.state_dict(), ema_updates=self.ema.updates)
        return state

    def _log(self, epoch: int, row: dict, seconds: float, epochs_done: int) -> None:
        parts = [f"epoch {epoch + 1}/{self.cfg.epochs}: loss {row['loss']:.4f}"]
        for key, label in (("val_px_error", "val"), ("test_px_error", "test"),
                           ("train_px_error", "train")):
            value = row.get(key)
            if isinstance(value, float):
                parts.append(f"{label} {value:.2f} px")
        eta = seconds / max(epochs_done, 1) * (self.cfg.epochs - epoch - 1) / 60
        parts += [f"lr {row['lr']:.2g}", f"{row['seconds']:.1f} s/epoch", f"ETA {eta:.1f} min"]
        print(", ".join(parts), flush=True)


def health_check_epochs(epochs: int, min_steps: int, steps_per_epoch: int
                        ) -> tuple[int | None, int]:
    """1-based epochs of the plateau check (None: too late to be early, the half-way check
    covers it) and of the half-way fit check; see Trainer._check_health."""
    half = max(3, round(0.5 * epochs))
    floor = math.ceil(0.15 * min_steps / max(steps_per_epoch, 1))
    early = max(2, round(0.15 * epochs), floor)
    return (early if early < half else None), half


def load_progress(state: dict, run: RunDir | None) -> Progress:
    """Progress of a resumed run from its last.pt (old runs stored the best TEST error: it
    is not carried over, since selection now happens on validation only)."""
    epoch = int(state["epoch"])
    return Progress(start_epoch=epoch + 1, completed=epoch,
                    best_val=float(state.get("best_val_px_error", math.inf)),
                    prior_minutes=run.elapsed_minutes() if run is not None else 0.0)
