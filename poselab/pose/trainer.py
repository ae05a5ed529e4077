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

from poselab.pose.distributed import Context
from poselab.pose.engine import train_one_epoch
from poselab.pose.evaluation import evaluate_split
from poselab.pose.run_dir import RunDir
from poselab.pose.train_config import TrainConfig


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Multiplier of cfg.lr at a (0-based) epoch: linear warm-up, then step drops."""
    if epoch < cfg.warmup_epochs:
        return 0.1 + 0.9 * epoch / cfg.warmup_epochs
    factor = 1.0
    for at, f in zip(cfg.lr_drops, cfg.lr_drop_factors, strict=True):
        if epoch >= int(round(at * cfg.epochs)):
            factor *= f
    return factor


@dataclass
class EvalSets:
    """Loaders of the splits evaluated during training (None: not evaluated)."""

    val: Any = None
    test: Any = None
    train: Any = None


@dataclass
class Progress:
    """Where a run stands: the next epoch, the last finished one, the best validation error."""

    start_epoch: int = 0
    completed: int = -1  # last epoch whose checkpoint is on disk (0-based), -1: none
    best_val: float = math.inf
    prior_minutes: float = 0.0  # wall-clock minutes of earlier sessions (resume)
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


class Trainer:
    """One run's loop. Only `run` (rank 0's RunDir, None on other ranks) writes files."""

    def __init__(self, *, model, net, optimizer, loader, train_ds, sampler, generator, cfg,
                 codec, loss_fn, device, dtype, evals: EvalSets, pcutoff: float,
                 bodyparts: list[str], ctx: Context, run: RunDir | None,
                 progress: bool | None = None) -> None:
        self.model, self.net, self.optimizer = model, net, optimizer
        self.loader, self.train_ds, self.sampler, self.generator = (loader, train_ds, sampler,
                                                                    generator)
        self.cfg, self.codec, self.loss_fn = cfg, codec, loss_fn
        self.device, self.dtype, self.evals = device, dtype, evals
        self.pcutoff, self.bodyparts = pcutoff, bodyparts
        self.ctx, self.run, self.show_progress = ctx, run, progress
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]

    # ------------------------------------------------------------------ the loop
    def fit(self, state: Progress) -> Progress:
        """Train epochs state.start_epoch .. cfg.epochs - 1 (or until max_minutes)."""
        cfg = self.cfg
        started = time.monotonic()
        for epoch in range(state.start_epoch, cfg.epochs):
            self._set_lr(epoch)
            self.generator.manual_seed(cfg.seed * 100_003 + epoch)  # order + worker seeds
            self.train_ds.set_epoch(epoch)
            if self.sampler is not None:
                self.sampler.set_epoch(epoch)
            stats = train_one_epoch(self.net, self.loader, self.optimizer, self.loss_fn,
                                    self.device, autocast_dtype=self.dtype,
                                    progress=self.show_progress,
                                    desc=f"epoch {epoch + 1}/{cfg.epochs}")
            elapsed = (time.monotonic() - started) / 60
            out_of_time = (cfg.max_minutes is not None
                           and elapsed + stats["seconds"] / 60 > cfg.max_minutes)
            out_of_time = bool(self.ctx.broadcast(out_of_time))
            last = epoch == cfg.epochs - 1 or out_of_time
            row = {"epoch": epoch, "lr": self.optimizer.param_groups[-1]["lr"], **stats}
            if self.run is not None:
                evaluate_now = (epoch + 1) % cfg.eval_every == 0 or last
                is_best = self._evaluate(row, state) if evaluate_now else False
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
            if out_of_time:
                state.stopped_early = True
                if self.run is not None:
                    print(f"max_minutes={cfg.max_minutes} reached after epoch {epoch + 1}; "
                          f"stopped cleanly (resume with --resume {self.run.name})")
                break
        return state

    # ------------------------------------------------------------------ pieces
    def _set_lr(self, epoch: int) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * lr_factor(self.cfg, epoch)

    def _split_metrics(self, loader) -> dict:
        return evaluate_split(self.model, loader, self.codec, self.device, self.dtype,
                              self.pcutoff, self.bodyparts)[0]

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

    def _checkpoint(self, epoch: int, best_val: float) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": epoch, "best_val_px_error": best_val, "train": self.cfg.to_dict(),
                "model_config": self.model.config()}

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


def load_progress(state: dict, run: RunDir | None) -> Progress:
    """Progress of a resumed run from its last.pt (old runs stored the best TEST error: it
    is not carried over, since selection now happens on validation only)."""
    epoch = int(state["epoch"])
    return Progress(start_epoch=epoch + 1, completed=epoch,
                    best_val=float(state.get("best_val_px_error", math.inf)),
                    prior_minutes=run.elapsed_minutes() if run is not None else 0.0)
