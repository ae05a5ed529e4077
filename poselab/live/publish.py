"""Where live poses go: JSON lines, a local socket, and the recording.

Every publisher gets the same message, one JSON object per pose (UTF-8, one line):

    {"frame": 17, "timestamp": 1767312000.123456, "latency_ms": 8.42, "dropped": 0,
     "pose": {"snout": [312.4, 208.9, 0.97], "tailbase": [null, null, 0.02], ...}}

`timestamp` is the frame's capture time (seconds since the epoch, so a program on the same
machine can compare it with its own clock), `latency_ms` the time from capture to sending,
`dropped` the frames dropped so far, `pose` x, y (frame pixels, null when not found) and
likelihood per bodypart. With forward prediction `pose` is the predicted pose, `measured`
the model's, and `ahead_ms` how far past the capture time it was predicted.

Publishers:
  StdoutPublisher   JSON lines on a text stream (stdout)
  ZmqPublisher      "tcp://HOST:PORT": a ZeroMQ PUB socket bound there; subscribers in any
                    language connect with a SUB socket (examples/live_client.py). A slow
                    subscriber loses messages instead of slowing the loop.
  UdpPublisher      "udp://HOST:PORT": one datagram per pose sent to that address
  Recorder          the poses in DeepLabCut's predictions layout (one row per source frame,
                    NaN for dropped frames), written atomically when the run stops

Adding a publisher: a class with `send(message: bytes)` and `close()`, created in
`open_publisher` from its URL scheme.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import numpy as np

from poselab.errors import PoselabError
from poselab.live.predictor import LivePose

HIGH_WATER_MARK = 1000  # messages a ZeroMQ subscriber may lag behind before losing some


def _num(v: float, digits: int) -> float | None:
    return round(float(v), digits) if math.isfinite(v) else None


def _pose_dict(bodyparts: list[str], xy: np.ndarray, likelihood: np.ndarray) -> dict:
    return {bp: [_num(xy[k, 0], 3), _num(xy[k, 1], 3), _num(likelihood[k], 4)]
            for k, bp in enumerate(bodyparts)}


def message(pose: LivePose, latency_ms: float, dropped: int) -> bytes:
    """The JSON line (without the newline) every publisher sends for a pose."""
    data = {"frame": pose.index, "timestamp": round(pose.timestamp, 6),
            "latency_ms": round(latency_ms, 3), "dropped": dropped,
            "pose": _pose_dict(pose.bodyparts, pose.xy, pose.likelihood)}
    if pose.measured is not None:
        data["measured"] = _pose_dict(pose.bodyparts, pose.measured, pose.likelihood)
        data["ahead_ms"] = round(pose.ahead_ms, 3)
    return json.dumps(data, separators=(",", ":")).encode()


class PublisherClosed(Exception):
    """A publisher's reader went away (e.g. `poselab live ... | head`): the loop stops."""


class StdoutPublisher:
    """JSON lines on a text stream, flushed per pose (a pipe reader sees each at once)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, data: bytes) -> None:
        try:
            self.stream.write(data.decode() + "\n")
            self.stream.flush()
        except BrokenPipeError:
            if self.stream is sys.stdout:  # no "Exception ignored" at interpreter exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise PublisherClosed("stdout closed") from None

    def close(self) -> None:
        pass


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 0 < port < 65536:
        raise PoselabError(f"--publish {url}: expected {parts.scheme}://HOST:PORT with a port "
                           "in 1-65535")
    return parts.hostname, port


class ZmqPublisher:
    """A ZeroMQ publisher bound to tcp://HOST:PORT (an XPUB socket, which also sees
    subscriptions, so `wait_for_subscribers` can hold the start until clients are there)."""

    def __init__(self, url: str) -> None:
        try:
            import zmq
        except ImportError:
            raise PoselabError("--publish tcp://...: needs the pyzmq package "
                               "(pip install pyzmq)") from None
        _host_port(url)
        self._zmq = zmq
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.LINGER, 500)  # at close, half a second to deliver the tail
        try:
            self.socket.bind(url)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise PoselabError(f"--publish {url}: cannot bind ({exc})") from None
        self.url = url
        self.subscribers = 0
        self.lost = 0  # messages a full queue refused (a subscriber far behind)

    def _poll_subscriptions(self, timeout_ms: int = 0) -> None:
        while self.socket.poll(timeout_ms, self._zmq.POLLIN):
            event = self.socket.recv()
            self.subscribers += 1 if event[:1] == b"\x01" else -1 if event[:1] == b"\x00" else 0
            timeout_ms = 0

    def wait_for_subscribers(self, n: int, timeout: float | None = None) -> bool:
        """Block until `n` subscribers are connected (False if `timeout` seconds pass)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.subscribers < n:
            if deadline is not None and time.monotonic() > deadline:
                return False
            self._poll_subscriptions(100)
        return True

    def send(self, data: bytes) -> None:
        self._poll_subscriptions()
        try:
            self.socket.send(data, self._zmq.NOBLOCK)
        except self._zmq.Again:
            self.lost += 1

    def close(self) -> None:
        self.socket.close()


class UdpPublisher:
    """One datagram per pose to udp://HOST:PORT (nothing needs to listen; no library)."""

    def __init__(self, url: str) -> None:
        host, port = _host_port(url)
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise PoselabError(f"--publish {url}: cannot resolve {host} ({exc})") from None
        self.address = info[4]
        self.socket = socket.socket(info[0], socket.SOCK_DGRAM)
        self.lost = 0

    def send(self, data: bytes) -> None:
        try:
            self.socket.sendto(data, self.address)
        except OSError:
            self.lost += 1  # nobody listening (ICMP refused) or a full buffer: never block

    def close(self) -> None:
        self.socket.close()


def open_publisher(url: str) -> ZmqPublisher | UdpPublisher:
    """A socket publisher from its URL: tcp://HOST:PORT (ZeroMQ) or udp://HOST:PORT.

    Raises:
        PoselabError: another scheme, a bad address, a port in use, a missing pyzmq.
    """
    scheme = urlsplit(url).scheme
    if scheme == "tcp":
        return ZmqPublisher(url)
    if scheme == "udp":
        return UdpPublisher(url)
    raise PoselabError(f"--publish {url}: expected tcp://HOST:PORT (ZeroMQ) or "
                       "udp://HOST:PORT")


class Recorder:
    """Measured poses kept in memory (12 bytes per keypoint per frame) and written on `save`
    in DeepLabCut's predictions layout, with a `_meta.json` and a `_timing.csv` beside it.

    Rows are source frames 0..last: a frame that was dropped (or never seen) is a NaN row,
    so the table lines up with the video like `poselab analyze`'s.

    Args:
        path: the .h5 file to write (`.csv` twin when `csv`).
        bodyparts, scorer: the run's.

    Raises:
        PoselabError: a path that is not .h5, or not writable (its folder is created and a
            probe file written and removed now, before the run).
    """

    def __init__(self, path: str | os.PathLike, bodyparts: list[str], scorer: str,
                 csv: bool = False) -> None:
        path = Path(path)
        if path.suffix != ".h5":
            raise PoselabError(f"--record {path}: expected a .h5 file name (DeepLabCut's "
                               "predictions layout; --csv adds the .csv twin)")
        try:  # found out now, not after an hour of recording
            if path.is_dir():
                raise IsADirectoryError(21, "is a folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".poselab-probe-"):
                pass
        except OSError as exc:
            raise PoselabError(f"--record {path}: not a writable file path "
                               f"({exc.strerror})") from None
        self.path, self.bodyparts, self.scorer, self.csv = path, bodyparts, scorer, csv
        self.rows: list[tuple[int, float, float, np.ndarray, np.ndarray]] = []

    def add(self, pose: LivePose, latency_ms: float) -> None:
        xy = pose.measured if pose.measured is not None else pose.xy
        self.rows.append((pose.index, pose.timestamp, latency_ms, xy, pose.likelihood))

    def save(self, meta: dict) -> list[Path]:
        """Write the table (.h5, and .csv with `csv`), `<stem>_meta.json` and
        `<stem>_timing.csv` (frame, capture timestamp, latency), each atomically."""
        from poselab.io.fileio import atomic_write_text
        from poselab.io.predictions import predictions_frame, write_predictions

        k = len(self.bodyparts)
        n = max((r[0] for r in self.rows), default=-1) + 1
        xy = np.full((n, k, 2), np.nan, np.float32)
        lik = np.full((n, k), np.nan, np.float32)
        for index, _, _, pxy, plik in self.rows:
            xy[index], lik[index] = pxy, plik
        df = predictions_frame(xy, lik, self.bodyparts, self.scorer)
        meta = {**meta, "rows": n, "frames_recorded": len(self.rows)}
        meta_path = self.path.with_name(f"{self.path.stem}_meta.json")
        timing_path = self.path.with_name(f"{self.path.stem}_timing.csv")
        atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
        timing = "frame,timestamp,latency_ms\n" + "".join(
            f"{i},{t:.6f},{lat:.3f}\n" for i, t, lat, _, _ in self.rows)
        atomic_write_text(timing_path, timing)
        return [*write_predictions(df, self.path, csv=self.csv), meta_path, timing_path]
