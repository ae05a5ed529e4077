"""`poselab.pose.training`: fine-tune a PoseNet on a project's labeled frames, into a run dir.

Run dir `models/<run>/` (self-describing: `poselab.pose.predict.load_run` needs nothing else):
  run.yaml            resolved TrainConfig, model config, codec, bodyparts, project config
  split.json          seeded train/test split (image paths)
  last.pt / best.pt   checkpoints: tensors and plain data only (torch.load weights_only=True)
  metrics.csv         per epoch: losses, train/test pixel error, lr, seconds
  learning-curve.png

Resume (`resume=RUN`) restores model, optimizer, schedule and RNG and continues at the next
epoch; each epoch's shuffling and augmentation are seeded by (seed, epoch), so a resumed run
sees the same batches as an uninterrupted one. Multi-GPU: `torchrun --nproc_per_node N -m
poselab train ...` (DDP; rank 0 evaluates and writes).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import os
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from poselab.errors import PoselabError
from poselab.io.labels import load_labeled_frames
from poselab.io.project import open_project
from poselab.pose import distributed as ddp
from poselab.pose.augment import AugmentConfig
from poselab.pose.data import PoseDataset, read_split, split_indices, worker_init_fn, write_split
from poselab.pose.engine import load_checkpoint, resolve_device, save_checkpoint, train_one_epoch
from poselab.pose.evaluation import eval_loader, evaluate_split
from poselab.pose.heatmaps import Codec, pose_loss
from poselab.pose.models.posenet import PoseNet
from poselab.pose.predict import autocast_dtype, read_run_info
from poselab.pose.train_config import TrainConfig
from poselab.viz.plots import plot_learning_curve

METRIC_COLUMNS = ["epoch", "loss", "heatmap_loss", "locref_loss", "train_px_error",
                  "test_px_error", "test_rmse", "test_pck5", "lr", "seconds", "elapsed_minutes"]


def _lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Multiplier of cfg.lr at a (0-based) epoch: linear warm-up, then step drops."""
    if epoch < cfg.warmup_epochs:
        return 0.1 + 0.9 * epoch / cfg.warmup_epochs
    factor = 1.0
    for at, f in zip(cfg.lr_drops, cfg.lr_drop_factors, strict=True):
        if epoch >= int(round(at * cfg.epochs)):
            factor *= f
    return factor


def _new_run_dir(project_root: Path, cfg: TrainConfig, name: str | None) -> Path:
    name = name or f"{cfg.backbone}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    run = project_root / "models" / name
    if run.exists():
        raise PoselabError(f"{run}: run already exists; pick another --name or --resume it")
    run.mkdir(parents=True)
    return run


def _flip_pairs(project, augment: AugmentConfig) -> list:
    """Left/right bodypart pairs that a horizontal flip swaps (config.yaml flip_pairs)."""
    if augment.hflip_prob <= 0:
        return []
    pairs = project.get("flip_pairs") or []
    if not pairs:
        raise PoselabError(f"{project.config_path}: augment.hflip_prob > 0 needs flip_pairs, "
                           "e.g. [[leftear, rightear]], in config.yaml")
    return [tuple(p) for p in pairs]


def _write_metrics_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def _elapsed_before(path: Path) -> float:
    if not path.exists():
        return 0.0
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1].get("elapsed_minutes") or 0.0) if rows else 0.0


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """On resume, drop rows past the checkpoint's epoch (written after it, then lost)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= last_epoch]
    path.unlink()
    for r in rows:
        _write_metrics_row(path, r)


def train(
    config_path: str | os.PathLike,
    cfg: TrainConfig | None = None,
    *,
    name: str | None = None,
    resume: str | os.PathLike | None = None,
    epochs: int | None = None,
    max_minutes: float | None = None,
    progress: bool | None = None,
) -> Path:
    """Train a pose model on a project's labeled frames.

    Args:
        config_path: the project's config.yaml.
        cfg: training options (defaults: `TrainConfig()`); not used on resume, which
            continues with the run's own options.
        name: run folder name under models/ (default `<backbone>-<date>-<time>`).
        resume: a run dir (or its name under models/) to continue.
        epochs: override cfg.epochs (or extend a resumed run; its lr schedule, which is a
            fraction of the epochs, stretches accordingly).
        max_minutes: override cfg.max_minutes (the time budget of this call).
        progress: show progress bars (None: only on a terminal).

    Returns:
        The run dir.
    """
    project = open_project(config_path)
    frames = load_labeled_frames(project)
    if len(frames) < 2:
        raise PoselabError(f"{project.config_path}: {len(frames)} labeled frames; label at "
                           "least 2 (poselab label) before training")
    rank, world = ddp.setup()
    state = None
    if resume is not None:
        run = Path(resume)
        run = run if run.is_dir() else project.root / "models" / str(resume)
        info = read_run_info(run)
        cfg = TrainConfig.from_dict(info["train"], str(run / "run.yaml"))
        cfg.max_minutes = None
        state = load_checkpoint(run / "last.pt")
    else:
        cfg = dataclasses.replace(cfg or TrainConfig())
    cfg.epochs = epochs if epochs is not None else cfg.epochs
    cfg.max_minutes = max_minutes if max_minutes is not None else cfg.max_minutes
    cfg.validate()
    if state is None:
        run = ddp.broadcast(_new_run_dir(project.root, cfg, name) if rank == 0 else None)
    fraction = cfg.train_fraction or float((project.get("TrainingFraction") or [0.95])[0])
    if state is None:
        train_idx, test_idx = split_indices(len(frames), fraction, cfg.seed)
    else:  # the run's own split, even if frames were labeled since
        train_idx, test_idx = read_split(run / "split.json", frames)

    device = ddp.device_for(resolve_device(cfg.device))
    dtype = autocast_dtype(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = PoseNet(cfg.backbone, len(project.bodyparts), weights=cfg.weights if state is None
                    else "none", output_stride=cfg.output_stride,
                    backbone_stride=cfg.backbone_stride, head_width=cfg.head_width,
                    head_direct=cfg.head_direct)
    codec = Codec(stride=cfg.output_stride, sigma=cfg.sigma, locref_std=cfg.locref_std,
                  locref_radius=cfg.locref_radius)
    if rank == 0:
        if state is None:
            write_split(run / "split.json", train_idx, test_idx, frames, cfg.seed, fraction)
        info = {"train": cfg.to_dict(), "model": model.config(), "codec": vars(codec),
                "bodyparts": project.bodyparts, "scorer": project.scorer,
                "project_config": str(project.config_path), "mean": list(model.mean),
                "std": list(model.std), "pcutoff": project.pcutoff,
                "skeleton": [list(p) for p in project.skeleton],
                "created": dt.datetime.now().isoformat(timespec="seconds")}
        (run / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))  # epochs may grow
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameter_groups(cfg.lr, cfg.backbone_lr_factor),
                                  lr=cfg.lr, weight_decay=cfg.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    start_epoch, best = 0, math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best = int(state["epoch"]) + 1, float(state["best_test_px_error"])
        _truncate_metrics(run / "metrics.csv", start_epoch - 1)
    net = ddp.wrap(model, device)

    augment = AugmentConfig.from_dict(cfg.augment)
    train_ds = PoseDataset(frames, train_idx, codec, model.mean, model.std, augment=augment,
                           train=True, flip_pairs=_flip_pairs(project, augment), seed=cfg.seed,
                           input_scale=cfg.input_scale)
    generator = torch.Generator()
    sampler = ddp.sampler(train_ds, cfg.seed)
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.workers, generator=generator,
                        worker_init_fn=worker_init_fn,
                        drop_last=len(train_idx) > cfg.batch_size, pin_memory=device.type == "cuda")
    test_loader = eval_loader(frames, test_idx, codec, model.mean, model.std,
                              input_scale=cfg.input_scale)
    train_eval_loader = eval_loader(frames, train_idx, codec, model.mean, model.std,
                                    input_scale=cfg.input_scale)

    def loss_fn(m, batch):
        heatmaps, offsets = m(batch["image"].contiguous(memory_format=torch.channels_last)
                              if cfg.channels_last else batch["image"])
        return pose_loss(heatmaps, offsets, batch, locref_weight=cfg.locref_weight,
                         mask_unlabeled=cfg.mask_unlabeled)

    started, epoch_seconds = time.monotonic(), 0.0
    prior_minutes = _elapsed_before(run / "metrics.csv")  # wall time of earlier sessions
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, cfg.epochs):
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * _lr_factor(cfg, epoch)
            generator.manual_seed(cfg.seed * 100_003 + epoch)  # order + worker seeds per epoch
            train_ds.set_epoch(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
            stats = train_one_epoch(net, loader, optimizer, loss_fn, device,
                                    autocast_dtype=dtype, progress=progress,
                                    desc=f"epoch {epoch + 1}/{cfg.epochs}")
            epoch_seconds = stats["seconds"]
            elapsed = (time.monotonic() - started) / 60
            out_of_time = (cfg.max_minutes is not None
                           and elapsed + epoch_seconds / 60 > cfg.max_minutes)
            out_of_time = bool(ddp.broadcast(out_of_time))
            last = epoch == cfg.epochs - 1 or out_of_time
            row = {"epoch": epoch, "lr": optimizer.param_groups[-1]["lr"], **stats}
            if rank == 0 and ((epoch + 1) % cfg.eval_every == 0 or last):
                test = evaluate_split(model, test_loader, codec, device, dtype,
                                      project.pcutoff, project.bodyparts)[0]
                row.update(test_px_error=test["mean_px_error"], test_rmse=test["rmse"],
                           test_pck5=test["pck5"])
                if cfg.eval_train:
                    row["train_px_error"] = evaluate_split(
                        model, train_eval_loader, codec, device, dtype, project.pcutoff,
                        project.bodyparts)[0]["mean_px_error"]
                is_best = test["mean_px_error"] < best
                best = min(best, test["mean_px_error"])
                _save(run, model, optimizer, epoch, best, cfg, is_best)
                _log(epoch, cfg, row, time.monotonic() - started, epoch + 1 - start_epoch)
            elif rank == 0:
                _save(run, model, optimizer, epoch, best, cfg, False)
            if rank == 0:
                row["elapsed_minutes"] = prior_minutes + (time.monotonic() - started) / 60
                _write_metrics_row(run / "metrics.csv", row)
                plot_learning_curve(run / "metrics.csv", run / "learning-curve.png")
            if out_of_time:
                if rank == 0:
                    print(f"max_minutes={cfg.max_minutes} reached after epoch {epoch + 1}; "
                          f"stopped cleanly (resume with --resume {run.name})")
                break
    except KeyboardInterrupt:
        if rank == 0:
            print(f"\ninterrupted during epoch {epoch + 2}; {run / 'last.pt'} holds epoch "
                  f"{epoch + 1}: continue with --resume {run.name}")
        raise
    finally:
        ddp.cleanup()
    return run


def _save(run: Path, model, optimizer, epoch: int, best: float, cfg: TrainConfig,
          is_best: bool) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "best_test_px_error": best, "train": cfg.to_dict(), "model_config": model.config()}
    save_checkpoint(run / "last.pt", **state)
    if is_best:
        save_checkpoint(run / "best.pt", **state)


def _log(epoch: int, cfg: TrainConfig, row: dict, seconds: float, epochs_done: int) -> None:
    train_err = row.get("train_px_error")
    train_txt = f", train {train_err:.2f} px" if isinstance(train_err, float) else ""
    eta = seconds / max(epochs_done, 1) * (cfg.epochs - epoch - 1) / 60
    print(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}, test "
          f"{row['test_px_error']:.2f} px{train_txt}, lr {row['lr']:.2g}, "
          f"{row['seconds']:.1f} s/epoch, ETA {eta:.1f} min", flush=True)
