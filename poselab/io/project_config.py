"""config.yaml's keys and their checks, run when a project opens.

A typo in config.yaml (`dotsize: big`, `bodypart:`) is one line naming the file, the line,
the key and what was expected, not a crash later in a command. Adding a config key: add it
to `POSELAB_KEYS` (or `DLC_KEYS` for a DeepLabCut key) and, if it needs a check, to
`_TYPES`, `_RANGES` or `check_config`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from poselab.errors import ConfigError
from poselab.validate import check_value

# Every key a single- or multi-animal DeepLabCut 2.x/3.x config.yaml may hold. poselab uses
# some of them and preserves the rest untouched.
DLC_KEYS = frozenset(
    """Task scorer date multianimalproject identity project_path engine video_sets bodyparts
    individuals uniquebodyparts multianimalbodyparts start stop numframes2pick skeleton
    skeleton_color pcutoff dotsize alphavalue colormap TrainingFraction iteration
    default_net_type default_augmenter default_track_method snapshotindex
    detector_snapshotindex batch_size detector_batch_size cropping x1 x2 y1 y2 corner2move2
    move2corner SuperAnimalConversionTables resnet croppedtraining""".split()
)
# Keys poselab adds (all optional).
POSELAB_KEYS = frozenset(["flip_pairs"])
KNOWN_KEYS = DLC_KEYS | POSELAB_KEYS


def _line(cfg: Any, key: str) -> str:
    """':<line>' of a key in the YAML file, when ruamel knows it (1-based)."""
    try:
        return f":{cfg.lc.key(key)[0] + 1}"
    except Exception:  # noqa: BLE001 - position info is a nicety only
        return ""


# Types of the config.yaml values poselab uses (checked when a project opens, so a typo
# such as `dotsize: big` is one line naming the file and key, not a crash in a command).
_TYPES: dict[str, Any] = {
    "Task": str, "scorer": str, "dotsize": float, "alphavalue": float, "colormap": str,
    "skeleton_color": str, "TrainingFraction": list[float], "iteration": int,
    "batch_size": int, "cropping": bool, "x1": int, "x2": int, "y1": int, "y2": int,
    "flip_pairs": list[list[str]],
}
_RANGES = {
    "dotsize": (lambda v: 0 < v <= 100, "a radius in pixels in (0, 100]"),
    "alphavalue": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "TrainingFraction": (lambda v: 0 < v < 1, "a list of fractions in (0, 1), e.g. [0.95]"),
}


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain lists/dicts (for type checks and messages)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def check_config(cfg: Any, config_path: Path) -> None:
    """Every key known and every value poselab reads of the right type and range.

    Raises:
        ConfigError: naming the file, the line when known, the key and what was expected.
    """
    where = str(config_path)
    if not hasattr(cfg, "keys"):
        raise ConfigError(f"{where}: expected a mapping of keys (Task, scorer, bodyparts...)")
    for key in cfg:
        if str(key) not in KNOWN_KEYS:
            near = difflib.get_close_matches(str(key), sorted(KNOWN_KEYS), n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(f"{where}{_line(cfg, key)}: unknown key '{key}'{hint}")
    if cfg.get("multianimalproject"):
        raise ConfigError(
            f"{where}: multi-animal projects (multianimalproject: true) are not supported yet"
        )
    for key in ("Task", "scorer", "bodyparts"):
        if cfg.get(key) in (None, "", []):
            raise ConfigError(f"{where}: required key '{key}' is missing or empty")
    bodyparts = cfg["bodyparts"]
    if not isinstance(bodyparts, list) or not all(isinstance(b, str) for b in bodyparts):
        raise ConfigError(f"{where}{_line(cfg, 'bodyparts')}: bodyparts must be a list of names")
    if len(set(bodyparts)) != len(bodyparts):
        raise ConfigError(f"{where}{_line(cfg, 'bodyparts')}: bodyparts has duplicate names")
    for pair in cfg.get("skeleton") or []:
        if not isinstance(pair, list) or len(pair) != 2 or not set(pair) <= set(bodyparts):
            raise ConfigError(
                f"{where}{_line(cfg, 'skeleton')}: skeleton entry {list(pair)!r} must be a pair "
                "of bodyparts"
            )
    for key, lo, hi in (("pcutoff", 0, 1), ("start", 0, 1), ("stop", 0, 1)):
        value = cfg.get(key)
        if value is not None and not (isinstance(value, (int, float)) and lo <= value <= hi):
            raise ConfigError(f"{where}{_line(cfg, key)}: {key} must be a number in [{lo}, {hi}]")
    n = cfg.get("numframes2pick")
    if n is not None and not (isinstance(n, int) and n > 0):
        raise ConfigError(f"{where}{_line(cfg, 'numframes2pick')}: numframes2pick must be > 0")
    video_sets = cfg.get("video_sets")
    if video_sets is not None and not hasattr(video_sets, "items"):
        raise ConfigError(f"{where}{_line(cfg, 'video_sets')}: video_sets must be a mapping")
    for key, kind in _TYPES.items():  # every value poselab reads, by type, at open time
        if cfg.get(key) is not None:
            check_value(_plain(cfg[key]), kind, f"{where}{_line(cfg, key)}: {key}")
    for key, (ok, wanted) in _RANGES.items():
        value = cfg.get(key)
        values = value if isinstance(value, list) else [value]
        if value is not None and not all(ok(v) for v in values):
            raise ConfigError(f"{where}{_line(cfg, key)}: {key} must be {wanted}, "
                              f"got {_plain(value)!r}")
    for pair in cfg.get("flip_pairs") or []:
        if len(pair) != 2 or not set(pair) <= set(bodyparts):
            raise ConfigError(f"{where}{_line(cfg, 'flip_pairs')}: flip_pairs entry "
                              f"{list(pair)!r} must be a pair of bodyparts")
