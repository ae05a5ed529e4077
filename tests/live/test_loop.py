"""The live loop: a slow model drops frames instead of queueing them, the latency is measured,
the recording equals `analyze` on the same frames, Ctrl+C keeps the recording, every
published pose reaches socket clients, and the processor sees every pose."""

from __future__ import annotations

import itertools
import json
import socket
import time
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from poselab.io.predictions import read_meta, read_predictions
from poselab.live import LivePredictor, Processor, open_source, run_live
from poselab.live.publish import Recorder, StdoutPublisher, ZmqPublisher, open_publisher

from .conftest import BODYPARTS

MODEL_SECONDS = 0.1  # the fake slow model: 10 frame intervals at 100 frames/s


@pytest.fixture(scope="module")
def predictor(live_run: Path) -> LivePredictor:
    lp = LivePredictor(live_run, runtime="torch", threads=1, verbose=False)
    lp.init(np.zeros((64, 96, 3), np.uint8))
    return lp


def _slow(network):
    def run(x):
        time.sleep(MODEL_SECONDS)
        return network(x)
    return run


def test_a_slow_model_drops_frames_instead_of_queueing(live_run: Path, live_video: Path):
    lp = LivePredictor(live_run, runtime="torch", threads=1, verbose=False)
    lp.init(np.zeros((64, 96, 3), np.uint8))
    lp.predictor.model = _slow(lp.predictor.model)
    out = StringIO()
    stats = run_live(lp, open_source(live_video, fps=100), [StdoutPublisher(out)],
                     verbose=False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    frames = [m["frame"] for m in lines]
    assert stats.stopped_by == "end of source" and stats.frames_received == 24
    # Every frame is either published or counted as dropped; none waits in a queue.
    assert stats.frames_processed + stats.frames_dropped == 24
    assert stats.frames_processed == len(lines) < 24 and stats.frames_dropped > 0
    # The model always takes the newest frame: indices skip, and the last frame is served.
    assert frames == sorted(frames) and frames[-1] == 23
    assert any(b - a > 1 for a, b in itertools.pairwise(frames))
    assert lines[-1]["dropped"] == stats.frames_dropped
    # Latency is measured per pose (capture to sending), so it includes the model's time.
    assert all(m["latency_ms"] >= MODEL_SECONDS * 1000 for m in lines)
    assert stats.latency_ms == pytest.approx([m["latency_ms"] for m in lines], abs=1e-3)
    p = stats.percentiles()
    assert p["p50"] <= p["p95"] <= p["p99"] <= p["max"]


@pytest.mark.parametrize("runtime", ["torch", "torchscript"])
def test_recording_equals_analyze_on_the_same_frames(live_run: Path, live_video: Path,
                                                     tmp_path: Path, runtime: str):
    from poselab.analysis.analyze import analyze_video
    from poselab.pose.predict import Predictor

    lp = LivePredictor(live_run, runtime=runtime, threads=1, verbose=False)
    rec = Recorder(tmp_path / "live.h5", lp.bodyparts, lp.scorer)
    stats = run_live(lp, open_source(live_video, fps=60), [], rec, verbose=False)
    assert stats.runtime == runtime
    live = read_predictions(tmp_path / "live.h5")
    h5 = analyze_video(Predictor.from_dir(live_run, device="cpu"), live_video, dest=tmp_path,
                       progress=False)
    offline = read_predictions(h5)
    assert live.columns.equals(offline.columns) and len(live) == len(offline) == 24
    seen = live.notna().all(axis=1).to_numpy()
    assert seen.sum() == stats.frames_processed and seen[-1]
    assert live[~seen].isna().all(axis=None)  # dropped frames are NaN rows, not missing rows
    # fp32 both ways (the run's precision); TorchScript differs by float rounding only.
    np.testing.assert_allclose(live[seen].to_numpy(), offline[seen].to_numpy(), atol=1e-3)
    meta = read_meta(tmp_path / "live.h5")
    assert meta["live"]["frames_processed"] == stats.frames_processed
    assert meta["live"]["runtime"] == runtime and meta["fps"] == 60
    timing = (tmp_path / "live_timing.csv").read_text().splitlines()
    assert timing[0] == "frame,timestamp,latency_ms" and len(timing) == 1 + seen.sum()


def test_ctrl_c_keeps_what_was_recorded(predictor: LivePredictor, live_video: Path,
                                        tmp_path: Path):
    calls = []

    def interrupt_at_third(pose):
        calls.append(pose.index)
        if len(calls) == 3:
            raise KeyboardInterrupt

    predictor.processor = interrupt_at_third
    try:
        rec = Recorder(tmp_path / "cut.h5", predictor.bodyparts, predictor.scorer)
        stats = run_live(predictor, open_source(live_video, fps=30), [], rec, verbose=False)
    finally:
        predictor.processor = None
    assert stats.stopped_by == "interrupt" and stats.frames_processed == 2
    df = read_predictions(tmp_path / "cut.h5")
    recorded = df.index[df.notna().all(axis=1)].tolist()
    assert recorded == calls[:2]  # the interrupted third pose was never published
    assert not list(tmp_path.glob(".*tmp*"))


def test_sigterm_stops_between_frames(predictor: LivePredictor, live_video: Path,
                                      tmp_path: Path):
    """kill (SIGTERM) or Ctrl+C while running: the loop finishes the frame in hand, then
    stops and writes the recording; the handlers in place before are restored."""
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def terminate_at_second(pose):
        seen.append(pose.index)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    predictor.processor = terminate_at_second
    out = StringIO()
    try:
        rec = Recorder(tmp_path / "term.h5", predictor.bodyparts, predictor.scorer)
        stats = run_live(predictor, open_source(live_video, fps=30), [StdoutPublisher(out)],
                         rec, verbose=False)
    finally:
        predictor.processor = None
    published = [json.loads(line)["frame"] for line in out.getvalue().splitlines()]
    assert stats.stopped_by == "interrupt" and published == seen[:2]  # the second is kept
    df = read_predictions(tmp_path / "term.h5")
    assert df.index[df.notna().all(axis=1)].tolist() == published
    assert signal.getsignal(signal.SIGTERM) is before


def test_processor_sees_every_published_pose(predictor: LivePredictor, live_video: Path):
    class Count(Processor):
        def __init__(self):
            self.poses, self.closed = [], False

        def process(self, pose):
            assert pose.bodyparts == BODYPARTS and pose.xy.shape == (4, 2)
            assert pose.latency_ms >= 0 and pose.timestamp > 1e9
            self.poses.append(pose.index)

        def close(self):
            self.closed = True

    counter = Count()
    predictor.processor = counter
    out = StringIO()
    try:
        stats = run_live(predictor, open_source(live_video, fps=60), [StdoutPublisher(out)],
                         max_frames=5, verbose=False)
    finally:
        predictor.processor = None
    published = [json.loads(line)["frame"] for line in out.getvalue().splitlines()]
    assert stats.stopped_by == "max frames" and counter.poses == published
    assert len(published) == 5 and counter.closed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_zeromq_delivers_every_published_pose(predictor: LivePredictor, live_video: Path):
    import zmq

    url = f"tcp://127.0.0.1:{_free_port()}"
    pub = ZmqPublisher(url)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(url)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    assert pub.wait_for_subscribers(1, timeout=30)
    out = StringIO()
    stats = run_live(predictor, open_source(live_video, fps=100), [StdoutPublisher(out), pub],
                     verbose=False)
    published = out.getvalue().encode().splitlines()
    received = []
    while len(received) < len(published) and sub.poll(10_000):  # closed with a linger
        received.append(sub.recv())
    assert not sub.poll(100)  # and nothing else
    sub.close()
    assert len(published) == stats.frames_processed > 0
    assert received == published  # every pose, in order, byte for byte
    message = json.loads(received[0])
    assert set(message) >= {"frame", "timestamp", "latency_ms", "dropped", "pose"}
    assert list(message["pose"]) == BODYPARTS and len(message["pose"]["snout"]) == 3


def test_udp_delivers_every_published_pose(predictor: LivePredictor, live_video: Path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))  # the datagrams wait in its receive buffer
    port = listener.getsockname()[1]
    out = StringIO()
    stats = run_live(predictor, open_source(live_video, fps=100),
                     [StdoutPublisher(out), open_publisher(f"udp://127.0.0.1:{port}")],
                     verbose=False)
    published = out.getvalue().encode().splitlines()
    listener.settimeout(10)
    received = [listener.recv(65536) for _ in published]
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.recv(65536)  # and nothing else
    listener.close()
    assert received == published
    assert len(received) == stats.frames_processed > 0


def test_predict_matches_the_batch_predictor(predictor: LivePredictor, live_video: Path):
    from poselab.io.video import VideoReader
    from poselab.pose.predict import Predictor

    with VideoReader(live_video) as reader:
        frame = reader.read(5)
    xy, lik = predictor.predict(frame)
    ref_xy, ref_lik = Predictor.from_dir(predictor.predictor.run, device="cpu").predict_frames(
        frame[None])
    assert xy.shape == (4, 2) and lik.shape == (4,)
    np.testing.assert_allclose(xy, ref_xy[0], atol=1e-3)
    np.testing.assert_allclose(lik, ref_lik[0], atol=1e-5)


def test_forward_prediction_is_published_with_the_measured_pose(live_run: Path,
                                                                live_video: Path):
    lp = LivePredictor(live_run, runtime="torch", forward=True, threads=1,
                       verbose=False)
    out = StringIO()
    run_live(lp, open_source(live_video, fps=60), [StdoutPublisher(out)], verbose=False)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all("measured" in m and m["ahead_ms"] > 0 for m in lines)
    assert lp.forward.config.pcutoff == 0.1  # the run's pcutoff


def test_the_example_client_reads_the_socket(predictor: LivePredictor, live_video: Path):
    """examples/live_client.py (no poselab import) receives the poses and times them."""
    import subprocess
    import sys

    client = Path(__file__).resolve().parents[2] / "examples" / "live_client.py"
    url = f"tcp://127.0.0.1:{_free_port()}"
    pub = ZmqPublisher(url)
    proc = subprocess.Popen([sys.executable, str(client), url, "--count", "3", "--zone",
                             "0,0,1000,1000", "--pcutoff", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert pub.wait_for_subscribers(1, timeout=60)
        out = StringIO()
        run_live(predictor, open_source(live_video, fps=60), [StdoutPublisher(out), pub],
                 max_frames=3, verbose=False)
        printed, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = printed.splitlines()
    frames = [json.loads(m)["frame"] for m in out.getvalue().splitlines()]
    assert [int(line.split()[1]) for line in lines[:3]] == frames
    assert "IN" in lines[0] and "latency" in lines[0]  # entered the zone on the first pose
    assert lines[3].startswith("3 poses; latency at this client p50")
