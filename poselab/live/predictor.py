"""LivePredictor: one frame in, one pose out, as fast as this machine allows.

    from poselab.live import LivePredictor, Processor

    class Laser(Processor):
        def process(self, pose):                 # called with every pose
            if pose.likelihood[0] > 0.8 and pose.xy[0, 0] > 320:
                ...                              # trigger the laser

    live = LivePredictor("models/fastest_lite0", processor=Laser())
    xy, likelihood = live.predict(frame)         # BGR frame as OpenCV reads it

It wraps poselab.pose.predict.Predictor at batch size 1, so preprocessing and decoding are
the ones `analyze` uses (a recording equals `poselab analyze` on the same frames), with the
network on the runtime the calibration found fastest (runtimes.py). `forward=True` adds a
constant-velocity Kalman step that predicts each keypoint at publication time (forward.py).

Extending: per-pose logic belongs in a Processor (this module only measures and hands over).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from poselab.errors import PoselabError
from poselab.live import runtimes
from poselab.live.forward import ForwardConfig, ForwardPredictor


@dataclass
class LivePose:
    """A pose, as processors and publishers see it.

    Attributes:
        index: frame number (see sources.Frame).
        timestamp: capture time of the frame, seconds since the epoch.
        xy: float32 (K, 2) frame pixels: the forward-predicted pose when forward prediction
            is on, else the measured one (NaN = not found).
        likelihood: float32 (K,).
        latency_ms: capture to the end of prediction (publishers re-measure at sending).
        bodyparts: the K names.
        measured: the measured (K, 2) pose when forward prediction is on, else None.
        ahead_ms: how far past the capture time `xy` was predicted (0 without forward).
    """

    index: int
    timestamp: float
    xy: np.ndarray
    likelihood: np.ndarray
    latency_ms: float
    bodyparts: list[str]
    measured: np.ndarray | None = None
    ahead_ms: float = 0.0


class Processor:
    """Lab logic run on every pose, before it is published (DeepLabCut-Live's Processor).

    Subclass and override `process`; keep it fast, it adds to every frame's latency. Any
    callable taking a LivePose works too.
    """

    def process(self, pose: LivePose) -> None:
        """Called with every pose (override)."""

    def close(self) -> None:
        """Called once when the loop stops (release devices, save logs)."""


@dataclass
class Calibration:
    """What the start-up calibration measured and chose.

    Attributes:
        runtime, threads: the choice (a runtimes.RUNTIMES name; intra-op threads).
        ms: 90th-percentile milliseconds per frame (the whole predict path) by
            "runtime:threads"; the choice is the lowest (real time cares about the tail).
        median_ms: the medians, same keys.
        failed: runtimes left out, with the reason.
    """

    runtime: str = ""
    threads: int = 0
    ms: dict[str, float] = field(default_factory=dict)
    median_ms: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def chosen(self) -> str:
        return f"{self.runtime}:{self.threads}"

    def describe(self) -> str:
        key = self.chosen
        threads = f"{self.threads} thread" + ("s" if self.threads > 1 else "")
        text = (f"runtime {self.runtime} with {threads}: {self.median_ms[key]:.1f} ms/frame "
                f"(median; p90 {self.ms[key]:.1f} ms)")
        others = ", ".join(f"{k} {v:.1f}" for k, v in self.ms.items() if k != key)
        if others:
            text += f"; others, p90 ms: {others}"
        failed = "; ".join(f"{k} unavailable ({v})" for k, v in self.failed.items())
        return text + (f"; {failed}" if failed else "")


class LivePredictor:
    """A trained run ready for real-time prediction on single frames.

    Args:
        run: the run dir (models/<run>).
        runtime: "auto" (calibrate the candidates on the first frame and keep the fastest),
            or one of runtimes.RUNTIMES.
        processor: a Processor (or callable) called with every LivePose.
        forward: True or a ForwardConfig to predict each pose at publication time.
        device: "cpu" (default), "cuda", "auto", ...
        threads: intra-op threads (torch, OpenCV, ONNX Runtime); 0 calibrates 1 and one
            per core.
        verbose: print the calibration to stderr.

    Attributes:
        predictor: the wrapped pose.predict.Predictor (batch size 1).
        bodyparts, scorer: of the run.
        calibration: after `init`, what was measured and chosen.
    """

    def __init__(self, run: str | os.PathLike, runtime: str = "auto",
                 processor: Processor | Callable[[LivePose], object] | None = None,
                 forward: bool | ForwardConfig = False, device: str = "cpu",
                 threads: int = 0, verbose: bool = True) -> None:
        from poselab.pose.predict import Predictor

        if runtime != "auto" and runtime not in runtimes.RUNTIMES:
            raise PoselabError(f"--runtime {runtime}: choose one of auto, "
                               f"{', '.join(runtimes.RUNTIMES)}")
        if threads < 0:
            raise PoselabError(f"--threads {threads}: must be >= 0 (0 calibrates)")
        self.predictor = Predictor.from_dir(run, device=device, batch_size=1)
        self.bodyparts = self.predictor.bodyparts
        self.scorer = self.predictor.scorer
        self.runtime, self.threads = runtime, threads
        self.processor = processor
        if forward is True:
            forward = ForwardConfig()
        if forward and forward.pcutoff is None:
            forward = replace(forward, pcutoff=float(self.predictor.info.get("pcutoff", 0.6)))
        self.forward = ForwardPredictor(forward) if forward else None
        self.verbose = verbose
        self.calibration: Calibration | None = None
        self._eager = self.predictor.model
        self._frame_shape: tuple[int, ...] | None = None

    # ------------------------------------------------------------------ set-up
    def init(self, frame: np.ndarray) -> Calibration:
        """Choose and build the runtime for frames shaped like `frame` (BGR (H, W, 3)).

        Every candidate runtime is timed on this frame with 1 intra-op thread and with one
        per CPU core: on a busy machine (or beside the capture thread) one thread often wins
        by far, because a parallel op waits for its slowest thread to be scheduled. The
        choice sets torch's and OpenCV's thread counts for the process.

        Called by the first `predict`; call it yourself to keep the calibration (a few
        seconds, plus a one-time ONNX export) out of your experiment's first frame.
        """
        frame = _check_frame(frame)
        example = self._network_input(frame)
        names = runtimes.candidates(self.predictor.device) if self.runtime == "auto" \
            else [self.runtime]
        if self.threads or self.predictor.device.type != "cpu":  # a GPU: threads hardly matter
            threads = [self.threads or torch.get_num_threads()]
        else:
            threads = runtimes.thread_candidates()
        many = len(names) * len(threads) > 1
        built, cal = {}, Calibration()
        for name in names:
            for n in threads:
                self._set_threads(n)
                try:
                    built[name, n] = runtimes.build(name, self.predictor, example, self._eager,
                                                    n, built.get((name, threads[0])))
                except PoselabError as exc:
                    if self.runtime != "auto":
                        raise
                    cal.failed[name] = str(exc)
                    break
                self._use(*built[name, n])
                key = f"{name}:{n}"
                cal.median_ms[key], cal.ms[key] = runtimes.time_predict(
                    lambda: self.predictor.predict_frames(frame[None]),
                    repeats=15 if many else 5)
        best = min(cal.ms, key=cal.ms.get)
        cal.runtime, cal.threads = best.rsplit(":", 1)[0], int(best.rsplit(":", 1)[1])
        self._set_threads(cal.threads)
        self._use(*built[cal.runtime, cal.threads])
        self._frame_shape = frame.shape
        self.calibration = cal
        if self.verbose:
            print(f"live: {cal.describe()}", file=sys.stderr)
        return cal

    @staticmethod
    def _set_threads(n: int) -> None:
        import cv2

        torch.set_num_threads(n)
        cv2.setNumThreads(n)

    def _use(self, network, dtype) -> None:
        self.predictor.model, self.predictor.dtype = network, dtype

    def _network_input(self, frame: np.ndarray) -> torch.Tensor:
        """The exact tensor Predictor feeds its network for this frame (captured, not rebuilt,
        so the runtimes are compiled for the real preprocessing and padded size)."""
        seen: list[torch.Tensor] = []

        def spy(x: torch.Tensor):
            seen.append(x.detach().clone().contiguous(memory_format=torch.channels_last))
            return self._eager(x)

        self._use(spy, None)
        try:
            self.predictor.predict_frames(frame[None])
        finally:
            self._use(self._eager, None)
        return seen[0]

    # ------------------------------------------------------------------ per frame
    def predict(self, frame: np.ndarray, timestamp: float | None = None,
                index: int = -1, captured: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The pose of one frame; also runs forward prediction and the processor.

        Args:
            frame: BGR uint8 (H, W, 3) as OpenCV reads it.
            timestamp: capture time, seconds since the epoch (default: now).
            index: frame number passed on to the processor.
            captured: capture time on time.perf_counter() (default: now), for latency.

        Returns:
            xy float32 (K, 2) in frame pixels (forward-predicted when forward is on),
            likelihood float32 (K,).
        """
        pose = self.predict_pose(frame, timestamp, index, captured)
        return pose.xy, pose.likelihood

    def predict_pose(self, frame: np.ndarray, timestamp: float | None = None,
                     index: int = -1, captured: float | None = None) -> LivePose:
        """`predict`, returning the full LivePose (what the loop publishes)."""
        captured = time.perf_counter() if captured is None else captured
        timestamp = time.time() if timestamp is None else timestamp
        frame = _check_frame(frame)
        if self.calibration is None or frame.shape != self._frame_shape:
            self.init(frame)
        xy, lik = self.predictor.predict_frames(frame[None])
        xy, lik = xy[0], lik[0]
        measured, ahead = None, 0.0
        if self.forward is not None:
            self.forward.update(xy, lik, captured)
            target = time.perf_counter() + self.forward.config.extra_ms / 1000
            measured, xy = xy, self.forward.predict(xy, target)
            ahead = (target - captured) * 1000
        pose = LivePose(index, timestamp, xy, lik, (time.perf_counter() - captured) * 1000,
                        self.bodyparts, measured, ahead)
        if self.processor is not None:
            process = getattr(self.processor, "process", self.processor)
            process(pose)
        return pose

    def close(self) -> None:
        """Let the processor release what it holds."""
        close = getattr(self.processor, "close", None)
        if callable(close):
            close()


def load_processor(spec: str) -> Processor:
    """A processor from "path/to/file.py:Name": the file is imported and Name() is called.

    The file is the user's own code, run with the user's rights (as DeepLabCut-Live loads
    its processors); nothing else is searched.

    Raises:
        PoselabError: a malformed spec, a missing file or name, or an error while loading.
    """
    import importlib.util

    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise PoselabError(f"--processor {spec}: expected FILE.py:NAME (a class or factory "
                           "in that file)")
    file = Path(path)
    if not file.is_file():
        raise PoselabError(f"--processor {spec}: {file} not found")
    module_spec = importlib.util.spec_from_file_location(f"poselab_processor_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        factory = getattr(module, name)
    except AttributeError:
        raise PoselabError(f"--processor {spec}: {file} defines no {name}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code: one line naming it
        raise PoselabError(f"--processor {spec}: loading {file} failed "
                           f"({type(exc).__name__}: {exc})") from None
    try:
        processor = factory()
    except Exception as exc:  # noqa: BLE001
        raise PoselabError(f"--processor {spec}: {name}() failed "
                           f"({type(exc).__name__}: {exc})") from None
    if not callable(getattr(processor, "process", processor)):
        raise PoselabError(f"--processor {spec}: {name}() has no process(pose) method")
    return processor


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise PoselabError(f"expected a BGR uint8 frame (H, W, 3), got {frame.dtype} "
                           f"{frame.shape}")
    return frame
