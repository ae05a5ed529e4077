"""A training run's folder, models/<run>/: everything training writes goes through `RunDir`.

Contents (self-describing: `poselab.pose.predict.load_run` needs nothing else):
  run.yaml            resolved TrainConfig, model config, codec, bodyparts, project config
  split.json          seeded train / validation / test split (image paths)
  last.pt             the latest finished epoch: the model when there is no validation split
  best.pt             the checkpoint with the lowest VALIDATION error (only with a validation
                      split; runs written before validation splits existed chose it on test)
  metrics.csv         per epoch: losses, train/val/test pixel error, lr, seconds
  learning-curve.png

Every write is atomic (a crash leaves the old or the new file), and under torchrun only rank
0 holds a RunDir, so no two processes ever write the same file.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import yaml

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.labels import LabeledFrames
from poselab.pose.data import Split, read_split, write_split
from poselab.pose.engine import save_checkpoint

METRIC_COLUMNS = ["epoch", "loss", "heatmap_loss", "locref_loss", "train_px_error",
                  "val_px_error", "val_pck5", "test_px_error", "test_rmse", "test_pck5", "lr",
                  "seconds", "elapsed_minutes"]

# How the model that `evaluate`, `analyze` and `export` use by default was chosen.
SELECTED_ON_VAL = "best on the validation split"
FINAL = "final checkpoint (no validation split: nothing chosen)"
SELECTED_ON_TEST = ("best.pt of a run made before validation splits: chosen on the TEST "
                    "split, so its test error is optimistic; retrain with --val-fraction")
LAST = "last checkpoint"
CHOICES = ("auto", "best", "last")


class RunDir:
    """The files of one run. `create` makes a new folder; `RunDir(path)` opens one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.created = False  # True when this object made the folder (and may remove it)

    @classmethod
    def create(cls, models_dir: Path, name: str) -> RunDir:
        """A new, empty run folder models/<name>/.

        Raises:
            PoselabError: the name is not a plain folder name, or the run exists.
        """
        if not name or Path(name).name != name or name in (".", ".."):
            raise PoselabError(f"run name {name!r}: use a plain folder name (no '/')")
        path = models_dir / name
        if path.exists():
            raise PoselabError(f"{path}: run already exists; pick another --name or --resume it")
        path.mkdir(parents=True)
        run = cls(path)
        run.created = True
        return run

    @classmethod
    def find(cls, project_root: Path, run: str | Path) -> RunDir:
        """A run given as a folder, or as a name under the project's models/."""
        path = Path(run)
        path = path if path.is_dir() else project_root / "models" / str(run)
        if not ((path / "run.yaml").is_file() or (path / "ensemble.yaml").is_file()):
            raise PoselabError(f"{run}: not a poselab run (no run.yaml); runs live in "
                               f"{project_root / 'models'}/<run>/")
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    def remove(self) -> None:
        """Delete a folder this object created (a run that failed before its first epoch)."""
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)

    # ------------------------------------------------------------------ description and split
    def write_info(self, info: dict[str, Any]) -> None:
        atomic_write_text(self.path / "run.yaml", yaml.safe_dump(info, sort_keys=False))

    def write_split(self, split: Split, frames: LabeledFrames, seed: int, train_fraction: float,
                    val_fraction: float) -> None:
        write_split(self.path / "split.json", split, frames, seed, train_fraction, val_fraction)

    def read_split(self, frames: LabeledFrames) -> Split:
        return read_split(self.path / "split.json", frames)

    # ------------------------------------------------------------------ checkpoints
    def save(self, state: dict[str, Any], best: bool) -> None:
        """last.pt always; best.pt too when this epoch is the best on validation."""
        save_checkpoint(self.path / "last.pt", **state)
        if best:
            save_checkpoint(self.path / "best.pt", **state)

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    def read_metrics(self) -> list[dict[str, str]]:
        if not self.metrics_csv.exists():
            return []
        with open(self.metrics_csv, newline="") as f:
            return list(csv.DictReader(f))

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Add an epoch's row (the whole file is rewritten atomically: it is small)."""
        self._write_metrics([*self.read_metrics(), row])

    def truncate_metrics(self, last_epoch: int) -> None:
        """On resume, drop rows past the checkpoint's epoch (written after it, then lost)."""
        rows = self.read_metrics()
        kept = [r for r in rows if int(r["epoch"]) <= last_epoch]
        if len(kept) != len(rows):
            self._write_metrics(kept)

    def elapsed_minutes(self) -> float:
        """Wall-clock minutes of earlier sessions of this run (0 for a new run)."""
        rows = self.read_metrics()
        return float(rows[-1].get("elapsed_minutes") or 0.0) if rows else 0.0

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        atomic_write_text(self.metrics_csv, buffer.getvalue())

    def plot(self) -> None:
        from poselab.viz.plots import plot_learning_curve

        plot_learning_curve(self.metrics_csv, self.path / "learning-curve.png")


def selected_checkpoint(run: str | Path, which: str = "auto") -> tuple[Path, str]:
    """The checkpoint to use by default and the rule that chose it.

    "auto": best.pt when the run has a validation split (chosen on it), else last.pt (the
    final checkpoint); "best" / "last" force one (an old run's best.pt, chosen on test,
    says so).

    Raises:
        PoselabError: an unknown choice (listing the choices) or a missing checkpoint.
    """
    import json

    run = Path(run)
    if which not in CHOICES:
        raise PoselabError(f"--which {which!r}: choose one of {', '.join(CHOICES)}")
    try:
        split = json.loads((run / "split.json").read_text(encoding="utf-8"))
        has_val = bool(split.get("val"))
    except (OSError, ValueError, AttributeError):
        has_val = False
    best, last = run / "best.pt", run / "last.pt"
    if which == "last" or (which == "auto" and not has_val):
        path, rule = last, (LAST if which == "last" else FINAL)
    else:
        path = best
        rule = SELECTED_ON_VAL if has_val else SELECTED_ON_TEST
        if not best.is_file() and has_val:  # stopped before its first validation
            path, rule = last, LAST + " (no validation checkpoint was saved)"
    if not path.is_file():
        raise PoselabError(f"{path}: checkpoint not found"
                           + (" (this run has no validation split, so no best.pt; use "
                              "--which last)" if path == best else ""))
    return path, rule
