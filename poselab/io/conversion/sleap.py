"""SLEAP's .slp files, through sleap-io: predictions both ways, project labels both ways.

Predictions -> .slp: one PredictedInstance per frame that has a prediction, point scores =
likelihoods, instance score = their mean; the video is referenced by path (nothing is
embedded). The file's provenance keeps poselab's scorer and frame count, so reading it back
gives the same table (same rows, NaN x, y and likelihood 0 where no instance is).

Labels -> .slp: each labeled-data folder becomes an image-sequence video of its PNGs (by
absolute path) with one user Instance per labeled image; a .slp of user instances on image
sequences reads back into a new project (images copied). A frame with several instances
(multi-animal SLEAP) keeps its best-scoring one, as poselab models one animal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError
from poselab.io.conversion._common import (
    Predictions,
    imported_name,
    labels_table,
    labels_xy,
    make_project,
    project_labels,
    write_prediction_file,
)

log = logging.getLogger(__name__)


def _sio():
    try:
        import sleap_io
    except ImportError:
        raise PoselabError("SLEAP files need the sleap-io package: pip install sleap-io") \
            from None
    return sleap_io


def _skeleton(sio, bodyparts: list[str], edges) -> object:
    names = set(bodyparts)
    return sio.Skeleton(list(bodyparts),
                        edges=[tuple(e) for e in edges or [] if set(e) <= names])


def write_predictions(pred: Predictions, out: Path) -> Path:
    """Predictions as a SLEAP .slp of predicted instances (see the module docstring)."""
    from poselab.io.fileio import atomic_write

    sio = _sio()
    skeleton = _skeleton(sio, pred.bodyparts, pred.skeleton)
    video = sio.Video(filename=str(pred.video or "unknown-video.mp4"), open_backend=False)
    frames = []
    for i in np.flatnonzero(np.isfinite(pred.xy).any(axis=(1, 2))):
        scores = pred.likelihood[i]
        score = float(np.nanmean(scores)) if np.isfinite(scores).any() else 0.0
        instance = sio.PredictedInstance.from_numpy(pred.xy[i], skeleton=skeleton,
                                                    point_scores=scores, score=score)
        frames.append(sio.LabeledFrame(video=video, frame_idx=int(i), instances=[instance]))
    labels = sio.Labels(frames, videos=[video], skeletons=[skeleton],
                        provenance={"source": "poselab", "poselab_scorer": pred.scorer,
                                    "poselab_n_frames": int(len(pred.xy)),
                                    "poselab_fps": pred.fps})
    return atomic_write(out, lambda tmp: sio.save_slp(labels, str(tmp), verbose=False))


def _load(path: Path):
    sio = _sio()
    try:
        return sio.load_slp(str(path), open_videos=False)
    except Exception as exc:  # noqa: BLE001 - h5py/sleap-io errors vary
        raise PoselabError(f"{path}: not a readable SLEAP file ({exc})") from None


def _best(instances, predicted: bool):
    sio = _sio()
    kind = sio.PredictedInstance if predicted else sio.Instance
    chosen = [i for i in instances if type(i) is kind]
    return max(chosen, key=lambda i: getattr(i, "score", 1.0)) if chosen else None


def has_predictions(path: Path) -> bool:
    """Whether a .slp holds predicted instances (else it is a file of labels)."""
    labels = _load(path)
    return any(_best(lf.instances, True) is not None for lf in labels.labeled_frames)


def read_predictions(path: Path, out_folder: Path, csv: bool = False) -> list[Path]:
    """A .slp's predicted instances as one predictions .h5 per video, in DeepLabCut's layout
    (`<video stem><scorer>.h5` in `out_folder`)."""
    labels = _load(path)
    if not labels.skeletons:
        raise PoselabError(f"{path}: no skeleton in this SLEAP file")
    skeleton = labels.skeletons[0]
    bodyparts = list(skeleton.node_names)
    scorer = str(labels.provenance.get("poselab_scorer") or "sleap")
    written = []
    for video in labels.videos:
        frames = [lf for lf in labels.labeled_frames if lf.video is video]
        if not any(_best(lf.instances, True) for lf in frames):
            continue
        n = labels.provenance.get("poselab_n_frames") if len(labels.videos) == 1 else None
        n = int(n or max(lf.frame_idx for lf in frames) + 1)
        xy = np.full((n, len(bodyparts), 2), np.nan)
        lik = np.zeros((n, len(bodyparts)))
        crowded = 0
        for lf in frames:
            best = _best(lf.instances, True)
            if best is None:
                continue
            crowded += sum(1 for i in lf.instances if i is not best) > 0
            points = best.numpy(scores=True)  # (K, 3): x, y, score in skeleton order
            xy[lf.frame_idx], lik[lf.frame_idx] = points[:, :2], points[:, 2]
        if crowded:
            log.warning("%s: %d frames hold several instances; kept the best-scoring one",
                        path, crowded)
        stem = Path(str(video.filename if isinstance(video.filename, str) else path)).stem
        pred = Predictions(xy, lik, bodyparts, scorer)
        written.append(write_prediction_file(pred, imported_name(stem, scorer, out_folder),
                                             csv))
    if not written:
        raise PoselabError(f"{path}: no predicted instances (a file of labels imports as a "
                           "project: poselab convert FILE.slp --to project)")
    return written


def write_labels(config: Path, out: Path) -> Path:
    """A project's labels as a .slp of user instances on image-sequence videos."""
    from poselab.io.fileio import atomic_write

    sio = _sio()
    project, df = project_labels(config)
    skeleton = _skeleton(sio, project.bodyparts, project.skeleton)
    xy = labels_xy(df, project.bodyparts)
    frames, videos = [], []
    for _, rows in df.groupby(level=1, sort=False):
        positions = [df.index.get_loc(row) for row in rows.index]
        images = [str(project.root.joinpath(*row)) for row in rows.index]
        video = sio.Video.from_filename(images)
        videos.append(video)
        for frame_idx, i in enumerate(positions):
            if np.isfinite(xy[i]).any():
                instance = sio.Instance.from_numpy(xy[i], skeleton=skeleton)
                frames.append(sio.LabeledFrame(video=video, frame_idx=frame_idx,
                                               instances=[instance]))
    labels = sio.Labels(frames, videos=videos, skeletons=[skeleton],
                        provenance={"source": "poselab", "poselab_scorer": project.scorer,
                                    "poselab_task": project.task})
    return atomic_write(out, lambda tmp: sio.save_slp(labels, str(tmp), verbose=False))


def read_labels(path: Path, out: Path) -> Path:
    """User instances on image sequences -> a new project at `out` (images copied)."""
    labels = _load(path)
    skeleton = labels.skeletons[0]
    bodyparts = list(skeleton.node_names)
    scorer = str(labels.provenance.get("poselab_scorer") or "sleap")
    rows, xys, roots = [], [], set()
    for lf in labels.labeled_frames:
        user = _best(lf.instances, False)
        names = lf.video.filename
        if user is None:
            continue
        if not isinstance(names, list):
            raise PoselabError(f"{path}: labels on a video file ({names}); poselab imports "
                               "labels on image sequences (extract the frames first)")
        image = Path(names[lf.frame_idx])
        rows.append(("labeled-data", image.parent.name, image.name))
        roots.add(image.parent.parent)
        xys.append(user.numpy())
    if not rows:
        raise PoselabError(f"{path}: no user-labeled instances to import")
    if len(roots) != 1:
        raise PoselabError(f"{path}: images under several folders {sorted(map(str, roots))}; "
                           "put the image folders side by side")
    df = labels_table(np.stack(xys), rows, bodyparts, scorer)
    edges = [list(e) for e in _edge_names(skeleton)]
    task = str(labels.provenance.get("poselab_task") or Path(path).stem)
    root = roots.pop().parent
    return make_project(out, df, lambda row: root.joinpath(*row), task, edges)


def _edge_names(skeleton) -> list[tuple[str, str]]:
    names = skeleton.node_names
    return [(names[a], names[b]) for a, b in skeleton.edge_inds]
