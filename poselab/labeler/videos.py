"""Labeling straight from a video: frames for scrubbing, adding a frame, prediction tracks.

One `VideoSource` per video of config.yaml's video_sets. Frames are decoded only through
poselab.io.video.VideoReader (with the video's crop, as extract-frames does) and a frame
added to labeled-data is written by poselab.io.frames.write_frame, so it is byte for byte
what `poselab extract-frames` would have written for that index.

- Opening a video counts its frames once (one decode pass without colour conversion,
  ~0.3 ms a frame): afterwards every frame's timestamp is known and VideoReader seeks
  straight to the keyframe before a frame instead of decoding from the start.
- Frames for display are JPEG (quick to encode and to send through an SSH tunnel); decoded
  frames around a backward step are kept, so stepping back costs one seek per
  `_BACK_BATCH` frames rather than one per frame.
- `track(start, stop)` gives the analysis predictions of a frame range (the newest
  `<stem>*.h5` predictions file beside the video with one row per frame), shifted into the
  cropped frame's pixels: the labeler draws them as hollow markers and trails.

Extending: a new per-video endpoint gets a method here (taking `self.lock` around any use of
the reader) and a route in server.create_app.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import LabelFileError, PoselabError
from poselab.io.frames import FRAME_NAME, name_digits, write_frame
from poselab.io.predictions import predictions_arrays, read_predictions
from poselab.io.project import Video
from poselab.io.video import VideoReader

JPEG_QUALITY = 90
_CACHE = 64  # decoded-and-encoded frames kept per video (~50 kB each at 640x480)
_BACK_BATCH = 8  # frames decoded at once when the page steps backwards


class VideoSource:
    """One project video, opened lazily; every method is thread-safe."""

    def __init__(self, vid: int, video: Video, labeled_data: Path, bodyparts: list[str],
                 other_stems: list[str]):
        self.id, self.video, self.bodyparts = vid, video, bodyparts
        self.folder = labeled_data / video.stem
        self._others = [s for s in other_stems if s != video.stem and s.startswith(video.stem)]
        self.lock = threading.Lock()
        self._reader: VideoReader | None = None
        self._count = 0
        self._jpegs: OrderedDict[int, bytes] = OrderedDict()
        self._last = -1
        self._track: tuple[str, np.ndarray, np.ndarray] | None | bool = False  # False: unread

    def summary(self) -> dict:
        """What the page lists before the video is opened (no decoding)."""
        return {"id": self.id, "key": self.video.key, "name": self.video.path.name,
                "stem": self.video.stem, "exists": self.video.exists, "folder": self.folder.name}

    def _open(self) -> VideoReader:
        if self._reader is None:
            if not self.video.exists:
                raise PoselabError(f"{self.video.path}: video not found (moved? fix "
                                   "video_sets in config.yaml)")
            reader = VideoReader(self.video.path, self.video.crop)
            try:
                self._count = reader.count_frames()  # every timestamp known: exact fast seeks
            except BaseException:
                reader.close()
                raise
            self._reader = reader
        return self._reader

    def info(self) -> dict:
        """Frame count, size, fps, frames already in labeled-data, the track file."""
        with self.lock:
            r = self._open()
            x1, x2, y1, y2 = r.crop or (0, r.width, 0, r.height)
            track = self._load_track()
            return {**self.summary(), "n_frames": self._count, "fps": r.fps,
                    "width": x2 - x1, "height": y2 - y1, "extracted": self.extracted(),
                    "track": track[0] if track else None,
                    "decode_errors": list(r.decode_errors[:100])}

    def extracted(self) -> dict[int, str]:
        """{frame index: image name} of this video's frames already in labeled-data."""
        if not self.folder.is_dir():
            return {}
        out = {}
        for name in sorted(p.name for p in self.folder.iterdir()):
            if (m := FRAME_NAME.fullmatch(name)) and name.lower().endswith(".png"):
                out.setdefault(int(m.group(1)), name)
        return out

    def _check(self, index: int) -> None:
        if not 0 <= index < self._count:
            raise PoselabError(f"{self.video.path.name}: frame {index} is outside "
                               f"0..{self._count - 1}")

    def jpeg(self, index: int) -> bytes:
        """Frame `index` as a JPEG for display (cached)."""
        with self.lock:
            r = self._open()
            self._check(index)
            if index in self._jpegs:
                self._jpegs.move_to_end(index)
                self._last = index
                return self._jpegs[index]
            # Stepping backwards: one seek decodes the few frames before this one as well.
            first = index - _BACK_BATCH + 1 if index == self._last - 1 else index
            for i, frame in r.frames(range(max(first, 0), index + 1)):
                ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                if ok:
                    self._jpegs[i] = data.tobytes()
                    self._jpegs.move_to_end(i)
            while len(self._jpegs) > _CACHE:
                self._jpegs.popitem(last=False)
            self._last = index
            if index not in self._jpegs:
                raise PoselabError(f"{self.video.path.name}: frame {index} cannot be decoded")
            return self._jpegs[index]

    def add(self, index: int) -> tuple[str, bool]:
        """Write frame `index` to labeled-data/<stem>/ as extract-frames would.

        Returns:
            (image name, created): created is False when the frame was extracted before.
        """
        with self.lock:
            r = self._open()
            self._check(index)
            if (name := self.extracted().get(index)) is not None:
                return name, False
            frame = r.read(index)
            self.folder.mkdir(parents=True, exist_ok=True)
            digits = name_digits(self.folder, r.n_frames or self._count)
            path = write_frame(self.folder, index, frame, digits)
            if path is None:  # appeared meanwhile under this very name
                return f"img{str(index).zfill(digits)}.png", False
            return path.name, True

    # ------------------------------------------------------------------ predictions
    def _load_track(self) -> tuple[str, np.ndarray, np.ndarray] | None:
        """(file name, xy (N, K, 2) in cropped pixels, likelihood (N, K)) or None; cached."""
        if self._track is not False:
            return self._track  # type: ignore[return-value]
        self._track = None
        files = sorted(self.video.path.parent.glob(f"{self.video.stem}*.h5"),
                       key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for path in files:
            if any(path.name.startswith(s) for s in self._others):
                continue  # another video's file whose stem starts with this one
            try:
                df = read_predictions(path)
            except (LabelFileError, OSError, ValueError):
                continue  # not a predictions table (e.g. a label file)
            # Analysis writes one row per declared or decodable frame, whichever is more.
            if len(df) not in (self._count, self._reader.n_frames if self._reader else -1):
                continue
            xy, lik, parts = predictions_arrays(df)
            order = [parts.index(b) if b in parts else -1 for b in self.bodyparts]
            if all(k < 0 for k in order):
                continue
            full_xy = np.full((len(df), len(order), 2), np.nan)
            full_lik = np.full((len(df), len(order)), np.nan)
            for j, k in enumerate(order):
                if k >= 0:
                    full_xy[:, j], full_lik[:, j] = xy[:, k], lik[:, k]
            crop = self._reader.crop if self._reader else None
            if crop:
                full_xy -= np.array([crop[0], crop[2]], float)
            self._track = (path.name, full_xy, full_lik)
            break
        return self._track

    def track(self, start: int, stop: int) -> dict:
        """Predictions of frames start..stop-1: {file, start, points: [[[x, y, p] | None]]}."""
        with self.lock:
            self._open()
            track = self._load_track()
        start = max(0, start)
        stop = min(self._count, stop, len(track[1]) if track else stop)
        if track is None or stop <= start:
            return {"file": track[0] if track else None, "start": start, "points": []}
        name, xy, lik = track
        points = []
        for i in range(start, stop):
            row = []
            for k in range(len(self.bodyparts)):
                x, y, p = xy[i, k, 0], xy[i, k, 1], lik[i, k]
                ok = np.isfinite(x) and np.isfinite(y)
                row.append([round(float(x), 2), round(float(y), 2),
                            None if not np.isfinite(p) else round(float(p), 4)] if ok else None)
            points.append(row)
        return {"file": name, "start": start, "points": points}

    def close(self) -> None:
        with self.lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
