"""`poselab info`: what a project holds (bodyparts, videos, labeled frames), as a dict."""

from __future__ import annotations

import os
from pathlib import Path

from poselab.errors import VideoError
from poselab.io.labels import conform_labels, find_label_file, read_label_twins
from poselab.io.project import Project, open_project
from poselab.io.video import VideoReader

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: Path) -> list[str]:
    """Image file names of a labeled-data folder, sorted."""
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _video_info(path: Path, listed: bool, crop: str | None) -> dict:
    info: dict = {"path": str(path), "in_config": listed, "crop": crop}
    if not path.is_file():
        return info | {"status": "missing"}
    try:
        with VideoReader(path) as r:
            return info | {"status": "ok", "frames": r.n_frames, "fps": r.fps,
                           "width": r.width, "height": r.height}
    except VideoError as exc:
        return info | {"status": f"unreadable: {exc}"}


def _folder_info(project: Project, folder: Path) -> dict:
    images = list_images(folder)
    info = {"name": folder.name, "images": len(images), "labeled_frames": 0,
            "label_file": None, "per_bodypart": dict.fromkeys(project.bodyparts, 0)}
    path = find_label_file(folder, project.scorer)
    if path is None:
        return info
    df = conform_labels(read_label_twins(path), project.bodyparts, path)
    labeled = df.notna()
    counts = labeled.T.groupby(level="bodyparts", sort=False).all().T.sum()
    info["label_file"] = project.relative(path)
    info["labeled_frames"] = int(labeled.any(axis=1).sum())
    info["label_rows"] = len(df)
    info["per_bodypart"] = {b: int(counts[b]) for b in project.bodyparts}
    return info


def project_info(config_path: str | os.PathLike) -> dict:
    """Summarize a project.

    Returns:
        A JSON-ready dict with keys task, scorer, date, project_path, bodyparts, skeleton,
        videos (frame count, fps, size or a status), folders (labeled/total frames and
        per-bodypart counts) and labeled_frames (frames with at least one labeled keypoint).
    """
    project = open_project(config_path)
    videos = [_video_info(v.path, True, v.crop) for v in project.videos]
    videos += [_video_info(p, False, None) for p in project.unlisted_videos()]
    folders = [_folder_info(project, f) for f in project.labeled_folders()]
    return {
        "task": project.task,
        "scorer": project.scorer,
        "date": str(project.get("date", "")),
        "project_path": str(project.root),
        "config": str(project.config_path),
        "bodyparts": project.bodyparts,
        "skeleton": [list(p) for p in project.skeleton],
        "videos": videos,
        "folders": folders,
        "labeled_frames": sum(f["labeled_frames"] for f in folders),
    }


def format_info(info: dict) -> str:
    """Human-readable text of `project_info`'s dict."""
    lines = [f"Project {info['task']} (scorer {info['scorer']}, {info['date']})",
             f"  path: {info['project_path']}",
             f"  bodyparts ({len(info['bodyparts'])}): {', '.join(info['bodyparts'])}"]
    if info["skeleton"]:
        lines.append("  skeleton: " + ", ".join(f"{a}-{b}" for a, b in info["skeleton"]))
    lines.append(f"Videos ({len(info['videos'])}):")
    for v in info["videos"]:
        note = "" if v["in_config"] else "  [in videos/ but not in config video_sets]"
        if v["status"] == "ok":
            lines.append(f"  {v['path']}: {v['frames']} frames, {v['fps']:.2f} fps, "
                         f"{v['width']}x{v['height']}{note}")
        else:
            lines.append(f"  {v['path']}: {v['status']}{note}")
    lines.append(f"Labeled data ({len(info['folders'])} folders, "
                 f"{info['labeled_frames']} labeled frames):")
    for f in info["folders"]:
        lines.append(f"  {f['name']}: {f['labeled_frames']}/{f['images']} frames labeled"
                     + ("" if f["label_file"] else " (no label file yet)"))
        if f["label_file"]:
            lines.append("    " + ", ".join(f"{b} {n}" for b, n in f["per_bodypart"].items()))
    return "\n".join(lines)
