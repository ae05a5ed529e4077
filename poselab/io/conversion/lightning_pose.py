"""Lightning Pose's data layout: one `CollectedData.csv` (DeepLabCut's label CSV with one
`labeled-data/<folder>/<image>` path per row, no config.yaml) beside `labeled-data/` (and
usually `videos/`). Both ways.

Export: `<out>/CollectedData.csv` with every labeled image of the project, copies of those
images under `<out>/labeled-data/`, and the project's videos linked into `<out>/videos/`
(Lightning Pose's config then names `<out>` as data_dir and CollectedData.csv as csv_file).

Import: a new poselab/DeepLabCut project from such a folder: config.yaml with the CSV's
scorer and bodyparts, the images copied into labeled-data/<folder>/ with one
CollectedData_<scorer>.h5/.csv per folder, and the videos of `videos/` added (linked).
"""

from __future__ import annotations

import os
from pathlib import Path

from poselab.errors import PoselabError
from poselab.io.conversion._common import make_project, project_labels

CSV_NAME = "CollectedData.csv"


def write_project(config: Path, out: Path) -> Path:
    """A project's labels in Lightning Pose's layout at the new folder `out`.

    Returns:
        `<out>/CollectedData.csv`.
    """
    import shutil

    from poselab.io.fileio import atomic_write

    project, df = project_labels(config)
    if out.exists():
        raise PoselabError(f"{out}: already exists; choose a new folder")
    out.mkdir(parents=True)
    try:
        for row in df.index:
            dest = out.joinpath(*row)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project.root.joinpath(*row), dest)
        videos = [v for v in project.videos if v.exists]
        if videos:
            (out / "videos").mkdir()
            for video in videos:
                os.symlink(os.path.abspath(video.path), out / "videos" / video.path.name)
        table = df.copy()
        table.index = ["/".join(row) for row in df.index]  # one path column, as LP reads it
        csv = atomic_write(out / CSV_NAME, lambda tmp: table.to_csv(tmp))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return csv


def read_project(src: Path, out: Path) -> Path:
    """A Lightning Pose data folder (or its CollectedData.csv) -> a new project at `out`."""
    from poselab.io.labels import canonical_labels, read_labels
    from poselab.io.project import VIDEO_EXTENSIONS

    csv = src / CSV_NAME if src.is_dir() else src
    if not csv.is_file():
        raise PoselabError(f"{src}: no {CSV_NAME} (a Lightning Pose data folder holds one)")
    root = csv.parent
    df = canonical_labels(read_labels(csv), csv)
    folder = root / "videos"
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS) \
        if folder.is_dir() else []
    return make_project(out, df, lambda row: root.joinpath(*row), root.name, None, videos)
