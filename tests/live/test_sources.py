"""Live sources: the one-slot buffer drops instead of queueing, a video file is played with
the frame indices `analyze` uses, and bad sources are one-line errors."""

from __future__ import annotations

import threading
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from poselab.errors import PoselabError
from poselab.live.sources import CaptureSource, Frame, LatestFrame, VideoFileSource, open_source


def _frame(i: int) -> Frame:
    return Frame(i, np.zeros((2, 2, 3), np.uint8), float(i), float(i))


def test_latest_frame_keeps_the_newest_and_counts_the_rest():
    slot = LatestFrame()
    for i in range(5):
        slot.put(_frame(i))
    assert slot.get(timeout=0).index == 4  # not 0: nothing is queued
    assert (slot.received, slot.dropped) == (5, 4)
    assert slot.get(timeout=0) is None  # empty, still open
    slot.put(_frame(5))
    slot.close()
    assert slot.closed and slot.get().index == 5  # a frame put before close is still served
    assert slot.get() is None


def test_latest_frame_hands_on_the_source_error():
    slot = LatestFrame()
    slot.put(_frame(0))
    slot.close(RuntimeError("camera unplugged"))
    assert slot.get().index == 0
    with pytest.raises(RuntimeError, match="camera unplugged"):
        slot.get()


def test_get_waits_for_a_frame_from_another_thread():
    slot = LatestFrame()
    threading.Timer(0.05, slot.put, args=(_frame(7),)).start()
    assert slot.get(timeout=10).index == 7


def _drain(source, slot: LatestFrame) -> list[Frame]:
    """Take frames as fast as they come until the source ends."""
    got = []
    source.start(slot)
    while (frame := slot.get(timeout=10)) is not None:
        got.append(frame)
    source.stop()
    return got


def test_video_file_is_played_in_order_with_capture_times(live_video: Path):
    from poselab.io.video import VideoReader

    source = open_source(str(live_video), fps=200)
    assert isinstance(source, VideoFileSource) and source.fps == 200
    assert (source.width, source.height) == (96, 64)
    slot = LatestFrame()
    got = _drain(source, slot)
    assert slot.received == 24 and len(got) + slot.dropped == 24
    indices = [f.index for f in got]
    assert indices == sorted(indices) and indices[-1] == 23  # the last frame always arrives
    assert all(b.mono >= a.mono and b.timestamp >= a.timestamp for a, b in pairwise(got))
    with VideoReader(live_video) as reader:  # the same pixels analyze gets for that index
        for f in got[:3]:
            np.testing.assert_array_equal(f.image, reader.read(f.index))


def test_video_plays_at_its_own_rate_by_default(live_video: Path):
    source = open_source(live_video)
    assert source.fps == pytest.approx(30.0) and "30 frames/s" in source.description
    source.stop()


def test_stream_url_is_read_like_a_camera(live_video: Path):
    source = open_source(f"file://{live_video}")
    assert isinstance(source, CaptureSource) and source.first_frame().shape == (64, 96, 3)
    slot = LatestFrame()
    got = _drain(source, slot)
    assert got and slot.received == len(got) + slot.dropped


@pytest.mark.parametrize(("spec", "needle"), [
    ("/no/such/video.mp4", "no such file"),
    ("rtsp://127.0.0.1:9/none", "cannot open"),
])
def test_bad_sources_are_one_line_errors(spec: str, needle: str):
    with pytest.raises(PoselabError, match=needle) as info:
        open_source(spec)
    assert "\n" not in str(info.value)


def test_bad_fps_is_refused(live_video: Path):
    with pytest.raises(PoselabError, match="--fps"):
        open_source(live_video, fps=0)
