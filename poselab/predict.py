"""Load a trained run and predict keypoints (images now; videos with the analysis issue).

`load_run(run)` rebuilds the model from the run dir alone (run.yaml + a checkpoint), so a
run dir copied to another machine is all that inference needs.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch
import yaml

from poselab.errors import PoselabError


def read_run_info(run: str | os.PathLike) -> dict:
    """run.yaml of a run dir, with a clear error for a folder that is not a run."""
    path = Path(run) / "run.yaml"
    if not path.is_file():
        raise PoselabError(f"{run}: not a poselab run (no run.yaml); runs live in models/<run>/")
    try:
        info = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PoselabError(f"{path}: malformed YAML ({exc})") from exc
    if not isinstance(info, dict) or "model" not in info or "bodyparts" not in info:
        raise PoselabError(f"{path}: incomplete run description (needs model and bodyparts)")
    return info


def load_run(run: str | os.PathLike, which: str = "best", device: torch.device | str = "cpu"):
    """Rebuild a run's model with its trained weights, in eval mode.

    Args:
        run: the run dir.
        which: "best" (lowest test error) or "last"; falls back to last if best is missing.

    Returns:
        (model, run info dict, checkpoint epoch).
    """
    from poselab.engine import load_checkpoint
    from poselab.models.posenet import PoseNet

    run = Path(run)
    info = read_run_info(run)
    path = run / f"{which}.pt"
    if not path.is_file():
        path = run / "last.pt"
    state = load_checkpoint(path, map_location="cpu")
    model = PoseNet.from_config(info["model"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), info, int(state.get("epoch", -1))


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run at about twice fp32 speed on this CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (None = plain fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise PoselabError("precision fp16 needs CUDA; use bf16 or fp32 on this device")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None
