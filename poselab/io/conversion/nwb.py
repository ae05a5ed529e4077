"""Neurodata Without Borders files with the ndx-pose extension, through pynwb: predictions
both ways.

Predictions -> .nwb: a `behavior` processing module holding a Skeletons container (the
bodyparts as nodes, the project skeleton as edges) and a PoseEstimation with one
PoseEstimationSeries per bodypart: data (N, 2) x, y in pixels, confidence (N,) the
likelihood, at the video's frame rate from time 0 (timestamps = frame / fps). The scorer, the
video (an external ImageSeries with the frame rate and size) are PoseEstimation's scorer and
source_video, so reading the file back gives the same table. Where no frame rate is known,
30 frames/s is written and said in the series description.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError
from poselab.io.conversion._common import Predictions, imported_name, write_prediction_file

DEFAULT_FPS = 30.0


def _modules():
    try:
        import ndx_pose
        import pynwb
        import pynwb.image  # noqa: F401 - ImageSeries, for the video reference
    except ImportError:
        raise PoselabError("NWB files need the pynwb and ndx-pose packages: pip install "
                           "pynwb ndx-pose") from None
    return pynwb, ndx_pose


def write_predictions(pred: Predictions, out: Path) -> Path:
    """Predictions as an NWB file with ndx-pose's PoseEstimation (see the module docstring)."""
    from poselab import __version__
    from poselab.io.fileio import atomic_write

    pynwb, ndx_pose = _modules()
    fps = pred.fps or DEFAULT_FPS
    nwb = pynwb.NWBFile(session_description=f"poselab predictions ({pred.scorer})",
                        identifier=str(uuid.uuid4()),
                        session_start_time=dt.datetime.now(dt.timezone.utc))
    names = set(pred.bodyparts)
    edges = [[pred.bodyparts.index(a), pred.bodyparts.index(b)]
             for a, b in pred.skeleton or [] if {a, b} <= names]
    skeleton = ndx_pose.Skeleton(name="skeleton", nodes=list(pred.bodyparts),
                                 edges=np.asarray(edges, dtype="uint8").reshape(-1, 2))
    note = "" if pred.fps else f" (frame rate unknown: {DEFAULT_FPS:g} frames/s assumed)"
    series = [ndx_pose.PoseEstimationSeries(
        name=bodypart, data=pred.xy[:, k, :].astype("float64"),
        confidence=pred.likelihood[:, k].astype("float64"), reference_frame="(0, 0) is the "
        "top-left corner of the frame, pixel centers at integers", unit="pixels",
        rate=float(fps), starting_time=0.0,
        confidence_definition="likelihood: sigmoid of the heatmap peak",
        description=f"{bodypart} from {pred.scorer}{note}")
        for k, bodypart in enumerate(pred.bodyparts)]
    video = pynwb.image.ImageSeries(
        name="video", external_file=[str(pred.video or "unknown-video.mp4")],
        format="external", starting_frame=[0], rate=float(fps), num_samples=len(pred.xy),
        dimension=list(pred.size) if pred.size else None,  # (width, height)
        description="the analyzed video (referenced, not embedded)")
    nwb.add_acquisition(video)
    estimation = ndx_pose.PoseEstimation(
        name="PoseEstimation", pose_estimation_series=series, description=f"poselab "
        f"predictions, scorer {pred.scorer}", source_video=video, scorer=pred.scorer,
        source_software="poselab", source_software_version=__version__, skeleton=skeleton)
    behavior = nwb.create_processing_module(name="behavior", description="pose estimation")
    behavior.add(ndx_pose.Skeletons(skeletons=[skeleton]))
    behavior.add(estimation)

    def write(tmp: Path) -> None:
        with pynwb.NWBHDF5IO(str(tmp), mode="w") as io:
            io.write(nwb)

    return atomic_write(out, write)


def read_predictions(path: Path, out_folder: Path, csv: bool = False) -> list[Path]:
    """Every PoseEstimation of an NWB file's `behavior` module as a predictions .h5
    (`<video stem><scorer>.h5` in `out_folder`, DeepLabCut's layout)."""
    pynwb, _ = _modules()
    written = []
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r")
        nwb = io.read()
    except Exception as exc:  # noqa: BLE001 - h5py/hdmf errors vary
        raise PoselabError(f"{path}: not a readable NWB file ({exc})") from None
    try:
        behavior = nwb.processing.get("behavior")
        estimations = [o for o in (behavior.data_interfaces.values() if behavior else [])
                       if type(o).__name__ == "PoseEstimation"]
        if not estimations:
            raise PoselabError(f"{path}: no PoseEstimation in the behavior module")
        for est in estimations:
            series = est.pose_estimation_series
            nodes = list(est.skeleton.nodes[:]) if est.skeleton is not None else list(series)
            bodyparts = [b for b in nodes if b in series]
            xy = np.stack([np.asarray(series[b].data[:], "float64") for b in bodyparts], 1)
            lik = np.stack([np.asarray(series[b].confidence[:], "float64")
                            if series[b].confidence is not None
                            else np.ones(len(xy)) for b in bodyparts], 1)
            scorer = est.scorer or "nwb"
            if est.source_video is not None:
                videos = list(est.source_video.external_file[:])
            else:  # files written before ndx-pose 0.2
                videos = list(est.original_videos[:]) if est.original_videos is not None else []
            stem = Path(str(videos[0])).stem if videos else Path(path).stem
            pred = Predictions(xy, lik, bodyparts, scorer)
            written.append(write_prediction_file(pred, imported_name(stem, scorer, out_folder),
                                                 csv))
    finally:
        io.close()
    return written
