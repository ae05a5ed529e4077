"""`poselab.pose.training`: fine-tune a PoseNet on a project's labeled frames, into a run dir.

`train()` checks everything that can be checked first (labels, options, split, flip pairs,
device, backbone and weights), then creates the run folder (see run_dir.py for its files),
and hands the loop to trainer.py. A failure before the first finished epoch removes the
folder it created, so the same --name can be used again.

Resume (`resume=RUN`) restores model, optimizer, schedule and RNG and continues at the next
epoch; each epoch's shuffling and augmentation are seeded by (seed, epoch), so a resumed run
sees the same batches as an uninterrupted one. Multi-GPU: `torchrun --nproc_per_node N -m
poselab train ...` (DDP; rank 0 evaluates and writes; see distributed.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.labels import LabeledFrames, load_labeled_frames
from poselab.io.project import Project, open_project
from poselab.pose.augment import AugmentConfig, auto_crop_size, flip_pair_indices
from poselab.pose.data import PoseDataset, Split, make_split, worker_init_fn
from poselab.pose.distributed import Context
from poselab.pose.engine import load_checkpoint, resolve_device
from poselab.pose.ensemble import ENSEMBLE_FILE, is_ensemble
from poselab.pose.evaluation import eval_loader
from poselab.pose.flip import (
    detect_flip_pairs,
    flip_permutation,
    mirror_mismatch,
    unpaired_sided,
)
from poselab.pose.heatmaps import Codec, pose_loss
from poselab.pose.models.posenet import PoseNet
from poselab.pose.predict import autocast_dtype, read_run_info
from poselab.pose.run_dir import RunDir
from poselab.pose.schedule import floor_epochs
from poselab.pose.train_config import TrainConfig
from poselab.pose.trainer import EvalSets, Progress, Trainer, load_progress


@dataclass
class _Plan:
    """Everything decided before the run folder exists."""

    project: Project
    frames: LabeledFrames
    cfg: TrainConfig
    split: Split
    train_fraction: float
    flip_pairs: list
    resume: RunDir | None
    state: dict | None


def _no_flips(cfg: TrainConfig, why: str) -> list:
    print(f"note: no mirror flips ({why})")
    cfg.augment = {**cfg.augment, "hflip_prob": 0.0}
    cfg.test_flip = False
    return []


def _flip_pairs(project: Project, augment: AugmentConfig, cfg: TrainConfig,
                frames: LabeledFrames | None = None,
                sizes: dict[Path, tuple[int, int]] | None = None) -> list:
    """Left/right bodypart pairs a horizontal flip swaps: config.yaml flip_pairs, else the
    pairs the names give (leftear/rightear); [] when nothing is flipped.

    A bodypart that looks sided but has no pair (LF_paw) would be mislabeled by a flip:
    with cfg.flip_if_paired the flips are turned off (and said), else it is an error. With
    flip_if_paired, flips are also turned off when mirrored frames would put keypoints
    where they are never labeled (two views side by side: `flip.mirror_mismatch`).
    """
    if augment.hflip_prob <= 0 and not cfg.test_flip:
        return []
    configured = project.get("flip_pairs")
    if configured:
        flip_pair_indices(configured, project.bodyparts)  # checked now, not in a worker
        pairs, unpaired = [tuple(p) for p in configured], []
    else:
        pairs = detect_flip_pairs(project.bodyparts)
        unpaired = unpaired_sided(project.bodyparts, pairs)
    if unpaired and cfg.flip_if_paired:
        return _no_flips(cfg, f"{unpaired} look left/right but have no pair; flip_pairs in "
                         "config.yaml, e.g. [[LF_paw, RF_paw]], turns them on")
    if cfg.flip_if_paired and frames is not None:
        sizes = sizes if sizes is not None else _folder_sizes(frames)
        widths = [sizes[p.parent][1] for p in frames.paths]
        off = mirror_mismatch(frames.keypoints, widths, frames.bodyparts, pairs)
        if off:
            more = " and others" if len(off) > 3 else ""
            return _no_flips(cfg, f"a mirror would move {off[:3]}{more} about a frame's width "
                             "against the others, as with two views side by side")
    if configured:
        return pairs
    if unpaired:
        raise PoselabError(f"{project.config_path}: flips need every left/right bodypart "
                           f"paired; {unpaired} has no counterpart: set flip_pairs, e.g. "
                           "[[leftear, rightear]], in config.yaml, or turn flips off "
                           "(--set augment.hflip_prob=0 --set test_flip=false)")
    return pairs


def _folder_sizes(frames: LabeledFrames) -> dict[Path, tuple[int, int]]:
    """(H, W) of the labeled images per folder, read from one image per folder (a folder
    holds the frames of one video, so they share a size)."""
    import cv2

    sizes: dict[Path, tuple[int, int]] = {}
    for path in frames.paths:
        if path.parent not in sizes:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise PoselabError(f"{path}: unreadable image")
            sizes[path.parent] = image.shape[:2]
    return sizes


def _split_seed(cfg: TrainConfig) -> int:
    return cfg.seed if cfg.split_seed is None else cfg.split_seed


def _train_fraction(project: Project, cfg: TrainConfig) -> float:
    if cfg.train_fraction is not None:
        return cfg.train_fraction
    value = project.get("TrainingFraction") or [0.95]
    first = value[0] if isinstance(value, list) and value else value
    if isinstance(first, bool) or not isinstance(first, (int, float)) or not 0 < first < 1:
        raise PoselabError(f"{project.config_path}: TrainingFraction must be a list of numbers "
                           f"in (0, 1), e.g. [0.95]; got {value!r}")
    return float(first)


def _plan(config_path, cfg, resume, epochs, max_minutes, split: Split | None = None) -> _Plan:
    project = open_project(config_path)
    frames = load_labeled_frames(project)
    if len(frames) < 2:
        raise PoselabError(f"{project.config_path}: {len(frames)} labeled frames; label at "
                           "least 2 (poselab label) before training")
    state, run = None, None
    if resume is not None:
        run = RunDir.find(project.root, resume)
        info = read_run_info(run.path)
        cfg = TrainConfig.from_dict(info["train"], str(run.path / "run.yaml"))
        cfg.max_minutes = None
        state = load_checkpoint(run.path / "last.pt")
    else:
        cfg = dataclasses.replace(cfg or TrainConfig())
    cfg.epochs = epochs if epochs is not None else cfg.epochs
    cfg.max_minutes = max_minutes if max_minutes is not None else cfg.max_minutes
    cfg.validate()
    sizes = _folder_sizes(frames)  # one image read per folder, for crops and flips
    if (cfg.augment or {}).get("crop_size") == "auto":  # resolved now, recorded in run.yaml
        side = auto_crop_size(frames.keypoints, list(sizes.values()), cfg.input_scale)
        cfg.augment = {**cfg.augment, "crop_size": list(side)}
    augment = AugmentConfig.from_dict(cfg.augment)
    fraction = _train_fraction(project, cfg)
    if run is not None:  # the run's own split, even if frames were labeled since
        split = run.read_split(frames)
    elif split is None:
        split = make_split(len(frames), fraction, _split_seed(cfg), cfg.val_fraction)
    return _Plan(project, frames, cfg, split, fraction,
                 _flip_pairs(project, augment, cfg, frames, sizes), run, state)


def _run_info(plan: _Plan, model: PoseNet, codec: Codec) -> dict:
    project = plan.project
    return {"train": plan.cfg.to_dict(), "model": model.config(), "codec": vars(codec),
            "bodyparts": project.bodyparts, "scorer": project.scorer,
            "project_config": str(project.config_path), "mean": list(model.mean),
            "std": list(model.std), "pcutoff": project.pcutoff,
            "skeleton": [list(p) for p in project.skeleton],
            "flip_pairs": [list(p) for p in plan.flip_pairs],
            "created": dt.datetime.now().isoformat(timespec="seconds")}


def train(
    config_path: str | os.PathLike,
    cfg: TrainConfig | None = None,
    *,
    name: str | None = None,
    resume: str | os.PathLike | None = None,
    epochs: int | None = None,
    max_minutes: float | None = None,
    progress: bool | None = None,
    ensemble: int = 1,
) -> Path:
    """Train a pose model (or an ensemble of them) on a project's labeled frames.

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
        ensemble: train this many members (seeds seed, seed + 1, ...; one split) into
            models/<name>/member-<i>/, used as one model by evaluate and analyze (see
            pose/ensemble.py); a time budget is shared equally. Resuming an ensemble
            finishes its members.

    Returns:
        The run dir.

    Raises:
        PoselabError: bad labels, options, split, device, backbone or weights (before any
            folder is created).
    """
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise PoselabError(f"--ensemble {ensemble!r}: the number of members must be >= 1")
    ctx = Context()
    ok = False
    try:
        resumes_ensemble = resume is not None and is_ensemble(
            RunDir.find(open_project(config_path).root, resume).path)
        if ensemble > 1 or resumes_ensemble:
            run = _train_ensemble(ctx, config_path, cfg, name, resume, epochs, max_minutes,
                                  progress, ensemble)
        else:
            run = _train(ctx, config_path, cfg, name, resume, epochs, max_minutes, progress)
        ok = True
        return run
    finally:
        ctx.close(ok)


def _train_ensemble(ctx: Context, config_path, cfg, name, resume, epochs, max_minutes,
                    progress, n: int) -> Path:
    """Members one after the other into one folder; an interrupted ensemble resumes."""
    project = open_project(config_path)
    if resume is not None:
        folder = RunDir.find(project.root, resume)
        doc = yaml.safe_load((folder.path / ENSEMBLE_FILE).read_text(encoding="utf-8"))
        base = TrainConfig.from_dict(doc["train"], str(folder.path / ENSEMBLE_FILE))
        names, seeds = list(doc["members"]), list(doc["seeds"])
    else:
        plan = _plan(config_path, cfg, None, epochs, max_minutes)  # every check, no folder
        base = plan.cfg
        names = [f"member-{i}" for i in range(n)]
        seeds = [base.seed + i for i in range(n)]

        def open_folder() -> RunDir:
            made = RunDir.create(project.root / "models",
                                 name or f"{base.backbone}-ensemble-"
                                         f"{dt.datetime.now():%Y%m%d-%H%M%S}")
            doc = {"members": names, "seeds": seeds, "train": base.to_dict()}
            atomic_write_text(made.path / ENSEMBLE_FILE, yaml.safe_dump(doc, sort_keys=False))
            return made

        folder = ctx.decide(open_folder)
    budget = max_minutes if max_minutes is not None else base.max_minutes
    share = budget / len(names) if budget is not None else None
    try:
        for member, seed in zip(names, seeds, strict=True):
            path = folder.path / member
            if (path / "last.pt").is_file():
                _train(ctx, config_path, None, None, path, epochs, share, progress)
            else:
                shutil.rmtree(path, ignore_errors=True)  # a member stopped before epoch 1
                member_cfg = dataclasses.replace(base, seed=seed,
                                                 split_seed=_split_seed(base), max_minutes=share)
                if epochs is not None:
                    member_cfg.epochs = epochs
                _train(ctx, config_path, member_cfg, member, None, None, None, progress,
                       models_dir=folder.path)
    except BaseException:
        if resume is None and not any((folder.path / m / "last.pt").is_file() for m in names):
            folder.remove()  # nothing to resume: do not block the name
        raise
    return folder.path


def _train(ctx: Context, config_path, cfg, name, resume, epochs, max_minutes, progress,
           models_dir: Path | None = None, split: Split | None = None) -> Path:
    """One model into a run folder; `split` replaces the seeded one (cross-fitting)."""
    plan = _plan(config_path, cfg, resume, epochs, max_minutes, split)
    cfg, split = plan.cfg, plan.split
    if len(split.train) < ctx.world:
        raise PoselabError(f"{len(split.train)} training frame(s) for {ctx.world} processes: "
                           "each process needs at least one; label more or use fewer")
    device = ctx.device(resolve_device(cfg.device))
    dtype = autocast_dtype(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    model = PoseNet(cfg.backbone, len(plan.project.bodyparts),
                    weights=cfg.weights if plan.state is None else "none",
                    output_stride=cfg.output_stride, backbone_stride=cfg.backbone_stride,
                    head_width=cfg.head_width, head_direct=cfg.head_direct, head=cfg.head)
    codec = Codec(stride=cfg.output_stride, sigma=cfg.sigma, locref_std=cfg.locref_std,
                  locref_radius=cfg.locref_radius)

    # Everything is checked: now (and only on rank 0) the folder is made and written.
    def open_run() -> RunDir:
        if plan.resume is not None:
            return plan.resume
        folder = RunDir.create(models_dir or plan.project.root / "models",
                               name or f"{cfg.backbone}-{dt.datetime.now():%Y%m%d-%H%M%S}")
        try:
            folder.write_split(split, plan.frames, _split_seed(cfg), plan.train_fraction,
                               cfg.val_fraction)
        except BaseException:
            folder.remove()
            raise
        return folder

    run = ctx.decide(open_run)
    writer = run if ctx.is_main else None
    state = Progress()
    try:
        trainer = _build_trainer(ctx, plan, model, codec, device, dtype, writer, progress)
        if plan.state is None:
            cfg.epochs = floor_epochs(cfg, trainer.steps_per_epoch)
        if writer is not None:
            writer.write_info(_run_info(plan, model, codec))  # epochs may grow on resume
            trainer.on_plan = lambda _: writer.write_info(_run_info(plan, model, codec))
        if plan.state is not None:
            model.load_state_dict(plan.state.get("raw_model", plan.state["model"]))
            trainer.optimizer.load_state_dict(plan.state["optimizer"])
            state = load_progress(plan.state, writer)
            if writer is not None:
                writer.truncate_metrics(state.completed)
        trainer.start_ema(plan.state)
        trainer.fit(state)
        if writer is not None:
            note = trainer.calibrate()
            if note:
                print(note, flush=True)
    except KeyboardInterrupt:
        if writer is not None:
            _report_interrupt(writer, state, plan.resume is None)
        raise
    except BaseException:
        if writer is not None and plan.resume is None and state.completed < 0:
            writer.remove()  # nothing to resume: do not block the name
        raise
    return run.path


def _report_interrupt(run: RunDir, state: Progress, new_run: bool) -> None:
    running = state.completed + 2  # 1-based number of the epoch that was running
    if state.completed < 0:
        if new_run:
            run.remove()
            print(f"\ninterrupted during epoch {running}, before any epoch finished; "
                  f"{run.path} removed")
        else:
            print(f"\ninterrupted during epoch {running}; nothing new saved")
        return
    print(f"\ninterrupted during epoch {running}; {run.path / 'last.pt'} holds epoch "
          f"{state.completed + 1}: continue with --resume {run.name}")


def _build_trainer(ctx, plan: _Plan, model: PoseNet, codec: Codec, device, dtype,
                   writer: RunDir | None, progress) -> Trainer:
    cfg, frames, split = plan.cfg, plan.frames, plan.split
    model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameter_groups(cfg.lr, cfg.backbone_lr_factor),
                                  lr=cfg.lr, weight_decay=cfg.weight_decay)
    augment = AugmentConfig.from_dict(cfg.augment)
    train_ds = PoseDataset(frames, split.train, codec, model.mean, model.std, augment=augment,
                           train=True, flip_pairs=plan.flip_pairs, seed=cfg.seed,
                           input_scale=cfg.input_scale)
    generator = torch.Generator()
    sampler = ctx.sampler(train_ds, cfg.seed)
    # Per process: under DDP each process holds only its shard of the training frames.
    shard = ctx.shard_size(len(train_ds))
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=sampler is None,
                        sampler=sampler, num_workers=cfg.workers, generator=generator,
                        worker_init_fn=worker_init_fn, drop_last=shard > cfg.batch_size,
                        pin_memory=device.type == "cuda")

    def make_eval(indices):
        return eval_loader(frames, indices, codec, model.mean, model.std,
                           input_scale=cfg.input_scale) if indices else None

    evals = EvalSets() if writer is None else EvalSets(
        val=make_eval(split.val), test=make_eval(split.test),
        train=make_eval(split.train) if cfg.eval_train else None,
        health=make_eval(split.train[:: max(1, len(split.train) // 16)][:16]))

    def loss_fn(m, batch):
        image = batch["image"]
        if cfg.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        heatmaps, offsets = m(image)
        return pose_loss(heatmaps, offsets, batch, locref_weight=cfg.locref_weight,
                         mask_unlabeled=cfg.mask_unlabeled, heatmap_loss=cfg.heatmap_loss)

    return Trainer(model=model, net=ctx.wrap(model, device), optimizer=optimizer,
                   loader=loader, train_ds=train_ds, sampler=sampler, generator=generator,
                   cfg=cfg, codec=codec, loss_fn=loss_fn, device=device, dtype=dtype,
                   evals=evals, pcutoff=plan.project.pcutoff, bodyparts=plan.project.bodyparts,
                   ctx=ctx, run=writer, progress=progress,
                   flip_perm=flip_permutation(plan.project.bodyparts, plan.flip_pairs)
                   if cfg.test_flip else None)
