"""The only module that opens videos (OpenCV).

`VideoReader` gives metadata and frames and never lies about them: index i is the i-th frame
of the stream, pixel for pixel, however it is reached (iteration, `read`, `frames`,
`thumbnails`), so decode problems are detected and reported in one place:
- sequential decoding counts frames itself and records each frame's timestamp;
- a failed grab does not end the video while the container says frames remain: it retries,
  and the timestamp gap after the damage tells which indices were lost (`decode_errors`), so
  later frames keep their true indices (DeepLabCut silently stops instead);
- seeking (CAP_PROP_POS_FRAMES is inexact for some codecs) only targets indices whose
  timestamp is known; the frame it lands on is identified by timestamp and decoded forward,
  or the video is re-read from the start;
- reaching the end gives the true frame count (`count_frames()`), whatever `n_frames` says.

Extending: a new way to read frames drives a `_Cursor` (one capture plus exact accounting)
with `goto`/`next`/`retrieve`, with a test against sequential decoding in tests/io/test_video.py.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

# ffmpeg prints its own warnings for damaged files; poselab reports them itself.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from poselab.errors import VideoError  # noqa: E402

log = logging.getLogger(__name__)

_RETRIES = 8  # failed grabs tolerated at the end when the container declares no more frames
_MAX_FAILS = 4096  # consecutive failed grabs (a damaged stretch) after which the video ends
_SEEK_GAP = 250  # forward jumps seek beyond this when keyframes are unknown (x264's default)
_PENDING = 64  # frames after a failed grab in which timestamps place frames (B-frame reorder)
THUMB_WIDTH = 32  # thumbnails are about this wide (integer area-downsampling factor)

Crop = tuple[int, int, int, int]  # x1, x2, y1, y2: columns x1..x2-1, rows y1..y2-1


def parse_crop(
    crop: str | Sequence[int] | None, size: tuple[int, int] | None = None, where: str = ""
) -> Crop | None:
    """Parse a crop "x1, x2, y1, y2" (DeepLabCut's video_sets format) or 4 ints (or None).

    Raises:
        VideoError: not 4 integers with 0 <= x1 < x2 and 0 <= y1 < y2, or outside `size`
            (width, height); messages start with `where` (e.g. the video path).
    """
    if crop is None:
        return None
    parts = crop.replace(" ", "").split(",") if isinstance(crop, str) else list(crop)
    try:
        x1, x2, y1, y2 = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise VideoError(f"{where}crop {crop!r}: expected four integers x1,x2,y1,y2") from None
    if not (0 <= x1 < x2 and 0 <= y1 < y2):
        raise VideoError(f"{where}crop {crop!r}: needs 0 <= x1 < x2 and 0 <= y1 < y2")
    if size is not None and (x2 > size[0] or y2 > size[1]):
        raise VideoError(f"{where}crop x1, x2, y1, y2 = {x1}, {x2}, {y1}, {y2} is outside the "
                         f"{size[0]}x{size[1]} frame")
    return x1, x2, y1, y2


class _Cursor:
    """One cv2.VideoCapture with exact frame accounting; `index` is the frame last grabbed."""

    def __init__(self, reader: VideoReader, luma: bool = False):
        self.reader, self.luma = reader, luma
        self._open()

    def _open(self) -> None:
        self.cap = cv2.VideoCapture(str(self.reader.path))
        if self.luma:  # the decoder's own planes: the first one is luma (checked in _luma_ok)
            self.cap.set(cv2.CAP_PROP_CONVERT_RGB, 0)
        self.index, self.pending, self.since, self.ended = -1, False, _PENDING, False

    def next(self) -> int | None:
        """Grab the next decodable frame and return its index (None at the end)."""
        r = self.reader
        while True:
            fails = 0
            while not self.cap.grab():
                fails += 1
                if fails > min(max(r.n_frames - self.index - 1, _RETRIES), _MAX_FAILS):
                    if r._count is None:
                        r._count = self.index + 1  # the end of the stream: the true count
                    self.ended = True
                    return None
            r.stats["grabs"] += 1
            index, t = self.index + 1, self.cap.get(cv2.CAP_PROP_POS_MSEC)
            if fails and not r._regular:  # no usable timestamps: a failed grab = a lost frame
                r._lost(range(index, index + fails))
                index += fails
            elif fails:
                self.pending, self.since = True, 0
            self.since += 1
            k = r._time_index(t) if self.since <= _PENDING else None
            if k is not None and k < index:
                continue  # a straggler decoded out of order after the damage: already lost
            if k is not None and k > index and self.pending:
                r._lost(range(index, k))  # the timestamp gap says which frames were lost
                index, self.pending = k, False
            self.index = index
            r._record(index, t)
            return index

    def goto(self, i: int) -> bool:
        """Grab frame i exactly; False when it cannot be decoded or is past the end."""
        r = self.reader
        if i == self.index and not self.ended:
            return True
        seek_ok = r._known(i) and not r.stats["seek_misses"]  # one miss: stop trusting seeks
        if i < self.index or (seek_ok and r._seek_start(i) > self.index):
            if not (seek_ok and self._seek(i)):
                self.cap.release()
                self._open()  # decoding from the start is always exact
        while self.index < i:
            if self.next() is None:
                return False
        return self.index == i

    def _seek(self, i: int) -> bool:
        r = self.reader
        r.stats["seeks"] += 1
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        j = r._index_at(self.cap.get(cv2.CAP_PROP_POS_MSEC)) if self.cap.grab() else None
        if j is None or j > i:  # landed somewhere unidentifiable or too late
            r.stats["seek_misses"] += 1
            return False
        self.index, self.pending, self.since, self.ended = j, False, _PENDING, False
        return True

    def retrieve(self) -> np.ndarray:
        """The grabbed frame, cropped: BGR (H, W, 3), or luma (H, W) for a luma cursor."""
        r = self.reader
        r.stats["retrieves"] += 1
        level = cv2.utils.logging.getLogLevel()
        if self.luma:  # OpenCV warns on every raw frame of formats it does not convert
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            ok, frame = self.cap.retrieve()
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not ok or frame is None:
            raise VideoError(f"{r.path}: frame {self.index} decoded but could not be converted")
        if self.luma:
            frame = frame[: r.height]  # semi-planar formats stack chroma below luma
        if r.crop is not None:
            x1, x2, y1, y2 = r.crop
            frame = frame[y1:y2, x1:x2]
        return frame


class VideoReader:
    """Read a video's metadata and frames (BGR uint8, (H, W, 3), cropped if `crop` is set).

    Attributes:
        path, fps, width, height: the file and its full frame size (before the crop).
        n_frames: frame count declared by the container (wrong for some damaged files).
        crop: (x1, x2, y1, y2) applied to every returned frame, or None.
        decode_errors: sorted indices of the frames found undecodable so far.
        stats: counts of grabs, retrieves, seeks and seek misses (tests, benchmarks).

    Args:
        path: the video file.
        crop: "x1, x2, y1, y2" or 4 ints, inside the frame.

    Raises:
        VideoError: missing file, cannot open, no decodable frame, or a crop outside the frame.
    """

    def __init__(self, path: str | os.PathLike, crop: str | Sequence[int] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: video not found")
        self.crop, self.decode_errors = None, []
        self.stats = {"grabs": 0, "retrieves": 0, "seeks": 0, "seek_misses": 0}
        self._ts, self._t0, self._count, self._keyframes = array("d"), None, None, None
        self._cursor = _Cursor(self)
        cap = self._cursor.cap
        if not cap.isOpened():
            raise VideoError(f"{self.path}: cannot open video (unknown format or corrupt file)")
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.n_frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._regular = self.fps > 0  # timestamps usable to place frames until proven otherwise
        if self._cursor.next() != 0 or (first := self._cursor.retrieve()).size == 0:
            self.close()
            raise VideoError(f"{self.path}: no decodable frame (empty or corrupt video)")
        self.height, self.width = first.shape[:2]  # the decoder's word beats the container's
        self._first, self._luma = first, None  # frame 0, for the luma self-check
        try:
            self.crop = parse_crop(crop, (self.width, self.height), f"{self.path}: ")
        except VideoError:
            self.close()
            raise
        if self.crop == (0, self.width, 0, self.height):
            self.crop = None  # the full frame: no slicing needed

    # frame accounting shared by the cursors
    def _record(self, index: int, t: float) -> None:
        if self._t0 is None and index == 0:
            self._t0 = t
        if index >= len(self._ts):
            self._ts.extend([math.nan] * (index + 1 - len(self._ts)))
        self._ts[index] = t
        if self._regular and self._time_index(t) != index:
            self._regular = False  # variable frame rate or odd timestamps: stop trusting them

    def _time_index(self, t: float) -> int | None:
        """The index a timestamp (ms) implies at the nominal frame rate, if it is close."""
        if not self._regular or self._t0 is None:
            return None
        k = (t - self._t0) * self.fps / 1000.0
        return round(k) if abs(k - round(k)) < 0.25 else None

    def _known(self, i: int) -> bool:
        return i < len(self._ts) and not math.isnan(self._ts[i])

    def _index_at(self, t: float) -> int | None:
        """The index whose recorded timestamp is t (None if none or ambiguous)."""
        hits = np.flatnonzero(np.abs(np.frombuffer(self._ts, dtype=np.float64) - t) < 1e-3)
        return int(hits[0]) if hits.size == 1 else None

    def _seek_start(self, i: int) -> int:
        """Where decoding starts when OpenCV seeks to i: the keyframe at or before i - 16
        (its seek margin), from one demux-only pass (no decoding) over the packets."""
        if self._keyframes is None:
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
            keys = []
            while self._regular and cap.isOpened() and cap.grab():
                if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                    keys.append(self._time_index(cap.get(cv2.CAP_PROP_POS_MSEC)))
            cap.release()
            self._keyframes = sorted(k for k in keys if k is not None)
        if not self._keyframes:  # unknown: assume x264's default keyframe interval
            return i - _SEEK_GAP
        j = bisect.bisect_right(self._keyframes, max(i - 16, 0)) - 1
        return self._keyframes[j] if j >= 0 else 0

    def _lost(self, indices: Iterable[int]) -> None:
        self.decode_errors = sorted(set(self.decode_errors).union(indices))

    def count_frames(self, progress: Callable[[int], object] | None = None) -> int:
        """The true frame count (last decodable index + 1): decodes to the end once, grabbing
        without color conversion, and caches it. `progress` gets the frames advanced."""
        cur = self._cursor
        while self._count is None:
            before = cur.index
            if cur.next() is not None and progress is not None:
                progress(cur.index - before)
        return self._count

    @property
    def count_known(self) -> int | None:
        """The true frame count if the end of the video has been reached already, else None."""
        return self._count

    def read(self, index: int) -> np.ndarray:
        """Frame `index`, exactly. Raises VideoError if negative, past the end or undecodable."""
        if index < 0 or not self._cursor.goto(index):
            why = "undecodable" if index in self.decode_errors else "past the end"
            count = self._count if self._count is not None else self.n_frames
            raise VideoError(f"{self.path}: frame {index} is {why} ({count} frames)")
        return self._cursor.retrieve()

    def frames(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (index, frame) for `indices` (all if None) in one sorted pass, grabbing the
        frames between without conversion and seeking past keyframes; undecodable indices and
        indices past the end are skipped (see `decode_errors`)."""
        cur = self._cursor
        if indices is None:  # sequential pass: decode forward to the end
            if not cur.goto(0):
                return
            while True:
                yield cur.index, cur.retrieve()
                if cur.next() is None:
                    return
        for i in sorted(set(indices)):
            if i >= 0 and (self._count is None or i < self._count) and cur.goto(i):
                yield i, cur.retrieve()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame index, frame) from the start; logs a warning if frames were lost."""
        yield from self.frames(None)
        if problem := self.report():
            log.warning(problem)

    def thumbnail_size(self, width: int = THUMB_WIDTH) -> tuple[int, int, int]:
        """(w, h, factor) of `thumbnails`: the (cropped) frame divided by an integer factor."""
        x1, x2, y1, y2 = self.crop or (0, self.width, 0, self.height)
        f = max(1, (x2 - x1) // width)
        return (x2 - x1) // f, max(1, (y2 - y1) // f), f

    def thumbnails(
        self, indices: Iterable[int], width: int = THUMB_WIDTH
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (index, small gray uint8 (h, w)) for `indices` in one sorted pass (own capture).

        The decoder's luma plane is used as is when frame 0 proves it is luma: no colour
        conversion, which is most of the cost of `read` for many videos; else BGR -> gray."""
        tw, th, f = self.thumbnail_size(width)
        if self._luma is None:
            self._luma = self._luma_ok()
        cur = _Cursor(self, luma=self._luma)
        try:
            for i in sorted(set(indices)):
                if self._count is not None and i >= self._count:
                    break
                if i < 0 or not cur.goto(i):
                    continue
                img = cur.retrieve()
                if img.ndim == 3:
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                # Integer-factor INTER_AREA is a fast box filter; a fractional one is 10x slower.
                yield i, cv2.resize(img[: th * f, : tw * f], (tw, th), interpolation=cv2.INTER_AREA)
        finally:
            cur.cap.release()

    def _luma_ok(self) -> bool:
        cur = _Cursor(self, luma=True)
        raw = cur.retrieve() if cur.next() == 0 else np.zeros(0)
        cur.cap.release()
        x1, x2, y1, y2 = self.crop or (0, self.width, 0, self.height)
        gray = cv2.cvtColor(self._first, cv2.COLOR_BGR2GRAY)[y1:y2, x1:x2]
        if raw.shape != gray.shape or raw.dtype != np.uint8 or raw.std() < 1 or gray.std() < 1:
            return False
        # Luma is an affine image of BGR gray (limited vs full range): correlation near 1.
        return float(np.corrcoef(raw.ravel(), gray.ravel())[0, 1]) > 0.98

    def report(self) -> str | None:
        """One line describing lost frames, or None when nothing is known to be wrong."""
        parts = []
        if self.decode_errors:
            shown = ", ".join(map(str, self.decode_errors[:5]))
            more = ", ..." if len(self.decode_errors) > 5 else ""
            parts.append(f"{len(self.decode_errors)} undecodable frame(s) (indices {shown}{more})")
        if self._count is not None and self._count < self.n_frames:
            parts.append(f"the container declares {self.n_frames} frames but only {self._count} "
                         "decode (truncated, or damaged and later frames renumbered)")
        return f"{self.path}: " + "; ".join(parts) if parts else None

    def close(self) -> None:
        self._cursor.cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_prediction_rows(reader: VideoReader, n_rows: int, predictions: str | os.PathLike
                          ) -> int | None:
    """The one frame-count contract between a video and its predictions table.

    Analysis writes one row per frame, as many rows as the container declares or as really
    decode, whichever is larger; frames that could not be decoded (damaged, or past the end
    of a video that ends early) have NaN rows. Every command that reads predictions beside
    a video (labeled-video, extract-outliers, ...) accepts exactly those tables:
    n_rows == the declared count, or == the true count (decoded to the end once, only when
    the declared count disagrees).

    Returns:
        The true frame count when it had to be counted, else None (not known yet).

    Raises:
        PoselabError: a table of another length (made from another video).
    """
    from poselab.errors import PoselabError

    if n_rows == reader.n_frames:
        return reader.count_known
    true = reader.count_frames()
    if n_rows != true:
        raise PoselabError(f"{predictions}: {n_rows} prediction rows but {reader.path} has "
                           f"{true} decodable frames (its container declares "
                           f"{reader.n_frames}); were they made from this video?")
    return true
