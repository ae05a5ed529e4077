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
    "open_project": "poselab.io.project",
    "create_project": "poselab.io.project",
    "add_videos": "poselab.io.project",
    "Project": "poselab.io.project",
    "read_labels": "poselab.io.labels",
    "write_labels": "poselab.io.labels",
    "labels_to_arrays": "poselab.io.labels",
    "load_labeled_frames": "poselab.io.labels",
    "LabeledFrames": "poselab.io.labels",
    "predictions_frame": "poselab.io.predictions",
    "write_predictions": "poselab.io.predictions",
    "project_info": "poselab.io.info",
    "format_info": "poselab.io.info",
    "check_labels": "poselab.viz.plots",
    "make_synthetic_video": "poselab.io.synthetic",
    "make_suite_project": "poselab.io.synthetic_suite",
    "SUITE_VARIANTS": "poselab.io.synthetic_suite",
    "VideoReader": "poselab.io.video",
    "extract_frames": "poselab.io.frames",
    "extract_outliers": "poselab.analysis.outliers",
    "suggest_frames": "poselab.analysis.suggest",
    "learning_curve": "poselab.analysis.learning_curve",
    "train": "poselab.pose.training",
    "TrainConfig": "poselab.pose.train_config",
    "resolve_config": "poselab.pose.train_config",
    "evaluate": "poselab.pose.evaluation",
    "format_evaluation": "poselab.pose.evaluation",
    "crossfit_calibration": "poselab.pose.crossfit",
    "load_run": "poselab.pose.predict",
    "analyze_videos": "poselab.analysis.analyze",
    "PoselabError": "poselab.errors",
    "filter_predictions": "poselab.analysis.postprocess",
    "smooth_predictions": "poselab.analysis.smoothing",
    "combine_predictions": "poselab.analysis.ensemble",
    "combine_prediction_files": "poselab.analysis.ensemble",
    "write_report": "poselab.analysis.report",
    "read_variance": "poselab.io.predictions",
    "write_variance": "poselab.io.predictions",
    "read_predictions": "poselab.io.predictions",
    "read_meta": "poselab.io.predictions",
    "make_labeled_video": "poselab.viz.video_output",
    "plot_trajectories": "poselab.viz.trajectory_plots",
    "export_model": "poselab.analysis.export",
    "convert": "poselab.io.conversion",
    "LivePredictor": "poselab.live.predictor",
    "run_live": "poselab.live.loop",
    "run_demo": "poselab.demo",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'poselab' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
