"""The training loop shared by the pose model and the MNIST warmup: no framework, just functions.

Notation: B batch. A *batch* is whatever the loader yields (a dict such as
``{"image": (B, C, H, W), "heatmaps": (B, K, h, w), "mask": (B, K)}`` for pose, or
``{"image": (B, 1, 28, 28), "label": (B,)}`` for MNIST); ``move_to`` copies every tensor in it
to the device. The model-specific parts are two small functions you pass in:

- ``loss_fn(model, batch) -> (loss, {"name": float, ...})``: forward + loss for one batch;
  the dict holds extra floats to average over the epoch (e.g. per-term losses).
- ``metric_fn(model, batch) -> {"name": Tensor (B, ...)}``: per-sample values for evaluation.
  Floating values are averaged over all samples ignoring NaN (so unlabeled keypoints do not
  count); integer values (predicted class, ids) are only collected, with ``keep=True``.

Extending: a new model family needs only those two functions and a loader; new loop features
(gradient accumulation, EMA weights) belong here as keyword arguments with a default that keeps
today's behaviour. Checkpoints hold only tensors and plain Python data, so they load with
``torch.load(weights_only=True)`` and never execute code from the file.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]]
MetricFn = Callable[[nn.Module, Any], dict[str, torch.Tensor]]


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``.

    Args:
        name: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".

    Returns:
        The device.

    Raises:
        PoselabError: the requested accelerator is not available or the name is unknown.
    """
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PoselabError(f"device {name!r}: CUDA is not available here; use --device cpu")
        return torch.device(name)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise PoselabError("device 'mps': Apple MPS is not available here; use --device cpu")
        return torch.device("mps")
    raise PoselabError(f"device {name!r}: unknown; use auto, cpu, cuda or mps")


def move_to(batch: Any, device: torch.device) -> Any:
    """Copy every tensor in a (nested) dict/list/tuple batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        # non_blocking overlaps the copy with compute when the loader pins memory.
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def batch_size(batch: Any) -> int:
    """Number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = batch.values() if isinstance(batch, Mapping) else batch
    for v in values:
        if isinstance(v, (torch.Tensor, Mapping, list, tuple)):
            return batch_size(v)
    raise TypeError("batch holds no tensor; cannot count its samples")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    device: torch.device,
    *,
    scheduler: Any | None = None,
    autocast_dtype: torch.dtype | None = None,
    clip_grad_norm: float | None = None,
    progress: bool | None = None,
    desc: str = "train",
) -> dict[str, float]:
    """Run one pass over ``loader``, one optimizer step per batch.

    Args:
        model: the network; put in train mode here (frozen submodules may be switched back
            to eval by the caller's loss_fn or by overriding ``train()``).
        loader: an iterable of batches (DataLoader or any re-iterable).
        optimizer: steps the parameters it was built with.
        loss_fn: ``loss_fn(model, batch) -> (scalar loss, dict of floats)``.
        device: where the batch goes.
        scheduler: stepped after EVERY optimizer step (per-batch schedules such as OneCycleLR);
            step epoch-wise schedulers yourself after this call.
        autocast_dtype: e.g. ``torch.bfloat16`` for mixed precision; float16 on CUDA uses a
            gradient scaler.
        clip_grad_norm: clip the global gradient norm to this value when set.
        progress: show a tqdm bar; None shows it only on a terminal.
        desc: the bar's label.

    Returns:
        ``{"loss": mean loss per sample, <extra floats averaged per sample>, "n": samples,
        "seconds": wall time}``.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the learning rate is too high).
    """
    model.train()
    scaler = torch.amp.GradScaler(
        device.type, enabled=autocast_dtype is torch.float16 and device.type == "cuda"
    )
    sums: dict[str, float] = {"loss": 0.0}
    n = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, disable=None if progress is None else not progress, leave=False)
    for step, batch in enumerate(bar):
        batch = move_to(batch, device)
        b = batch_size(batch)
        with _autocast(device, autocast_dtype):
            loss, extras = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        # .item() syncs with the device; one sync per batch is the price of a live loss.
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"{desc}: loss is {value} at step {step}; lower the lr")
        sums["loss"] += value * b
        for k, v in extras.items():
            sums[k] = sums.get(k, 0.0) + float(v) * b
        n += b
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sums['loss'] / n:.4f}")
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out.update(n=n, seconds=time.perf_counter() - start)
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    metric_fn: MetricFn,
    device: torch.device,
    *,
    autocast_dtype: torch.dtype | None = None,
    keep: bool = False,
    progress: bool | None = None,
    desc: str = "eval",
) -> dict[str, Any]:
    """Average per-sample metrics over ``loader`` in eval mode, without gradients.

    Args:
        model: the network; put in eval mode here.
        loader: an iterable of batches.
        metric_fn: ``metric_fn(model, batch) -> {name: Tensor (B, ...)}``.
        device: where the batch goes.
        autocast_dtype: mixed precision as in ``train_one_epoch``.
        keep: also return every value, concatenated on the CPU, under ``"values"``
            (needed for confusion matrices or per-keypoint tables).
        progress: show a tqdm bar; None shows it only on a terminal.
        desc: the bar's label.

    Returns:
        ``{name: nan-mean of each floating metric, "n": samples, "seconds": wall time}`` and,
        with ``keep``, ``"values": {name: Tensor (N, ...)}``.
    """
    model.eval()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    kept: dict[str, list[torch.Tensor]] = {}
    n = 0
    start = time.perf_counter()
    for batch in tqdm(loader, desc=desc, disable=None if progress is None else not progress,
                      leave=False):
        batch = move_to(batch, device)
        n += batch_size(batch)
        with _autocast(device, autocast_dtype):
            values = metric_fn(model, batch)
        for k, v in values.items():
            if v.is_floating_point():
                v = v.float()
                finite = ~torch.isnan(v)
                sums[k] = sums.get(k, 0.0) + v[finite].sum().item()
                counts[k] = counts.get(k, 0) + int(finite.sum().item())
            if keep:
                kept.setdefault(k, []).append(v.detach().cpu())
    out: dict[str, Any] = {k: sums[k] / counts[k] if counts[k] else math.nan for k in sums}
    out.update(n=n, seconds=time.perf_counter() - start)
    if keep:
        out["values"] = {k: torch.cat(v) for k, v in kept.items()}
    return out


_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype)


def _check_plain(value: Any, where: str) -> None:
    # weights_only loading accepts only these; failing here beats an unloadable file later.
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_plain(k, f"{where} key")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint entry {where} is a {type(value).__name__}; store only tensors, "
        "state dicts and plain Python data (convert paths to str, dataclasses to dict)"
    )


def save_checkpoint(path: str | os.PathLike, **data: Any) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, then os.replace.

    A crash mid-write leaves the previous checkpoint intact, never a truncated file.

    Args:
        path: the destination file (``.pt``); its folder is created.
        **data: state dicts (``model=model.state_dict()``), tensors and plain data
            (numbers, strings, lists, dicts).

    Returns:
        The path written.

    Raises:
        TypeError: an entry is not a tensor or plain data (it would not load with
            ``weights_only=True``).
    """
    _check_plain(data, "checkpoint")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())  # a checkpoint is worth the sync: hours of training

    atomic_write(path, write)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by ``save_checkpoint``, never executing code from it.

    Args:
        path: the ``.pt`` file.
        map_location: where tensors land ("cpu" lets a GPU-trained run load anywhere).

    Returns:
        The dict of entries passed to ``save_checkpoint``.

    Raises:
        PoselabError: the file is missing, truncated or not a plain-data checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise PoselabError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PoselabError(f"{path}: not a readable poselab checkpoint ({first})") from e
    if not isinstance(data, dict):
        raise PoselabError(f"{path}: not a poselab checkpoint (holds a {type(data).__name__})")
    return data
