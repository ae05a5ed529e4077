"""Multi-process data parallel training (torch.distributed DDP), used by training.py.

Launched with `torchrun --nproc_per_node N -m poselab train ...`: torchrun sets RANK,
WORLD_SIZE and LOCAL_RANK. NCCL on CUDA, gloo on CPU (also how the tests check this path).
Outside torchrun every function is a no-op, so single-process training has no DDP code path.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup() -> tuple[int, int]:
    """Join the process group when launched by torchrun. Returns (rank, world size)."""
    if world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def device_for(device: torch.device) -> torch.device:
    """One GPU per process under torchrun (cuda:LOCAL_RANK); otherwise unchanged."""
    if device.type == "cuda" and world_size() > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def sampler(dataset, seed: int):
    """A DistributedSampler under DDP (each process sees its shard), else None."""
    if not dist.is_initialized():
        return None
    return torch.utils.data.distributed.DistributedSampler(dataset, shuffle=True, seed=seed)


def broadcast(value: Any) -> Any:
    """Rank 0's value on every rank (run dir name, stop decisions)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
