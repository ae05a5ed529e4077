"""How long and how fast a run trains: learning-rate schedules, the time-budget planner, EMA.

Schedules are functions of the fractional epoch (epoch + step / steps_per_epoch), so their
shape is the same whatever the dataset size:
- "step": linear warm-up over warmup_epochs, then the lr is multiplied by lr_drop_factors at
  the fractions lr_drops of the epochs (DeepLabCut's schedule);
- "cosine": the same warm-up, then a half cosine from lr down to lr * lr_final_factor at
  the last step.

`plan_epochs` makes a time budget give a finished model instead of a cut one: after the
first epochs it measures the time per epoch (evaluations included) and sets the number of
epochs that fits, keeping time for the final evaluation; warm-up and drops sit at their
fractions of that plan. `min_steps` puts a floor under a small dataset's number of optimizer
steps (45 frames at batch 8 are 6 steps an epoch).

`EMA` keeps an exponential moving average of the weights; evaluation and the saved model
use it, training continues on the raw weights (saved beside it for resume).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from poselab.pose.train_config import TrainConfig


def lr_factor(cfg: TrainConfig, epoch: float) -> float:
    """Multiplier of cfg.lr at a fractional (0-based) epoch."""
    if epoch < cfg.warmup_epochs:
        if cfg.lr_schedule == "step":  # per epoch, as it always was
            return 0.1 + 0.9 * math.floor(epoch) / cfg.warmup_epochs
        return 0.1 + 0.9 * epoch / cfg.warmup_epochs
    if cfg.lr_schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-9)
        progress = min(max((epoch - cfg.warmup_epochs) / span, 0.0), 1.0)
        low = cfg.lr_final_factor
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress))
    factor = 1.0
    for at, f in zip(cfg.lr_drops, cfg.lr_drop_factors, strict=True):
        if math.floor(epoch) >= int(round(at * cfg.epochs)):
            factor *= f
    return factor


def floor_epochs(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """cfg.epochs raised so that the run takes at least cfg.min_steps optimizer steps."""
    if cfg.min_steps <= 0 or steps_per_epoch <= 0:
        return cfg.epochs
    return max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))


@dataclass
class Plan:
    """The schedule a time budget allows: `epochs` in all, and why."""

    epochs: int
    epoch_minutes: float
    note: str


def plan_epochs(cfg: TrainConfig, done: int, elapsed_minutes: float, epoch_minutes: float,
                eval_minutes: float, steps_per_epoch: int) -> Plan:
    """The number of epochs that fits cfg.max_minutes, given the measured pace.

    Args:
        cfg: the run's options (max_minutes set; epochs is the ceiling).
        done: epochs finished so far.
        elapsed_minutes: wall time so far.
        epoch_minutes: measured minutes per epoch, periodic evaluations included.
        eval_minutes: minutes of one final evaluation, kept free at the end.
        steps_per_epoch: optimizer steps per epoch (for the min_steps warning).

    Returns:
        Plan(epochs, epoch_minutes, a one-line description).
    """
    budget = float(cfg.max_minutes or 0.0)
    left = budget - elapsed_minutes - eval_minutes
    fits = done + max(int(left // max(epoch_minutes, 1e-9)), 0)
    epochs = max(min(fits, cfg.epochs), done + 1)
    note = (f"~{epochs} epochs ({epochs * steps_per_epoch} steps) fit in {budget:g} min at "
            f"{epoch_minutes * 60:.1f} s/epoch")
    drops = [int(round(at * epochs)) for at in cfg.lr_drops] if cfg.lr_schedule == "step" else []
    if drops:
        note += "; lr drops at epochs " + " and ".join(str(d + 1) for d in drops)
    elif cfg.lr_schedule == "cosine":
        note += f"; cosine lr decay to epoch {epochs}"
    if cfg.min_steps and epochs * steps_per_epoch < cfg.min_steps:
        note += (f" (fewer than the {cfg.min_steps} steps this recipe wants: expect a less "
                 "accurate model, or give more minutes)")
    return Plan(epochs, epoch_minutes, note)


class EMA:
    """Exponential moving average of a model's parameters and buffers.

    decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates, so the average
    is not dominated by the random head of the first steps.
    """

    def __init__(self, model: nn.Module, decay: float, updates: int = 0) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = float(decay), int(updates)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, value in self.module.state_dict().items():
            source = current[name].detach()
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source.to(value.dtype), alpha=1 - d)
            else:
                value.copy_(source)
