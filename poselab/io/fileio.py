"""Atomic file writes: a crash leaves the old file or the new one, never a torn one.

`atomic_write(path, write)` calls `write(tmp)` on a temporary path beside the target (same
folder, so os.replace is atomic; same suffix, so writers that pick a format from the
extension, like cv2.imwrite or matplotlib, still work), then renames it over the target.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write `path` through `write(tmp_path)`, then rename; the temp file never survives."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def ensure_dir(path: str | os.PathLike, what: str = "--dest", create: bool = True) -> Path:
    """A folder that exists (created with its parents if needed), or a one-line error.

    With create=False only checks that the path can be a folder (nothing is made yet: the
    caller creates it once its other checks passed).

    Raises:
        PoselabError: the path (or a parent) is a file, or it cannot be created.
    """
    from poselab.errors import PoselabError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise PoselabError(f"{what} {path}: is a file, not a folder")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise PoselabError(f"{what} {path}: {parent} is a file, not a folder")
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PoselabError(f"{what} {path}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise PoselabError(f"{what} {path}: cannot create the folder ({exc.strerror})") from None
    return path
