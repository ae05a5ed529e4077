"""What an edits request may ask: validation of the page's JSON before any label changes.

`parse_edits` turns {"edits": [{frame, bodypart, value}]} into typed edits or raises BadEdit
(400) naming the first problem; nothing is applied then. A point must be finite and lie on
its image (`image_size` reads the size from the PNG header). `parse_client` reads the page
id and request number that let the store skip a stale re-sent request.

Extending: a new kind of edit value is parsed in `parse_edits` (and applied in
store.FolderStore._apply_one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2

from poselab.errors import PoselabError

# Coordinates beyond this are certainly a client bug, not a label.
MAX_COORD = 1e6

Value = tuple[float, float] | str | None  # (x, y) | "nv" (not visible) | None (missing)


class BadEdit(PoselabError):
    """An edit request names an unknown frame/bodypart or holds an invalid value."""


def parse_edits(payload: object, images: set[str], bodyparts: list[str],
                size_of: Callable[[str], tuple[int, int] | None] | None = None) -> list[tuple]:
    """Validate an edits request body: {"edits": [{"frame", "bodypart", "value"}, ...]}.

    value is [x, y] (labeled), null (missing) or "nv" (not visible). With `size_of` (image ->
    (width, height)), a point must lie on the image: pixel centres are at integers, so
    -0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5.

    Returns:
        [(frame, bodypart, Value), ...] in request order.

    Raises:
        BadEdit: with a message naming the first problem (nothing is applied).
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("edits"), list):
        raise BadEdit('expected a JSON object {"edits": [...]}')
    edits = payload["edits"]
    if len(edits) > 100_000:
        raise BadEdit("too many edits in one request")
    known = set(bodyparts)
    out = []
    for i, e in enumerate(edits):
        if not isinstance(e, dict):
            raise BadEdit(f"edit {i}: expected an object with frame, bodypart, value")
        frame, bodypart, value = e.get("frame"), e.get("bodypart"), e.get("value", "missing-key")
        if not isinstance(frame, str) or frame not in images:
            raise BadEdit(f"edit {i}: unknown frame {frame!r}")
        if not isinstance(bodypart, str) or bodypart not in known:
            raise BadEdit(f"edit {i}: unknown bodypart {bodypart!r}")
        if value is None or value == "nv":
            out.append((frame, bodypart, value))
            continue
        ok = (isinstance(value, list) and len(value) == 2
              and all(type(v) in (int, float) and math.isfinite(v) and abs(v) < MAX_COORD
                      for v in value))
        if not ok:
            raise BadEdit(f'edit {i}: value must be [x, y] (finite numbers), null or "nv"')
        x, y = float(value[0]), float(value[1])
        size = size_of(frame) if size_of is not None else None
        if size is not None and not (-0.5 <= x <= size[0] - 0.5 and -0.5 <= y <= size[1] - 0.5):
            raise BadEdit(f"edit {i}: ({x:g}, {y:g}) is outside the {size[0]}x{size[1]} image "
                          f"{frame} (x in [-0.5, {size[0] - 0.5:g}], y in [-0.5, "
                          f"{size[1] - 0.5:g}])")
        out.append((frame, bodypart, (x, y)))
    return out


def parse_client(payload: dict) -> tuple[str | None, int | None]:
    """The optional ("client", "seq") of an edits request: which page sent it, in what order."""
    client, seq = payload.get("client"), payload.get("seq")
    if client is None and seq is None:
        return None, None
    if not (isinstance(client, str) and 0 < len(client) <= 64 and type(seq) is int and seq >= 0):
        raise BadEdit('"client" must be a short string and "seq" a non-negative integer')
    return client, seq


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file, from the PNG header when it is one; None if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        return None if img is None else (img.shape[1], img.shape[0])
    except OSError:
        return None
