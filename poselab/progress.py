"""Progress for long work: a bar on a terminal, a plain line every ~30 s everywhere else.

`progress_bar(...)` takes tqdm's arguments and returns a tqdm. On a terminal (or in a
notebook) it is the usual bar. When stderr is not a terminal (a log file, SLURM, nohup,
`2> log`) a redrawn bar would be one endless line, so instead one line is printed every
`interval()` seconds (30 by default; the environment variable POSELAB_PROGRESS_SECONDS
changes it), starting only after the first interval, and a last line when the work ends; work
shorter than one interval prints nothing. `progress=False` prints nothing at all.

`heartbeat(what, echo)` covers a long step that has no count to report (an ONNX export):
a line `what: still running, M:SS` every interval until the step ends.

This module sits beside errors.py at the bottom of the layers: io, viz, pose and analysis
all report progress through it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

DEFAULT_SECONDS = 30.0


def interval() -> float:
    """Seconds between two progress lines off a terminal (POSELAB_PROGRESS_SECONDS, else 30)."""
    try:
        value = float(os.environ.get("POSELAB_PROGRESS_SECONDS", DEFAULT_SECONDS))
    except ValueError:
        return DEFAULT_SECONDS
    return value if value >= 0 else DEFAULT_SECONDS


def _on_terminal(stream: TextIO) -> bool:
    if "ipykernel" in sys.modules:  # a notebook draws its own widget bars
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> None:
        for part in text.replace("\r", "\n").split("\n"):
            line = part.rstrip()
            # tqdm clears a line by writing spaces, and redraws the last state on close
            if line and line != self.last:
                self.stream.write(line + "\n")
                self.last = line
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Any = None, *, progress: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm progress bar that behaves in logs too (see the module docstring).

    Args:
        iterable: as tqdm's.
        progress: False shows nothing; True or None show a bar on a terminal and periodic
            lines elsewhere.
        **kwargs: tqdm's (total, desc, unit, leave, ...); `disable` is decided here.
    """
    kwargs.pop("disable", None)
    if progress is False:
        return tqdm(iterable, disable=True, **kwargs)
    stream = kwargs.pop("file", None) or sys.stderr
    if _on_terminal(stream):
        if "ipykernel" in sys.modules:
            from tqdm.auto import tqdm as auto

            return auto(iterable, file=stream, **kwargs)
        return tqdm(iterable, file=stream, **kwargs)
    seconds = interval()
    total = kwargs.get("total")
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    fmt = (_LINE_OF_TOTAL if total else _LINE).format(unit=kwargs.get("unit", "it"))
    kwargs.update(file=_Lines(stream), mininterval=seconds, maxinterval=max(seconds, 0.1),
                  miniters=1, delay=seconds, leave=True, ascii=True, dynamic_ncols=False,
                  ncols=None, bar_format=fmt)
    return tqdm(iterable, **kwargs)


# One log line: "mouse1.mp4: 24% 1200/5000 frame [00:29<01:32, 41.20frame/s]"
_LINE_OF_TOTAL = "{{desc}}: {{percentage:.0f}}% {{n_fmt}}/{{total_fmt}} {unit} " \
                 "[{{elapsed}}<{{remaining}}, {{rate_fmt}}{{postfix}}]"
_LINE = "{{desc}}: {{n_fmt}} {unit} [{{elapsed}}, {{rate_fmt}}{{postfix}}]"


@contextmanager
def heartbeat(what: str, echo: Callable[[str], None] | None = None) -> Iterator[None]:
    """Print `what: still running, M:SS` every interval() seconds while the block runs.

    Args:
        what: the step, e.g. "export: writing model.onnx".
        echo: where lines go (default: stderr).
    """
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    seconds = interval()
    done = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        while not done.wait(max(seconds, 0.05)):
            elapsed = int(time.monotonic() - start)
            echo(f"{what}: still running, {elapsed // 60}:{elapsed % 60:02d}")

    thread = threading.Thread(target=beat, daemon=True, name="poselab-heartbeat")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
