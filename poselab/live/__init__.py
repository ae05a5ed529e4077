"""Real-time prediction: frames from a camera, a video file or a stream, one at a time.

Modules, each with one job:
  sources.py     frame sources (camera index, video file paced at a frame rate, stream URL)
                 feeding a one-slot buffer that drops the older frame instead of queueing
  runtimes.py    the network on PyTorch fp32/bf16, TorchScript or ONNX Runtime, and the
                 start-up calibration that picks the fastest for this machine and frame size
  forward.py     constant-velocity Kalman step predicting each keypoint a little ahead
  predictor.py   LivePredictor: `predict(frame) -> (pose, likelihood)` plus a processor hook
  publish.py     where poses go: JSON lines, ZeroMQ or UDP sockets, the recording
  loop.py        `run_live`: source -> predictor -> publishers, with latency and drop counts

Extending: a new source is a `Source` subclass in sources.py (its thread calls
`slot.put(Frame(...))`); a new runtime is a builder in runtimes.RUNTIMES; a new output is a
publisher with `send(message)` and `close()` in publish.py.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module, imported on first use (the modules need torch; `import poselab.live` not)
_NAMES = {
    "LivePredictor": "poselab.live.predictor",
    "LivePose": "poselab.live.predictor",
    "Processor": "poselab.live.predictor",
    "ForwardConfig": "poselab.live.forward",
    "open_source": "poselab.live.sources",
    "open_publisher": "poselab.live.publish",
    "Recorder": "poselab.live.publish",
    "run_live": "poselab.live.loop",
    "LiveStats": "poselab.live.loop",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'poselab.live' has no attribute '{name}'")
