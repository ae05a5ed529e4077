"""`poselab live`: real-time prediction from a camera, a video file or a stream."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import RunArg
from poselab.errors import PoselabError


def live_cmd(
    run: Path = RunArg,
    source: str = typer.Option(..., "--source", "-s", show_default=False,
                               help="Camera index (0), video file, or stream URL "
                               "(rtsp://..., http://...)."),
    fps: float = typer.Option(None, "--fps", help="Play a video file at this rate, or ask "
                              "a camera for it (default: the file's own rate)."),
    runtime: str = typer.Option("auto", "--runtime", help="auto (calibrate and keep the "
                                "fastest), torch, torch-bf16, torchscript or onnx."),
    record: Path = typer.Option(None, "--record", help="Write the poses to this .h5 in "
                                "DeepLabCut's layout when the run stops (default: none)."),
    csv: bool = typer.Option(False, "--csv", help="With --record, also write the .csv twin."),
    publish: str = typer.Option(None, "--publish", help="Also send each pose to "
                                "tcp://HOST:PORT (ZeroMQ PUB) or udp://HOST:PORT "
                                "(default: none)."),
    wait_subscribers: int = typer.Option(0, "--wait-subscribers", help="With --publish "
                                         "tcp://..., start only when this many "
                                         "subscribers are connected."),
    forward: bool = typer.Option(False, "--forward", help="Predict each pose at the moment "
                                 "it is published (constant-velocity Kalman step)."),
    forward_ms: float = typer.Option(0.0, "--forward-ms", help="With --forward, predict "
                                     "this many ms further ahead (e.g. a device's delay)."),
    stdout: bool = typer.Option(True, "--stdout/--no-stdout", help="Print each pose as a "
                                "JSON line on stdout."),
    processor: str = typer.Option(None, "--processor", help="FILE.py:NAME, your Processor "
                                  "class, called with every pose (default: none)."),
    max_frames: int = typer.Option(None, "--max-frames", help="Stop after this many poses "
                                   "(default: no limit)."),
    duration: float = typer.Option(None, "--duration", help="Stop after this many seconds "
                                   "(default: no limit)."),
    threads: int = typer.Option(0, "--threads", help="Intra-op threads (torch, OpenCV, ONNX "
                                "Runtime); 0 calibrates 1 and one per core."),
    device: str = typer.Option("cpu", help="cpu, cuda, mps or auto."),
) -> None:
    """Predict poses in real time, one frame at a time, with measured latency.

    Frames are processed as they arrive; when the model falls behind, older
    frames are dropped (never queued, so latency stays flat) and counted. Each
    pose goes out as a JSON line on stdout with its frame's capture timestamp
    and latency, to a socket with --publish, and to a DeepLabCut predictions
    file with --record (written when the run stops; Ctrl+C stops it and keeps
    everything recorded). The runtime is calibrated at start and printed.

    Examples:
      poselab live models/fastest_lite0 --source 0 --record session1.h5
      poselab live models/fastest_lite0 --source videos/mouse1.mp4 --fps 60
      poselab live models/fastest_lite0 --source 0 --publish tcp://127.0.0.1:5555
      poselab live models/fastest_lite0 --source rtsp://cam.local/stream --forward
    """
    from poselab.live.forward import ForwardConfig
    from poselab.live.loop import run_live
    from poselab.live.predictor import LivePredictor, load_processor
    from poselab.live.publish import Recorder, StdoutPublisher, open_publisher
    from poselab.live.sources import open_source

    for name, value in (("--max-frames", max_frames), ("--duration", duration)):
        if value is not None and not value > 0:
            raise PoselabError(f"{name} {value}: must be > 0")
    if wait_subscribers < 0 or (wait_subscribers and not (publish or "").startswith("tcp://")):
        raise PoselabError("--wait-subscribers needs --publish tcp://HOST:PORT and a count "
                           ">= 0")
    if forward_ms < 0:
        raise PoselabError(f"--forward-ms {forward_ms}: must be >= 0")
    user_processor = load_processor(processor) if processor else None
    fwd = ForwardConfig(extra_ms=forward_ms) if forward or forward_ms else False
    predictor = LivePredictor(run, runtime, user_processor, fwd, device, threads)
    if record is not None and record.suffix != ".h5":  # before anything is opened
        raise PoselabError(f"--record {record}: expected a .h5 file name (DeepLabCut's "
                           "predictions layout; --csv adds the .csv twin)")
    src = open_source(source, fps)
    publishers = [StdoutPublisher()] if stdout else []
    try:
        if publish:
            publishers.append(open_publisher(publish))
        # Last, so a bad option above never leaves its folder behind.
        recorder = Recorder(record, predictor.bodyparts, predictor.scorer, csv) if record \
            else None
        if wait_subscribers:
            typer.echo(f"live: waiting for {wait_subscribers} subscriber(s) on {publish}",
                       err=True)
            publishers[-1].wait_for_subscribers(wait_subscribers)
    except BaseException:
        src.stop()
        for pub in publishers:
            pub.close()
        raise
    run_live(predictor, src, publishers, recorder, max_frames, duration)  # Ctrl+C: a clean stop
