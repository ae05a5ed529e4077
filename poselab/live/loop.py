"""The real-time loop: source -> LivePredictor -> publishers, measured.

`run_live(predictor, source, publishers)` calibrates the predictor on the source's first
frame (before the clock starts, so calibration never costs frames), starts the source, and
then takes the newest frame, predicts, and sends the pose, until the source ends, `stop` is
set, a frame or time limit is reached, or Ctrl+C. The recording (when given) is written in
every case, atomically. Frames that arrive while the model is busy replace each other in a
one-slot buffer (sources.LatestFrame): they are dropped and counted, never queued.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from poselab.live.predictor import LivePredictor
from poselab.live.publish import PublisherClosed, Recorder, message
from poselab.live.sources import LatestFrame, Source


@dataclass
class LiveStats:
    """What a live run did and measured.

    Attributes:
        frames_received: frames the source delivered.
        frames_processed: poses published.
        frames_dropped: frames replaced in the buffer before the model took them.
        source_late: frames a video source handed over more than one interval late.
        latency_ms: per published pose, capture to sending.
        seconds: wall time from the first frame to the stop.
        runtime, threads: the runtime and intra-op thread count the calibration chose.
        calibration_ms: 90th-percentile ms per frame by "runtime:threads" at calibration.
        stopped_by: "end of source", "max frames", "duration", "stop", "output closed"
            (a reader went away) or "interrupt" (Ctrl+C).
        recorded: files written by the recorder.
    """

    frames_received: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    source_late: int = 0
    latency_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    runtime: str = ""
    threads: int = 0
    calibration_ms: dict[str, float] = field(default_factory=dict)
    stopped_by: str = ""
    recorded: list[str] = field(default_factory=list)

    def percentiles(self) -> dict[str, float | None]:
        """p50, p95, p99 and max latency in ms (None without poses)."""
        if not self.latency_ms:
            return {"p50": None, "p95": None, "p99": None, "max": None}
        a = np.asarray(self.latency_ms)
        return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
                "p99": float(np.percentile(a, 99)), "max": float(a.max())}

    def summary(self) -> dict:
        """A JSON-friendly summary (no per-frame list)."""
        data = {k: v for k, v in asdict(self).items() if k != "latency_ms"}
        data["latency_ms"] = {k: None if v is None else round(v, 3)
                              for k, v in self.percentiles().items()}
        return data

    def describe(self) -> str:
        p = self.percentiles()
        lat = "no pose" if p["p50"] is None else (
            f"latency p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms")
        share = self.frames_dropped / max(self.frames_received, 1)
        late = f", {self.source_late} delivered late by the source" if self.source_late else ""
        return (f"{self.frames_processed} poses from {self.frames_received} frames in "
                f"{self.seconds:.1f} s ({self.stopped_by}); dropped {self.frames_dropped} "
                f"({share:.1%}){late}; {lat}; runtime {self.runtime}, {self.threads} thread(s)")


def run_live(
    predictor: LivePredictor,
    source: Source,
    publishers: list | None = None,
    recorder: Recorder | None = None,
    max_frames: int | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
    verbose: bool = True,
) -> LiveStats:
    """Run the real-time loop until the source ends or a limit is reached.

    Args:
        predictor: the model (calibrated here on the source's first frame if it is not yet).
        source: where frames come from (sources.open_source); stopped on return.
        publishers: objects with `send(bytes)` / `close()` (publish.py); closed on return.
        recorder: keeps the measured poses and writes them on return (even on Ctrl+C).
        max_frames: stop after this many poses.
        duration: stop after this many seconds.
        stop: another thread sets it to stop the loop.
        verbose: print the start and the summary to stderr.

    Returns:
        The run's statistics. Ctrl+C (or SIGTERM) ends the run normally, between two frames
        (stopped_by "interrupt"); a second Ctrl+C interrupts at once.
    """
    publishers = list(publishers or [])
    stats = LiveStats()
    slot = LatestFrame()
    stop = stop or threading.Event()
    signalled = threading.Event()
    start: float | None = None
    try:
        if predictor.calibration is None:
            predictor.init(source.first_frame())
        stats.runtime, stats.threads = predictor.calibration.runtime, predictor.calibration.threads
        stats.calibration_ms = {k: round(v, 3) for k, v in predictor.calibration.ms.items()}
        if verbose:
            print(f"live: {source.description}, {source.width}x{source.height}; Ctrl+C stops",
                  file=sys.stderr)
        start = time.perf_counter()
        with _signals_stop(stop, signalled):
            source.start(slot)
            stats.stopped_by = _loop(predictor, slot, publishers, recorder, stats, stop,
                                     max_frames, None if duration is None else start + duration)
        if signalled.is_set():
            stats.stopped_by = "interrupt"
    except KeyboardInterrupt:  # a second Ctrl+C, or one raised by a processor
        stats.stopped_by = "interrupt"
    finally:
        source.stop()
        stats.frames_received, stats.frames_dropped = slot.received, slot.dropped
        stats.source_late = source.late
        stats.seconds = time.perf_counter() - start if start is not None else 0.0
        for pub in publishers:
            pub.close()
        predictor.close()
        if recorder is not None and start is not None:  # the run began: keep what it saw
            meta = _meta(predictor, source, stats)
            stats.recorded = [str(p) for p in recorder.save(meta)]
    if verbose:
        print(f"live: {stats.describe()}", file=sys.stderr)
        for path in stats.recorded[:1]:
            print(f"live: recorded {path}", file=sys.stderr)
    return stats


@contextmanager
def _signals_stop(stop: threading.Event, signalled: threading.Event):
    """While the loop runs (in the main thread), Ctrl+C and SIGTERM set `stop`, so the loop
    ends between two frames: a pose is published and recorded, or neither. A second Ctrl+C
    interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if signalled.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        signalled.set()
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _loop(predictor: LivePredictor, slot: LatestFrame, publishers: list,
          recorder: Recorder | None, stats: LiveStats, stop: threading.Event,
          max_frames: int | None, deadline: float | None) -> str:
    while True:
        if stop.is_set():
            return "stop"
        if deadline is not None and time.perf_counter() >= deadline:
            return "duration"
        frame = slot.get(timeout=0.1)
        if frame is None:
            if slot.closed:
                return "end of source"
            continue
        pose = predictor.predict_pose(frame.image, frame.timestamp, frame.index, frame.mono)
        latency = (time.perf_counter() - frame.mono) * 1000  # capture -> sending
        data = message(pose, latency, slot.dropped)
        try:
            for pub in publishers:
                pub.send(data)
        except PublisherClosed:
            return "output closed"
        stats.latency_ms.append(latency)
        stats.frames_processed += 1
        if recorder is not None:
            recorder.add(pose, latency)
        if max_frames is not None and stats.frames_processed >= max_frames:
            return "max frames"


def _meta(predictor: LivePredictor, source: Source, stats: LiveStats) -> dict:
    from poselab import __version__

    p = predictor.predictor
    return {
        "source": source.description, "fps": source.fps, "width": source.width,
        "height": source.height, "run": str(p.run.resolve()), "checkpoint_epoch": p.epoch,
        "scorer": p.scorer, "bodyparts": p.bodyparts, "device": str(p.device),
        "input_scale": p.input_scale, "live": stats.summary(),
        "forward_prediction": predictor.forward is not None,
        "poselab_version": __version__, "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
