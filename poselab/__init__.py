"""poselab: animal pose estimation in Python, compatible with DeepLabCut projects.

The public Python API. Names are imported lazily on first use, so `import poselab` (and
`poselab --help`) stays instant; heavy libraries load only when a function needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "open_project": "poselab.project",
    "create_project": "poselab.project",
    "add_videos": "poselab.project",
    "Project": "poselab.project",
    "read_labels": "poselab.labels",
    "write_labels": "poselab.labels",
    "labels_to_arrays": "poselab.labels",
    "load_labeled_frames": "poselab.labels",
    "LabeledFrames": "poselab.labels",
    "predictions_frame": "poselab.labels",
    "write_predictions": "poselab.labels",
    "project_info": "poselab.info",
    "format_info": "poselab.info",
    "check_labels": "poselab.plots",
    "make_synthetic_video": "poselab.synthetic",
    "VideoReader": "poselab.video",
    "extract_frames": "poselab.frames",
    "extract_outliers": "poselab.outliers",
    "train": "poselab.training",
    "TrainConfig": "poselab.train_config",
    "resolve_config": "poselab.train_config",
    "evaluate": "poselab.evaluation",
    "format_evaluation": "poselab.evaluation",
    "load_run": "poselab.predict",
    "analyze_videos": "poselab.analyze",
    "PoselabError": "poselab.errors",
    "filter_predictions": "poselab.postprocess",
    "read_predictions": "poselab.postprocess",
    "read_meta": "poselab.postprocess",
    "make_labeled_video": "poselab.video_output",
    "plot_trajectories": "poselab.trajectory_plots",
    "export_model": "poselab.export",
    "run_demo": "poselab.demo",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'poselab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
