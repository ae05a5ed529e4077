"""COCO keypoints JSON: project labels both ways.

Export: one image entry per labeled image (`file_name` = its path under the project,
`labeled-data/<folder>/<image>`, width and height), one annotation per image with
`keypoints` [x, y, v] * K (v = 2 labeled, v = 0 not labeled with x = y = 0), num_keypoints,
the keypoints' bounding box and area, and one category named after the project task with the
bodyparts as `keypoints` and the skeleton as 1-based pairs. Coordinates are written as they
are (poselab's pixel centers at integers; COCO tools that expect corner-based pixels differ by
half a pixel), so a round trip is exact.

Import: images are found relative to the JSON file (or `images`); a file_name without a
folder goes to labeled-data/<json stem>/. Images with several annotations (several animals)
are refused: poselab models one animal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError
from poselab.io.conversion._common import labels_table, labels_xy, make_project, project_labels


def write_labels(config: Path, out: Path) -> Path:
    """A project's labels as a COCO keypoints JSON (see the module docstring)."""
    import cv2

    from poselab.io.fileio import atomic_write_text

    project, df = project_labels(config)
    xy = labels_xy(df, project.bodyparts)
    images, annotations = [], []
    for i, row in enumerate(df.index):
        image = cv2.imread(str(project.root.joinpath(*row)), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise PoselabError(f"{project.root.joinpath(*row)}: labeled image missing or "
                               "unreadable")
        images.append({"id": i + 1, "file_name": "/".join(row), "height": image.shape[0],
                       "width": image.shape[1]})
        seen = np.isfinite(xy[i]).all(axis=1)
        if not seen.any():
            continue
        keypoints = [v for k in range(len(seen)) for v in (
            (float(xy[i, k, 0]), float(xy[i, k, 1]), 2) if seen[k] else (0, 0, 0))]
        lo, hi = xy[i][seen].min(axis=0), xy[i][seen].max(axis=0)
        w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
        annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                            "keypoints": keypoints, "num_keypoints": int(seen.sum()),
                            "bbox": [float(lo[0]), float(lo[1]), w, h], "area": w * h,
                            "iscrowd": 0})
    index = {b: k + 1 for k, b in enumerate(project.bodyparts)}
    coco = {"info": {"description": f"{project.task} labels by {project.scorer}, from "
                     "poselab", "scorer": project.scorer},
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": project.task or "animal", "supercategory":
                            "animal", "keypoints": project.bodyparts,
                            "skeleton": [[index[a], index[b]] for a, b in project.skeleton]}]}
    return atomic_write_text(out, json.dumps(coco, indent=1))


def read_labels(path: Path, out: Path, images: Path | None = None) -> Path:
    """A COCO keypoints JSON -> a new project at `out` with copies of its images."""
    try:
        coco = json.loads(Path(path).read_text(encoding="utf-8"))
        categories = [c for c in coco["categories"] if c.get("keypoints")]
        entries, annotations = coco["images"], coco.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PoselabError(f"{path}: not a COCO keypoints file ({exc})") from None
    if len(categories) != 1:
        raise PoselabError(f"{path}: {len(categories)} keypoint categories; poselab imports "
                           "one (one kind of animal)")
    category = categories[0]
    bodyparts = [str(b) for b in category["keypoints"]]
    by_image: dict[int, list[dict]] = {}
    for a in annotations:
        if a.get("category_id") == category["id"]:
            by_image.setdefault(a["image_id"], []).append(a)
    crowded = [i for i, a in by_image.items() if len(a) > 1]
    if crowded:
        raise PoselabError(f"{path}: image id {crowded[0]} has {len(by_image[crowded[0]])} "
                           "annotations; poselab models one animal per image")
    rows = []
    for entry in entries:
        name = Path(str(entry["file_name"]))
        parts = name.parts
        row = (("labeled-data", parts[-2], parts[-1]) if len(parts) >= 2
               else ("labeled-data", Path(path).stem, parts[-1]))
        xy = np.full((len(bodyparts), 2), np.nan)
        for a in by_image.get(entry["id"], []):
            values = np.asarray(a["keypoints"], "float64").reshape(-1, 3)
            seen = values[:, 2] > 0
            xy[seen] = values[seen, :2]
        rows.append((row, name, xy))
    root = images if images is not None else Path(path).parent
    table = labels_table(np.stack([r[2] for r in rows]), [r[0] for r in rows], bodyparts,
                         str((coco.get("info") or {}).get("scorer") or "coco"))
    staged = {row: root / name for row, name, _ in rows}
    skeleton = [[bodyparts[a - 1], bodyparts[b - 1]] for a, b in category.get("skeleton", [])]
    return make_project(out, table, staged.__getitem__, str(category.get("name") or "coco"),
                        skeleton)
