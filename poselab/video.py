"""The only module that opens videos (OpenCV).

`VideoReader` gives metadata and frames. Everything else in poselab asks it for frames so
that decode problems are detected and reported in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# ffmpeg prints its own warnings for damaged files; poselab reports them itself.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np

from poselab.errors import VideoError


class VideoReader:
    """Read a video's metadata and frames (BGR uint8, (H, W, 3)).

    Args:
        path: the video file.

    Raises:
        VideoError: the file is missing, cannot be opened, or has no decodable frame.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: video not found")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise VideoError(f"{self.path}: cannot open video (unknown format or corrupt file)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        # Container metadata; may be wrong for damaged files.
        self.n_frames = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        ok, _ = self._cap.read()
        if not ok or self.width <= 0 or self.height <= 0:
            self.close()
            raise VideoError(f"{self.path}: no decodable frame (empty or corrupt video)")
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame index, frame) from the start."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        index = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                return
            yield index, frame
            index += 1

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
