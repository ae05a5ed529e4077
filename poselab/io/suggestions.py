"""Frames worth labeling next: the `labeled-data/<video>/.poselab-suggestions.json` sidecar.

Whatever ranks frames for labeling (`poselab extract-outliers` today, an active-learning
ranking later) writes its picks here with `write_suggestions`; the labeler lists them in its
suggestions panel and jumps to the next one with a key. The file (UTF-8 JSON):

    {"version": 1,
     "source": "outliers",                      # the last writer
     "frames": [{"image": "img0123.png",        # a file name of this folder
                 "score": 0.83,                 # higher = more worth labeling, or null
                 "reason": "likelihood 0.17 (tail) < pcutoff 0.6",
                 "source": "outliers"}, ...]}   # who suggested this frame

Frames are listed most useful first. Writing merges by image: the new items come first, in
the order given, then the earlier entries for other images (a later ranking takes
precedence; nothing another writer suggested is dropped). Writes are atomic. A missing file
reads as no suggestions; a malformed one is a one-line PoselabError naming it (and is
replaced, with a warning, by the next write).

Extending: a new field goes into `_clean_item` (validated, optional for readers) and the
format above; bump VERSION only when old readers would misread the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text

log = logging.getLogger(__name__)

SUGGESTIONS_NAME = ".poselab-suggestions.json"
VERSION = 1


def suggestions_path(folder: str | os.PathLike) -> Path:
    """The sidecar of a labeled-data folder (it may not exist)."""
    return Path(folder) / SUGGESTIONS_NAME


def _clean_item(item: object, source: str, where: str) -> dict:
    """One frame entry, validated: {image, score, reason, source}."""
    if not isinstance(item, dict):
        raise PoselabError(f"{where}: expected an object with image, score, reason")
    image = item.get("image")
    if (not isinstance(image, str) or not image or "/" in image or "\\" in image
            or image in (".", "..")):
        raise PoselabError(f"{where}: image {image!r} must be a file name of the folder")
    score = item.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(
                score):
            raise PoselabError(f"{where}: score {score!r} must be a finite number or null")
        score = float(score)
    reason = item.get("reason", "")
    if not isinstance(reason, str):
        raise PoselabError(f"{where}: reason {reason!r} must be a string")
    origin = item.get("source", source)
    if not isinstance(origin, str) or not origin:
        raise PoselabError(f"{where}: source {origin!r} must be a non-empty string")
    return {"image": image, "score": score, "reason": reason, "source": origin}


def read_suggestions(folder: str | os.PathLike) -> list[dict]:
    """The suggested frames of a labeled-data folder, most useful first.

    Returns:
        [{"image", "score" (float | None), "reason", "source"}, ...]; [] without a sidecar.

    Raises:
        PoselabError: the sidecar is unreadable, not JSON, or not in this format.
    """
    path = suggestions_path(folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise PoselabError(f"{path}: cannot read the suggestions file ({exc})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PoselabError(f"{path}: not a suggestions file (malformed JSON: {exc}); "
                           "delete it or re-run the command that wrote it") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise PoselabError(f'{path}: not a suggestions file (expected {{"version": 1, '
                           '"frames": [...]}})')
    version = data.get("version")
    if version != VERSION:
        raise PoselabError(f"{path}: suggestions format version {version!r} is not {VERSION} "
                           "(written by another poselab version?)")
    source = data.get("source")
    source = source if isinstance(source, str) and source else "unknown"
    out: dict[str, dict] = {}
    for i, item in enumerate(data["frames"]):
        entry = _clean_item(item, source, f"{path}: frame {i}")
        out.setdefault(entry["image"], entry)  # a repeated image: the first (best) one counts
    return list(out.values())


def write_suggestions(folder: str | os.PathLike, items: list[dict], source: str) -> Path:
    """Add suggested frames to a labeled-data folder's sidecar (atomic, merged by image).

    Args:
        folder: the labeled-data/<video> folder (must exist).
        items: [{"image": "img0123.png", "score": float | None, "reason": str}, ...], most
            useful first; an item may name its own "source".
        source: who suggests them ("outliers", "suggest", ...).

    Returns:
        The sidecar's path.

    Raises:
        PoselabError: missing folder, bad source, or a malformed item (nothing is written).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PoselabError(f"{folder}: not a labeled-data folder")
    if not isinstance(source, str) or not source:
        raise PoselabError(f"suggestions source {source!r} must be a non-empty string")
    new: dict[str, dict] = {}
    for i, item in enumerate(items):
        entry = _clean_item(item, source, f"suggestion {i}")
        new.setdefault(entry["image"], entry)
    try:
        old = read_suggestions(folder)
    except PoselabError as exc:
        log.warning("%s; replacing it", exc)
        old = []
    frames = [*new.values(), *(e for e in old if e["image"] not in new)]
    data = {"version": VERSION, "source": source, "frames": frames}
    return atomic_write_text(suggestions_path(folder), json.dumps(data, indent=1) + "\n")
