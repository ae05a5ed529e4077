"""What the Train page shows: presets with their measured figures, and the project's runs.

A run is a folder models/<run>/ written by `poselab train` (poselab.pose.run_dir): run.yaml
(the resolved options, the planned epochs), metrics.csv (one row per finished epoch),
learning-curve.png (redrawn by training after every epoch), last.pt, and after
`poselab evaluate --plot` evaluation/metrics.json and images. Everything here is read from
those files, so a run trained from a terminal shows the same as one trained from the page.

A run's state: training (a job of the app is on it), finished (every planned epoch done),
resumable (a checkpoint, epochs left, no job on it: interrupted or stopped), or empty.
The ETA is the epochs left times the mean wall time of the last few epochs.

Extending: a new per-run figure goes into `run_summary`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from starlette.exceptions import HTTPException

from poselab.app.paths import served_file

ETA_EPOCHS = 5  # epochs averaged for the ETA
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def presets() -> dict:
    """{"machine", "presets": [{name, summary, options, figures}]} for every shipped preset."""
    from poselab.pose.train_config import load_preset, preset_dir, preset_names

    figures = yaml.safe_load((Path(__file__).parent / "presets.yaml").read_text("utf-8"))
    out = []
    for name in preset_names():
        text = (preset_dir() / f"{name}.yaml").read_text("utf-8")
        comment = []
        for line in text.splitlines():
            if not line.startswith("#"):
                break
            if not line.lstrip("# ").startswith("Use:"):
                comment.append(line.lstrip("#").strip())
        options = load_preset(name)
        out.append({"name": name, "summary": " ".join(comment),
                    "options": {k: options.get(k) for k in ("backbone", "epochs", "batch_size",
                                                            "input_scale") if k in options},
                    "figures": figures["presets"].get(name)})
    return {"machine": figures["machine"], "presets": out}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def read_metrics(run: Path) -> list[dict]:
    """metrics.csv rows with numbers (empty cells: None)."""
    path = run / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _evaluation(run: Path) -> dict | None:
    try:
        return json.loads((run / "evaluation" / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _epoch_seconds(rows: list[dict]) -> float | None:
    """Wall seconds per epoch over the last few: from elapsed_minutes (evaluation and
    checkpoints included), else the training seconds of a single epoch."""
    elapsed = [r.get("elapsed_minutes") for r in rows[-(ETA_EPOCHS + 1):]]
    steps = [(b - a) * 60 for a, b in zip(elapsed[:-1], elapsed[1:], strict=True)
             if a is not None and b is not None and b > a]
    if steps:
        return sum(steps) / len(steps)
    last = rows[-1].get("seconds") if rows else None
    return float(last) if last else None


def run_summary(run: Path, busy: bool) -> dict:
    """One run's state, progress, ETA and headline figures."""
    info = _read_yaml(run / "run.yaml")
    train = info.get("train") or {}
    rows = read_metrics(run)
    planned = int(train.get("epochs") or 0)
    done = len(rows)
    per_epoch = _epoch_seconds(rows)
    if busy:
        state = "training"
    elif planned and done >= planned:
        state = "finished"
    elif (run / "last.pt").is_file():
        state = "resumable"
    else:
        state = "empty"
    last = rows[-1] if rows else {}
    tested = [r for r in rows if r.get("test_px_error") is not None]
    evaluation = _evaluation(run)
    return {
        "name": run.name,
        "state": state,
        "backbone": train.get("backbone"),
        "created": info.get("created"),
        "epochs": planned,
        "done": done,
        "seconds_per_epoch": per_epoch,
        "eta_seconds": per_epoch * max(planned - done, 0) if per_epoch and busy else None,
        "elapsed_minutes": last.get("elapsed_minutes"),
        "loss": last.get("loss"),
        "test_px_error": tested[-1]["test_px_error"] if tested else None,
        "evaluated": evaluation is not None,
        "eval_test_px_error": ((evaluation or {}).get("test") or {}).get("mean_px_error"),
        "eval_test_pck5": ((evaluation or {}).get("test") or {}).get("pck5"),
        "curve": (run / "learning-curve.png").is_file(),
        "mtime": (run / "metrics.csv").stat().st_mtime if rows else None,
    }


def run_dirs(root: Path) -> list[Path]:
    models = root / "models"
    if not models.is_dir():
        return []
    runs = [p for p in models.iterdir() if (p / "run.yaml").is_file()]
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


def run_dir(root: Path, name: str) -> Path:
    """models/<name> of the project; 404 for anything that is not one of its runs."""
    runs = {p.name: p for p in run_dirs(root)}
    if name not in runs:
        raise HTTPException(404, f"no run {name!r} in {root / 'models'}")
    return runs[name]


def run_detail(run: Path, busy: bool) -> dict:
    """Everything the run panel shows: summary, options, metrics rows, evaluation, images."""
    info = _read_yaml(run / "run.yaml")
    evaluation = _evaluation(run)
    images: dict[str, list[str]] = {}
    folder = run / "evaluation"
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                group = path.parent.name if path.parent != folder else "summary"
                images.setdefault(group, []).append(path.relative_to(run).as_posix())
    return {**run_summary(run, busy), "options": info.get("train") or {},
            "bodyparts": info.get("bodyparts") or [], "metrics": read_metrics(run),
            "evaluation": evaluation, "images": images}


def run_file(run: Path, rel: str) -> Path:
    """An image of the run (learning curve, evaluation images)."""
    if rel.startswith("/") or ".." in Path(rel).parts:
        raise HTTPException(404, f"no such file: {rel}")
    return served_file(run / rel, run, IMAGE_SUFFIXES)
