"""Pieces shared by the command modules: the config argument and small option parsers.

Nothing here imports more than typer and poselab.errors, so `poselab --help` stays instant.
"""

from __future__ import annotations

import json
import math
from typing import Any

import typer

from poselab.errors import PoselabError

ConfigArg = typer.Argument(..., help="The project's config.yaml (or its folder).",
                           show_default=False)
RunArg = typer.Argument(..., help="A run dir (models/<run>).", show_default=False)
DeviceOpt = typer.Option("auto", help="auto, cpu, cuda or mps.")
# "fp32" is poselab.pose.predict.DEFAULT_PRECISION (not imported: it loads torch)
PrecisionOpt = typer.Option("fp32", "--precision", help="What the model computes in: fp32 "
                            "(the same numbers on every machine), bf16, fp16 (CUDA) or auto "
                            "(bf16 or fp16 where this device is fast at it, else fp32).")
CheckpointOpt = typer.Option("auto", "--which", help="Checkpoint: auto (best on the validation "
                             "split when the run has one, else the final one), best or last.")


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON for --json: NaN and infinities become null, so every JSON parser reads it
    (Python's json writes a bare NaN, which JavaScript's JSON.parse and jq refuse)."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):  # numpy's float64 too
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _split_list(value: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> None."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _parse_size(size: str) -> tuple[int, int]:
    """'320x240' -> (320, 240); anything else is a PoselabError naming --size."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise PoselabError(f"--size '{size}': expected WIDTHxHEIGHT, e.g. 320x240") from None
    return w, h
