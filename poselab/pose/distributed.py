"""Multi-process data parallel training (torch.distributed DDP), used by training.py.

Launched with `torchrun --nproc_per_node N -m poselab train ...`: torchrun sets RANK,
WORLD_SIZE and LOCAL_RANK. NCCL on CUDA, gloo on CPU (also how the tests check this path).
Outside torchrun, `Context` is a single process and every collective is a no-op.

Rules that keep several processes safe:
- only rank 0 writes files (the trainer gives a RunDir to rank 0 only);
- a decision one rank takes (the run folder, a stop, an error) reaches the others through
  `decide`, so every rank raises the same error instead of waiting for a partner that left;
- a failing rank never waits in a barrier on its way out (`close(ok=False)`): it leaves the
  process group and exits, its peers' next collective fails at once, and torchrun stops
  the rest.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from poselab.errors import PoselabError

T = TypeVar("T")

# A collective that waits longer than this means a peer is gone: fail instead of hanging.
TIMEOUT = dt.timedelta(seconds=int(os.environ.get("POSELAB_DDP_TIMEOUT", "120")))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class Context:
    """Rank, world size and the collectives training needs; a no-op for one process."""

    def __init__(self) -> None:
        self.rank, self.world = 0, 1
        if world_size() > 1:
            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend, timeout=TIMEOUT)
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1 and dist.is_initialized()

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process under torchrun (cuda:LOCAL_RANK); otherwise unchanged."""
        if device.type == "cuda" and self.world > 1:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
        return device

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.active:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def sampler(self, dataset, seed: int):
        """A DistributedSampler under DDP (each process sees its shard), else None."""
        if not self.active:
            return None
        return torch.utils.data.distributed.DistributedSampler(dataset, shuffle=True, seed=seed)

    def shard_size(self, n: int) -> int:
        """Items each process sees per epoch (DistributedSampler pads shards to equal size)."""
        return math.ceil(n / self.world)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value on every rank (stop decisions)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def decide(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 and give its result to every rank; its error ends them all.

        For steps only rank 0 may take (creating the run folder): a PoselabError there is
        raised on every rank with the same message, so no rank waits for a partner that left.
        """
        if not self.active:
            return fn()
        outcome: tuple[str, Any] = ("ok", None)
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except PoselabError as exc:
                outcome = ("error", str(exc))
            except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
                outcome = ("error", f"rank 0: {type(exc).__name__}: {exc}")
        kind, value = self.broadcast(outcome)
        if kind == "error":
            raise PoselabError(value)
        return value

    def close(self, ok: bool) -> None:
        """Leave the process group: after a barrier when all went well, at once otherwise."""
        if not self.active:
            return
        if ok:
            dist.barrier()
        dist.destroy_process_group()
