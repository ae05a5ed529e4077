"""Conversion between poselab's files (DeepLabCut's layout) and other tools' formats.

`convert(src, to)` reads what `src` is and writes it in format `to`:

| source                                 | to               | result                         |
|----------------------------------------|------------------|--------------------------------|
| predictions .h5/.csv                   | slp, nwb         | a SLEAP / NWB (ndx-pose) file  |
| project (config.yaml or its folder)    | slp, coco,       | the labels as a SLEAP file,    |
|                                        | lightning-pose   | COCO JSON, Lightning Pose data |
| .slp, .nwb                             | dlc              | predictions .h5 per video (or  |
|                                        |                  | a project, for SLEAP labels)   |
| COCO .json, Lightning Pose folder/CSV  | dlc              | a new project with the images  |

One module per format (sleap.py, nwb.py, coco.py, lightning_pose.py), each with its
`write_*`/`read_*` functions; the other tools' packages (sleap-io, pynwb and ndx-pose) are
imported only when their format is used. Adding a format: a module with its writer and
reader, a suffix in `_KINDS` if it has one, and its routes in `_ROUTES`.
"""

from __future__ import annotations

import os
from pathlib import Path

from poselab.errors import PoselabError

TARGETS = ("slp", "nwb", "coco", "lightning-pose", "dlc")
_KINDS = {".slp": "slp", ".nwb": "nwb", ".json": "coco"}


def source_kind(src: Path) -> str:
    """What `src` holds: predictions, project, slp, nwb, coco or lightning-pose."""
    from poselab.io.conversion.lightning_pose import CSV_NAME

    if src.is_dir():
        if (src / "config.yaml").is_file():
            return "project"
        if (src / CSV_NAME).is_file():
            return "lightning-pose"
        raise PoselabError(f"{src}: neither a project (config.yaml) nor a Lightning Pose "
                           f"data folder ({CSV_NAME})")
    if not src.is_file():
        raise PoselabError(f"{src}: not found")
    if src.name == "config.yaml" or src.suffix in (".yaml", ".yml"):
        return "project"
    if src.suffix in _KINDS:
        return _KINDS[src.suffix]
    if src.suffix in (".h5", ".csv"):
        if src.name == CSV_NAME and not (src.parent / "config.yaml").is_file():
            return "lightning-pose"
        return "predictions"
    raise PoselabError(f"{src}: unknown file type (predictions .h5/.csv, config.yaml, .slp, "
                       f".nwb, COCO .json or a Lightning Pose {CSV_NAME})")


def _skeleton_of(pred, config: Path | None) -> list[tuple[str, str]]:
    """The skeleton for exported predictions: the config's, else the analyzing run's."""
    import yaml

    if config is not None:
        from poselab.io.project import open_project

        return open_project(config).skeleton
    from poselab.io.predictions import read_meta

    run = read_meta(pred.source).get("run") if getattr(pred, "source", None) else None
    try:
        info = yaml.safe_load((Path(run) / "run.yaml").read_text(encoding="utf-8"))
        return [tuple(p) for p in info.get("skeleton") or []]
    except (OSError, TypeError, AttributeError, yaml.YAMLError):
        return []


def convert(
    src: str | os.PathLike,
    to: str,
    out: str | os.PathLike | None = None,
    *,
    video: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    csv: bool = False,
) -> list[Path]:
    """Convert between poselab/DeepLabCut files and SLEAP, NWB, COCO or Lightning Pose.

    Args:
        src: predictions .h5/.csv, a project (config.yaml or its folder), a .slp, a .nwb, a
            COCO keypoints .json, or a Lightning Pose data folder (or its CollectedData.csv).
        to: slp, nwb, coco, lightning-pose, or dlc (into poselab/DeepLabCut files).
        out: the output file (exports), folder of .h5 files (slp/nwb imports) or new project
            folder (label imports). Default: beside `src`, named after it.
        video: the analyzed video, when exporting predictions whose metadata does not say.
        config: a project config.yaml whose skeleton goes with exported predictions.
        images: where a COCO file's images are (default: the JSON's folder).
        csv: with imported predictions, also write the .csv twin.

    Returns:
        The written files (the new config.yaml for a project).

    Raises:
        PoselabError: an unknown source or target, a route the formats do not have, a
            missing package of the other tool, or a file it cannot read.
    """
    from poselab.io.conversion import coco, lightning_pose, nwb, sleap
    from poselab.io.conversion._common import default_out, read_prediction_file
    from poselab.io.fileio import ensure_dir

    src = Path(src)
    if to not in TARGETS:
        raise PoselabError(f"--to {to!r}: choose one of {', '.join(TARGETS)}")
    kind = source_kind(src)
    target = Path(out) if out is not None else None
    if kind == "predictions" and to in ("slp", "nwb"):
        pred = read_prediction_file(src, Path(video) if video else None)
        pred.skeleton = _skeleton_of(pred, Path(config) if config else None)
        writer = sleap.write_predictions if to == "slp" else nwb.write_predictions
        return [writer(pred, target or default_out(src, f".{to}"))]
    if kind == "project" and to in ("slp", "coco", "lightning-pose"):
        root = src if src.is_dir() else src.parent
        cfg = root / "config.yaml" if src.is_dir() else src
        if to == "slp":
            return [sleap.write_labels(cfg, target or root / "labels.slp")]
        if to == "coco":
            return [coco.write_labels(cfg, target or root / "coco-keypoints.json")]
        return [lightning_pose.write_project(
            cfg, target or root.with_name(root.name + "-lightning-pose"))]
    if to == "dlc" and kind in ("slp", "nwb"):
        if kind == "slp" and not sleap.has_predictions(src):  # labels: a new project
            return [sleap.read_labels(src, target or src.with_name(src.stem + "-poselab"))]
        folder = ensure_dir(target or src.parent, "--out")
        reader = nwb.read_predictions if kind == "nwb" else sleap.read_predictions
        return reader(src, folder, csv)
    if to == "dlc" and kind in ("coco", "lightning-pose"):
        new = target or src.with_name(src.stem + "-poselab")
        if kind == "coco":
            return [coco.read_labels(src, new, Path(images) if images else None)]
        return [lightning_pose.read_project(src, new)]
    raise PoselabError(f"{src} ({kind}) cannot be converted to {to}: "
                       + _ROUTES.get(kind, "see `poselab convert --help`"))


_ROUTES = {
    "predictions": "predictions convert to slp or nwb",
    "project": "a project's labels convert to slp, coco or lightning-pose",
    "slp": "a SLEAP file converts to dlc", "nwb": "an NWB file converts to dlc",
    "coco": "a COCO file converts to dlc", "lightning-pose": "Lightning Pose data converts "
    "to dlc",
}
