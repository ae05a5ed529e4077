"""Which files the app may touch: the folders given at start (roots) and the projects in them.

The file browser lists only folders inside a root, and in them only sub-folders, videos and
config.yaml files (no hidden entries). Every path that comes from the page is resolved
(symlinks followed, `..` collapsed) and must land inside a root; anything else is a 403, so
the page can never read /etc/passwd or write outside what the person chose to share.

Files the app serves from a project (frames, plots, evaluation images, reports) must be
regular files that resolve inside that project's folder (`inside`).

Extending: a new kind of file the browser shows goes into `_kind`.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException

from poselab.errors import PoselabError
from poselab.io.project import VIDEO_EXTENSIONS

MAX_ENTRIES = 2000  # a folder of a million files must not freeze the page


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` resolves (symlinks followed) inside `folder`."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


class Roots:
    """The folders the app was started with; the only places the page can browse."""

    def __init__(self, folders: list[str | os.PathLike]):
        resolved = []
        for folder in folders:
            path = Path(folder).expanduser()
            if not path.is_dir():
                raise PoselabError(f"--root {folder}: not a folder")
            resolved.append(path.resolve())
        self.folders = list(dict.fromkeys(resolved))

    def contains(self, path: Path) -> bool:
        return any(inside(path, root) for root in self.folders)

    def check(self, text: str | os.PathLike, what: str = "path") -> Path:
        """A path from the page, resolved; HTTPException 403 when outside every root."""
        if not str(text).strip() or "\x00" in str(text):
            raise HTTPException(400, f"{what}: empty or malformed path")
        path = Path(text).expanduser()
        if not path.is_absolute():
            raise HTTPException(400, f"{what} {text}: give an absolute path")
        if not self.contains(path):
            raise HTTPException(403, f"{what} {text}: outside the folders this app was "
                                     f"started with ({', '.join(map(str, self.folders))})")
        return path.resolve()

    def listing(self, text: str | None) -> dict:
        """Sub-folders, videos and config.yaml files of a folder inside a root (the roots
        themselves when `text` is empty)."""
        if not text:
            return {"path": None, "parent": None,
                    "entries": [{"name": str(r), "path": str(r), "kind": "dir"}
                                for r in self.folders]}
        folder = self.check(text, "folder")
        if not folder.is_dir():
            raise HTTPException(404, f"{text}: not a folder")
        entries = []
        try:
            children = sorted(folder.iterdir(), key=lambda p: p.name.lower())
        except OSError as exc:
            raise HTTPException(403, f"{text}: cannot list ({exc.strerror})") from None
        for child in children:
            if child.name.startswith(".") or not self.contains(child):
                continue
            kind = _kind(child)
            if kind is not None:
                entries.append({"name": child.name, "path": str(child), "kind": kind})
            if len(entries) >= MAX_ENTRIES:
                break
        entries.sort(key=lambda e: e["kind"] != "dir")  # folders first, stable otherwise
        parent = folder.parent if folder not in self.folders and self.contains(
            folder.parent) else None
        return {"path": str(folder), "parent": str(parent) if parent else None,
                "entries": entries, "truncated": len(entries) >= MAX_ENTRIES}


def _kind(path: Path) -> str | None:
    try:
        if path.is_dir():
            return "dir"
        if not path.is_file():
            return None
    except OSError:
        return None
    if path.name == "config.yaml":
        return "config"
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    return None


def served_file(path: Path, folder: Path, suffixes: tuple[str, ...]) -> Path:
    """`path` if it is a regular file inside `folder` with one of `suffixes`; else 404/403."""
    if path.suffix.lower() not in suffixes or not path.is_file():
        raise HTTPException(404, f"no such file: {path.name}")
    if not inside(path, folder):
        raise HTTPException(403, f"{path.name} points outside the project")
    return path
