"""Frame sources for real-time prediction, and the one-slot buffer between them and the model.

A source runs its own thread and puts every frame into a `LatestFrame` slot as it arrives,
stamped with its capture time. The slot holds one frame: a new frame replaces one the model
has not taken yet, and the replaced frame is counted as dropped. Latency therefore never
grows when the model falls behind; throughput drops instead, and the count says by how much.

Sources (`open_source(spec)`):
  "0", "1", ...        a camera by index (cv2.VideoCapture)
  "rtsp://...", ...    a stream URL OpenCV can open (anything with "://")
  a file path          a video file, played at its own frame rate or at `fps`, each frame
                       handed over at its scheduled time as a camera would (poselab's
                       VideoReader decodes it, so frame indices are the ones `analyze` uses)

Cameras and streams are opened with cv2.VideoCapture here rather than through
poselab.io.video: VideoReader is built for files (exact frame accounting, seeking), a live
device has neither a length nor a past to seek to.

Adding a source: subclass `Source`, implement `_open` (metadata) and `_produce` (the thread
body: `self._deliver(index, image)` per frame until `self._stop` is set or frames run out).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poselab.errors import PoselabError


@dataclass
class Frame:
    """A captured frame.

    Attributes:
        index: frame number (the video's frame index; for cameras and streams, the count of
            frames received so far).
        image: BGR uint8 (H, W, 3), as OpenCV decodes it.
        timestamp: wall-clock capture time, seconds since the epoch (time.time()), which
            other programs on the machine can compare with their own clock.
        mono: the same moment on time.perf_counter(), for latency arithmetic.
    """

    index: int
    image: np.ndarray
    timestamp: float
    mono: float


class LatestFrame:
    """A one-frame mailbox between a source thread and the model: newest frame wins.

    Attributes:
        received: frames put so far.
        dropped: frames replaced before the model took them.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.received = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1  # the model is still busy: the older frame is stale
            self._frame = frame
            self.received += 1
            self._cond.notify()

    @property
    def closed(self) -> bool:
        """The source has ended (frames may still wait in the slot)."""
        return self._closed

    def close(self, error: BaseException | None = None) -> None:
        """No more frames (end of video, camera gone); `error` is re-raised by `get`."""
        with self._cond:
            self._closed, self._error = True, error
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, waiting for one; None once closed and empty (or on timeout).

        Raises:
            The error the source closed the slot with, once its frames are taken.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            if frame is None and self._error is not None:
                raise self._error
            return frame


class Source:
    """A frame source with its own capture thread.

    Attributes:
        description: what it is, for messages ("video x.mp4 at 60 fps", "camera 0").
        width, height: frame size (known after construction, before `start`).
        fps: the nominal frame rate (None when unknown, e.g. some cameras and streams).
        late: frames handed over more than one frame interval after their schedule (video
            files only: the decoder could not keep up with the requested rate).
    """

    description = "source"
    width = height = 0
    fps: float | None = None

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._slot: LatestFrame | None = None
        self.late = 0

    def start(self, slot: LatestFrame) -> None:
        """Start capturing into `slot` (closed when the source ends or fails)."""
        self._slot = slot
        self._thread = threading.Thread(target=self._run, name="poselab-live-source",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop capturing and release the device or file (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._release()

    def _run(self) -> None:
        error = None
        try:
            self._produce()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer through the slot
            error = exc
        finally:
            self._slot.close(error)

    def _deliver(self, index: int, image: np.ndarray) -> None:
        self._slot.put(Frame(index, image, time.time(), time.perf_counter()))

    def _produce(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        pass


class VideoFileSource(Source):
    """A video file played in real time: frame i is handed over at t0 + i / fps.

    Decoding happens ahead of each frame's time, so (as with a camera) the capture
    timestamp is the moment the frame becomes available, not when decoding started.

    Args:
        path: the video file.
        fps: playback rate (default: the file's own).

    Raises:
        VideoError: missing or unreadable video.
        PoselabError: no frame rate in the file and none given, or fps <= 0.
    """

    def __init__(self, path: str | Path, fps: float | None = None) -> None:
        from poselab.io.video import VideoReader

        super().__init__()
        if fps is not None and not fps > 0:
            raise PoselabError(f"--fps {fps}: must be > 0")
        self.reader = VideoReader(path)
        rate = fps or self.reader.fps
        if not rate or rate <= 0:
            self.reader.close()
            raise PoselabError(f"{path}: the video states no frame rate; give one with --fps")
        self.fps = float(rate)
        self.width, self.height = self.reader.width, self.reader.height
        self.description = f"video {Path(path).name} at {self.fps:g} frames/s"
        self.n_frames = self.reader.n_frames

    def first_frame(self) -> np.ndarray:
        """Frame 0 (for calibrating the model before playback starts)."""
        return self.reader.read(0)

    def _produce(self) -> None:
        period = 1.0 / self.fps
        start = time.perf_counter()
        for index, image in self.reader.frames():
            due = start + index * period
            wait = due - time.perf_counter()
            if wait > 0 and self._stop.wait(wait):
                return
            if wait < -period:
                self.late += 1
            if self._stop.is_set():
                return
            self._deliver(index, image)

    def _release(self) -> None:
        self.reader.close()


class CaptureSource(Source):
    """A camera (by index) or a stream URL through cv2.VideoCapture, read as fast as it
    delivers.

    Args:
        spec: camera index (int) or URL.
        fps: ask the camera for this frame rate (cameras only; many ignore it).

    Raises:
        PoselabError: the camera or stream cannot be opened or delivers no frame.
    """

    def __init__(self, spec: int | str, fps: float | None = None) -> None:
        import cv2

        super().__init__()
        what = f"camera {spec}" if isinstance(spec, int) else f"stream {spec}"
        self.cap = cv2.VideoCapture(spec)
        if not self.cap.isOpened():
            raise PoselabError(f"{what}: cannot open it (check the index or URL)")
        if isinstance(spec, int):
            # A driver queue of stale frames would add latency before we ever see them.
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if fps:
                self.cap.set(cv2.CAP_PROP_FPS, float(fps))
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise PoselabError(f"{what}: opened, but delivers no frame")
        self._first = first
        self.height, self.width = first.shape[:2]
        rate = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = rate if rate > 0 else None
        self.description = what

    def first_frame(self) -> np.ndarray:
        return self._first

    def _produce(self) -> None:
        index, fails = 0, 0
        while not self._stop.is_set():
            if not self.cap.grab():
                fails += 1
                if fails > 10:  # a stream that ended or a camera that went away
                    return
                time.sleep(0.01)
                continue
            fails = 0
            captured, mono = time.time(), time.perf_counter()  # grab returned: it exists
            ok, image = self.cap.retrieve()
            if ok and image is not None:
                self._slot.put(Frame(index, image, captured, mono))
            index += 1

    def _release(self) -> None:
        self.cap.release()


def open_source(spec: str | int, fps: float | None = None) -> VideoFileSource | CaptureSource:
    """A source from its command-line form: camera index, stream URL or video file.

    Raises:
        PoselabError: a path that does not exist, or a source that cannot be opened.
    """
    if isinstance(spec, int) or str(spec).strip().isdigit():
        return CaptureSource(int(spec), fps)
    spec = str(spec)
    if "://" in spec:
        return CaptureSource(spec, fps)
    if not Path(spec).is_file():
        raise PoselabError(f"--source {spec}: no such file; give a camera index (0), a video "
                           "file or a stream URL (rtsp://..., http://...)")
    return VideoFileSource(spec, fps)
