"""VideoReader: exact indices (seek vs sequential decoding), true counts, damaged files, crop."""

from __future__ import annotations

import os
import random
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from poselab.errors import PoselabError, VideoError
from poselab.io.video import VideoReader, parse_crop
from tests.conftest import SHARED_DATA

SHARED = SHARED_DATA
OPENFIELD_VIDEO = SHARED / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4"


def make_video(path: Path, n: int = 60, size: tuple[int, int] = (96, 64)) -> Path:
    """An MJPG video whose frames all differ (a noise background plus the index as bars)."""
    w, h = size
    rng = np.random.default_rng(1)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    assert writer.isOpened()
    for i in range(n):
        frame = background.copy()
        frame[: h // 2, (i * 3) % w : (i * 3) % w + 3] = 255
        frame[h // 2 :, :: max(1, i % 7 + 1)] //= 2
        writer.write(frame)
    writer.release()
    return path


def sequential(path: Path) -> dict[int, np.ndarray]:
    """Every frame by a plain OpenCV read loop: the reference for index i."""
    cap, frames = cv2.VideoCapture(str(path)), {}
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames[len(frames)] = frame


def check_reads(path: Path, reference: dict[int, np.ndarray], indices: list[int]) -> VideoReader:
    with VideoReader(path) as reader:
        for i in indices:  # random order: forward grabs, forward seeks and backward seeks
            assert np.array_equal(reader.read(i), reference[i]), f"frame {i}"
        every = sorted(reference)[::7]
        got = dict(reader.frames(every))
        assert list(got) == every
        assert all(np.array_equal(got[i], reference[i]) for i in every)
    return reader


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.avi")


def test_iteration_metadata_and_count(video: Path):
    reference = sequential(video)
    with VideoReader(video) as reader:
        assert (reader.width, reader.height, reader.n_frames) == (96, 64, 60)
        assert reader.fps == pytest.approx(30.0)
        got = list(reader)
        assert [i for i, _ in got] == list(range(60))
        assert all(np.array_equal(f, reference[i]) for i, f in got)
        assert reader.count_frames() == 60 and reader.decode_errors == []
        assert reader.report() is None


def test_seek_matches_sequential_decoding_synthetic(video: Path):
    reference = sequential(video)
    indices = random.Random(0).sample(range(60), 25) + [59, 0, 30, 29]
    reader = check_reads(video, reference, indices)
    assert reader.stats["seeks"] > 0  # backward reads went through the verified seek


def test_seek_matches_sequential_decoding_mp4(tmp_path: Path):
    synthetic = pytest.importorskip("poselab.io.synthetic")
    path = tmp_path / "synthetic.mp4"
    synthetic.make_synthetic_video(path, 90, (96, 64), seed=3)
    reference = sequential(path)
    check_reads(path, reference, random.Random(1).sample(range(len(reference)), 20))


def test_seek_matches_sequential_decoding_h264_bframes(tmp_path: Path):
    """H.264 with B-frames and short GOPs, written with ffmpeg (dev-only imageio-ffmpeg)."""
    iio = pytest.importorskip("imageio_ffmpeg")
    path = tmp_path / "bframes.mp4"
    writer = iio.write_frames(str(path), (96, 64), fps=30, codec="libx264", macro_block_size=1,
                              output_params=["-bf", "3", "-g", "12", "-pix_fmt", "yuv420p"])
    writer.send(None)
    for frame in sequential(make_video(tmp_path / "src.avi", 120)).values():
        writer.send(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.close()
    reference = sequential(path)
    assert len(reference) == 120
    # Far forward jumps (> the seek gap) need a video this long only after a full pass.
    check_reads(path, reference, random.Random(2).sample(range(120), 30))


def test_seek_matches_sequential_decoding_openfield():
    """The real H.264 (B-frames, keyframes at 0, 182, 366, 548): reads vs a read loop."""
    if not OPENFIELD_VIDEO.is_file():
        pytest.skip(f"{OPENFIELD_VIDEO} not available")
    cap, crc = cv2.VideoCapture(str(OPENFIELD_VIDEO)), {}
    while len(crc) < 600:
        ok, frame = cap.read()
        assert ok
        crc[len(crc)] = zlib.crc32(frame)
    with VideoReader(OPENFIELD_VIDEO) as reader:
        # forward grabs, backward seeks, and the frames on both sides of keyframes
        for i in [420, 3, 190, 181, 182, 599, 365, 366, 548, 547]:
            assert zlib.crc32(reader.read(i)) == crc[i], f"frame {i}"
        strided = {i: zlib.crc32(f) for i, f in reader.frames(range(300, 600, 59))}
        assert strided == {i: crc[i] for i in range(300, 600, 59)}
        assert reader.stats["seeks"] > 0 and reader.decode_errors == []


def test_thumbnails_are_downsampled_gray_of_the_same_frames(video: Path):
    reference = sequential(video)
    with VideoReader(video) as reader:
        tw, th, f = reader.thumbnail_size()
        thumbs = dict(reader.thumbnails([40, 3, 17]))
    assert list(thumbs) == [3, 17, 40] and (tw, th, f) == (32, 21, 3)
    for i, small in thumbs.items():
        gray = cv2.cvtColor(reference[i], cv2.COLOR_BGR2GRAY)[: th * f, : tw * f]
        expected = cv2.resize(gray, (tw, th), interpolation=cv2.INTER_AREA).astype(int)
        assert small.shape == (th, tw) and small.dtype == np.uint8
        assert np.abs(small.astype(int) - expected).mean() < 3  # luma vs BGR gray rounding


def test_crop_is_applied_and_validated(video: Path):
    full = sequential(video)[5]
    with VideoReader(video, crop="10, 50, 4, 40") as reader:
        assert reader.crop == (10, 50, 4, 40)
        assert np.array_equal(reader.read(5), full[4:40, 10:50])
        assert reader.thumbnail_size() == (40, 36, 1)
    with VideoReader(video, crop=(0, 96, 0, 64)) as reader:
        assert reader.crop is None  # the full frame
    with pytest.raises(VideoError, match="outside the 96x64 frame"):
        VideoReader(video, crop="0, 97, 0, 64")
    for bad in ["1,2,3", "a,b,c,d", "5,5,0,10", "-1,5,0,10"]:
        with pytest.raises(VideoError, match="crop"):
            parse_crop(bad)


def test_truncated_avi_reports_the_true_count(video: Path, tmp_path: Path):
    reference = sequential(video)
    cut = tmp_path / "cut.avi"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with VideoReader(cut) as reader:
        got = list(reader)
        count = reader.count_frames()
        assert reader.n_frames == 60 and 0 < count < 60  # the container still claims 60
        assert [i for i, _ in got] == list(range(count))
        # No frame is mislabeled; only the last one may be cut short (MJPEG decodes a partial
        # image without complaint).
        assert all(np.array_equal(f, reference[i]) for i, f in got[:-1])
        assert "declares 60 frames but only" in reader.report()
        with pytest.raises(VideoError, match="past the end"):
            reader.read(count)


def test_corrupted_avi_reports_lost_frames(video: Path, tmp_path: Path):
    """Zeroing ~2 frames' worth of bytes: the AVI demuxer skips the damage without an error
    (and without timestamps to tell), so the reader must say the count is short."""
    bad = tmp_path / "bad.avi"
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8000] = bytes(8000)
    bad.write_bytes(bytes(data))
    with VideoReader(bad) as reader:
        got = [i for i, _ in reader]
        count = reader.count_frames()
        assert reader.n_frames == 60 and count < 60  # never a silent, plausible-looking stop
        assert got == [i for i in range(count) if i not in reader.decode_errors]
        assert "declares 60 frames but only" in reader.report()


def test_corrupted_h264_keeps_true_indices_after_the_damage(tmp_path: Path):
    """Frames lost in a damaged stretch of H.264 are reported; later frames keep their index."""
    if not OPENFIELD_VIDEO.is_file():
        pytest.skip(f"{OPENFIELD_VIDEO} not available")
    data = bytearray(OPENFIELD_VIDEO.read_bytes())
    data[400_000:420_000] = bytes(20_000)  # inside mdat, a few dozen frames before 548
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    with VideoReader(bad) as damaged, VideoReader(OPENFIELD_VIDEO) as original:
        # Frames up to the next keyframe (548) decode with concealed references; from there
        # on they are pixel-exact, and at their true index.
        for i in (560, 700):
            assert np.array_equal(damaged.read(i), original.read(i)), f"frame {i}"
        lost = damaged.decode_errors
        assert 0 < len(lost) < 100 and lost == list(range(lost[0], lost[-1] + 1))
        assert lost[-1] < 548 and str(len(lost)) in damaged.report()
        with pytest.raises(VideoError, match="undecodable"):
            damaged.read(lost[0])


def test_unreadable_and_empty_videos(tmp_path: Path, video: Path):
    truncated_mp4 = tmp_path / "half.mp4"  # mp4v keeps its index at the end: unopenable
    pytest.importorskip("poselab.io.synthetic").make_synthetic_video(truncated_mp4, 30, (96, 64))
    data = truncated_mp4.read_bytes()
    truncated_mp4.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(5000))
    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (96, 64))
    writer.release()
    for path in [truncated_mp4, garbage, empty, tmp_path / "missing.avi"]:
        with pytest.raises(PoselabError, match=path.name):
            VideoReader(path)
    shutil.copy(video, tmp_path / "ok.avi")  # the reader leaves good files alone
    assert VideoReader(tmp_path / "ok.avi").n_frames == 60
