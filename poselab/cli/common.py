"""Pieces shared by the command modules: the config argument and small option parsers.

Nothing here imports more than typer and poselab.errors, so `poselab --help` stays instant.
"""

from __future__ import annotations

import typer

from poselab.errors import PoselabError

ConfigArg = typer.Argument(..., help="The project's config.yaml (or its folder).",
                           show_default=False)
RunArg = typer.Argument(..., help="A run dir (models/<run>).", show_default=False)
DeviceOpt = typer.Option("auto", help="auto, cpu, cuda or mps.")
CheckpointOpt = typer.Option("auto", "--which", help="Checkpoint: auto (best on the validation "
                             "split when the run has one, else the final one), best or last.")


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
