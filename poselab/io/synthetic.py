"""Deterministic synthetic videos of a mouse-like animal seen from above, with ground truth.

`make_synthetic_video` writes a video of a textured animal walking over a textured arena floor
and returns its keypoints in DeepLabCut's prediction layout (integer frame index, columns
(scorer, bodyparts, coords) with x, y, likelihood). `synthetic_keypoints` gives the same
keypoints without rendering; `make_scene` + `render_frame` draw single frames in memory.

Conventions: pixel centres sit at integer coordinates (x = column, y = row, origin top-left),
which is what cv2 drawing with `shift` fractional bits and `cv2.warpAffine` use, so a disc drawn
at (x, y) is centred on (x, y) to well under 0.1 px. Geometry constants are in units of the
animal scale `s` (pixels). For a heading t (radians, image coordinates, y down) the animal looks
along f = (cos t, sin t) and its own left side, seen from above, is l = (sin t, -cos t).

Harder videos: `Disturbances(noise=..., occluders=..., distractors=...)` passed to
`make_scene` / `make_synthetic_video` adds seeded per-frame pixel noise, opaque blobs that
drift across the arena and hide parts of the animal, and snout-coloured spots on the floor,
so a model errs in some frames; the ground truth stays the true (possibly hidden) keypoints
and the animal's track is the same as without them.

Adding a bodypart: append its name to SYNTHETIC_BODYPARTS (and pairs to SYNTHETIC_SKELETON),
compute its position in `_keypoints` (from the body frame f, l or the head frame fh, lh), draw a
feature centred exactly on it in `render_frame`, keep it within `_MARGIN` of the body centre,
and add a test in tests/io/test_synthetic.py that the drawn feature sits on the keypoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write
from poselab.io.predictions import predictions_frame

SYNTHETIC_BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]
SYNTHETIC_SKELETON = [
    ["snout", "leftear"],
    ["snout", "rightear"],
    ["leftear", "rightear"],
    ["snout", "tailbase"],
]
SCORER = "synthetic"
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}

# Geometry in units of s: body ellipse semi-axes, neck ahead of the body centre, snout ahead of
# the neck (head frame), ears relative to the neck (head frame), radii of drawn features.
_BODY_A, _BODY_B, _NECK, _SNOUT = 1.6, 0.95, 1.2, 1.55
_EAR_U, _EAR_V, _EAR_R, _INNER_R, _NOSE_R = 0.3, 0.58, 0.38, 0.22, 0.17
_TAIL_LEN, _MARGIN = 2.6, 3.2  # every keypoint and the body stay within _MARGIN of the centre
_FUR, _PINK, _TAIL, _EYE = (62, 72, 88), (165, 150, 235), (140, 142, 190), (18, 18, 22)  # BGR
_SHIFT = 4  # cv2 fractional bits: coordinates are drawn to 1/16 px
_TEX_PX = 16.0  # fur texture pixels per unit of s


@dataclass(frozen=True)
class Disturbances:
    """Seeded difficulties for a synthetic video (all off by default).

    Attributes:
        noise: standard deviation of Gaussian pixel noise added to every frame (grey levels).
        occluders: number of opaque blobs (radius 1.8 s) drifting across the arena on slow
            Lissajous paths, drawn over the animal.
        distractors: number of static snout-coloured spots on the floor.
    """

    noise: float = 0.0
    occluders: int = 0
    distractors: int = 0


@dataclass(frozen=True)
class _Clutter:
    """The rendered form of Disturbances: where blobs and spots are, per frame."""

    noise: float
    occluders: np.ndarray  # blob centres per frame, float64 (N, n, 2)
    radius: float  # blob radius, pixels
    distractors: np.ndarray  # spot centres, float64 (m, 2)
    seed: int  # per-frame noise is drawn from default_rng([seed, 3, i])


@dataclass(frozen=True)
class SyntheticScene:
    """Everything needed to render any frame: a static background and the animal's track."""

    size: tuple[int, int]  # (width, height) in pixels
    scale: float  # animal scale s in pixels
    background: np.ndarray  # arena floor, uint8 (H, W, 3) BGR
    fur: np.ndarray  # multiplicative fur texture in body coordinates, float32 (n, n)
    centre: np.ndarray  # body centre per frame, float64 (N, 2)
    heading: np.ndarray  # body direction per frame, radians (N,)
    head: np.ndarray  # head direction per frame, radians (N,)
    tail_phase: np.ndarray  # phase of the tail's travelling wave, radians (N,)
    clutter: _Clutter | None = None  # Disturbances, when asked for

    @property
    def keypoints(self) -> np.ndarray:
        """Ground-truth keypoints, float64 (N, K, 2), K in SYNTHETIC_BODYPARTS order."""
        return _keypoints(self.centre, self.heading, self.head, self.scale)

    def keypoints_at(self, i: int) -> np.ndarray:
        """Keypoints of frame i, float64 (K, 2)."""
        j = slice(i, i + 1)
        return _keypoints(self.centre[j], self.heading[j], self.head[j], self.scale)[0]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if min(w, h) < 32:
        raise PoselabError(f"synthetic video size {w}x{h} is too small (need at least 32x32)")
    return w, h


def _fx(p: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> cv2 fixed point; cv2 puts integer coordinates at pixel centres."""
    return np.round(np.asarray(p) * (1 << _SHIFT)).astype(np.int32)


def _disc(img: np.ndarray, p: np.ndarray, radius: float, colour: tuple) -> None:
    r = int(round(radius * (1 << _SHIFT)))
    cv2.circle(img, tuple(int(v) for v in _fx(p)), r, colour, -1, cv2.LINE_AA, _SHIFT)


def _track(n_frames: int, size: tuple[int, int], rng: np.random.Generator) -> tuple:
    """Smoothed random walk that turns away from the walls; heading = direction of motion.

    Returns (s, centre (N, 2), heading (N,), head (N,), tail_phase (N,)). Draws from `rng` in a
    fixed order, so the first M frames do not depend on n_frames >= M.
    """
    w, h = size
    s = 0.06 * min(w, h)
    lo = np.full(2, _MARGIN * s)
    hi = np.array([w - 1.0, h - 1.0]) - _MARGIN * s
    pos = lo + rng.uniform(0.3, 0.7, size=2) * (hi - lo)
    theta, omega, wander = rng.uniform(-np.pi, np.pi), 0.0, 0.0
    phases = rng.uniform(0.0, 2 * np.pi, size=3)
    noise = rng.normal(size=n_frames)
    centre, heading, turn = np.empty((n_frames, 2)), np.empty(n_frames), np.empty(n_frames)
    for i in range(n_frames):
        centre[i], heading[i], turn[i] = pos, theta, omega
        wander = 0.95 * wander + 0.015 * noise[i]  # OU turn rate, stationary std 0.05 rad/frame
        prox = np.clip(1.0 - min((pos - lo).min(), (hi - pos).min()) / (2.0 * s), 0.0, 1.0)
        to_mid = np.arctan2(*((lo + hi) / 2 - pos)[::-1])
        steer = prox * (np.angle(np.exp(1j * (to_mid - theta))))  # wrapped to (-pi, pi]
        omega += 0.25 * (np.clip(wander + 0.15 * steer, -0.12, 0.12) - omega)
        theta += omega
        speed = 0.15 * s * (1.0 + 0.3 * np.sin(2 * np.pi * i / 90 + phases[0])) * (1 - 0.4 * prox)
        pos = np.clip(pos + speed * np.array([np.cos(theta), np.sin(theta)]), lo, hi)
    t = np.arange(n_frames)
    yaw = np.clip(3.0 * turn + 0.2 * np.sin(2 * np.pi * t / 55 + phases[1]), -0.5, 0.5)
    return s, centre, heading, heading + yaw, 2 * np.pi * t / 25 + phases[2]


def _frames(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and left unit vectors, (..., 2) each, for headings theta (...)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c, s], axis=-1), np.stack([s, -c], axis=-1)


def _keypoints(centre: np.ndarray, heading: np.ndarray, head: np.ndarray, s: float) -> np.ndarray:
    f, _ = _frames(heading)  # (N, 2)
    fh, lh = _frames(head)  # (N, 2)
    neck = centre + _NECK * s * f
    ear_u, ear_v = _EAR_U * s * fh, _EAR_V * s * lh
    parts = [neck + _SNOUT * s * fh, neck + ear_u + ear_v, neck + ear_u - ear_v]
    parts.append(centre - _BODY_A * s * f)
    return np.stack(parts, axis=1).astype(np.float64)  # (N, K, 2)


def synthetic_keypoints(
    n_frames: int, size: tuple[int, int] = (320, 240), seed: int = 0
) -> np.ndarray:
    """Ground-truth keypoints of the synthetic video, without rendering it.

    Args:
        n_frames: number of frames N.
        size: (width, height) in pixels.
        seed: random seed; the same seed gives the same trajectory.

    Returns:
        float64 array (N, K, 2) of (x, y) pixel coordinates, K in SYNTHETIC_BODYPARTS order.
    """
    s, centre, heading, head, _ = _track(n_frames, _check_size(size), np.random.default_rng(seed))
    return _keypoints(centre, heading, head, s)


def _background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Arena floor: a light base with broad shading, mottled stains, specks and film grain."""
    w, h = size
    broad = cv2.resize(rng.normal(size=(4, 5)).astype(np.float32), (w, h), cv2.INTER_CUBIC)
    mottle = cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 4.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.25 * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 4.0)
    shade = vignette * (1.0 + 0.05 * broad + 0.6 * mottle)
    img = np.array([172, 184, 194], np.float32) * shade[..., None]
    for _ in range(int(w * h / 2000)):  # specks of bedding and scratches
        p = rng.uniform([0, 0], [w, h], size=(2, 2))
        p[1] = p[0] + rng.normal(scale=3.0, size=2)
        col = tuple(float(v) for v in rng.uniform(110, 150) * np.array([0.95, 1.0, 1.05]))
        cv2.line(img, *(tuple(q) for q in _fx(p).tolist()), col, 1, cv2.LINE_AA, _SHIFT)
    img += rng.normal(scale=3.0, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _fur_texture(rng: np.random.Generator) -> np.ndarray:
    """Fur in body coordinates: transverse stripes, a dark spine, shaded flanks and fine grain."""
    n = 128  # texture (n, n) covers +-n / 2 / _TEX_PX units of s around the body centre
    v, u = (np.mgrid[0:n, 0:n].astype(np.float32) - n / 2) / _TEX_PX  # rows: v to the left
    grain = cv2.GaussianBlur(rng.normal(size=(n, n)).astype(np.float32), (0, 0), 0.8)
    stripes = 0.15 * np.sin(2 * np.pi * u / 0.5 + 0.8 * np.sin(3.0 * v)) * np.exp(-(v**2))
    flanks = 1.15 - 0.4 * np.clip(v / _BODY_B, -1.0, 1.0) ** 2
    return (flanks + stripes + 0.25 * grain - 0.15 * np.exp(-(v**2) / 0.05)).astype(np.float32)


def _clutter(n_frames: int, size: tuple[int, int], s: float, seed: int,
             disturb: Disturbances) -> _Clutter:
    """Blob paths and spot positions from their own generator: the track does not change."""
    rng = np.random.default_rng([seed, 4])
    w, h = size
    t = np.arange(n_frames)[:, None]  # (N, 1)
    n = int(disturb.occluders)
    period = rng.uniform(150, 400, size=(2, n))  # frames per sweep, x and y
    phase = rng.uniform(0, 2 * np.pi, size=(2, n))
    blobs = np.stack([(w - 1) / 2 * (1 + 0.9 * np.sin(2 * np.pi * t / period[0] + phase[0])),
                      (h - 1) / 2 * (1 + 0.9 * np.sin(2 * np.pi * t / period[1] + phase[1]))],
                     axis=-1)  # (N, n, 2)
    spots = rng.uniform([0.05 * w, 0.05 * h], [0.95 * w, 0.95 * h],
                        size=(int(disturb.distractors), 2))
    return _Clutter(float(disturb.noise), blobs, 1.8 * s, spots, seed)


def make_scene(n_frames: int, size: tuple[int, int] = (320, 240), seed: int = 0,
               disturb: Disturbances | None = None) -> SyntheticScene:
    """Build the deterministic scene (background, fur, track) for a seed; see SyntheticScene."""
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    s, centre, heading, head, tail = _track(n_frames, size, rng)
    bg_rng, fur_rng = (np.random.default_rng([seed, k]) for k in (1, 2))
    clutter = _clutter(n_frames, size, s, seed, disturb) if disturb is not None else None
    return SyntheticScene(
        size, s, _background(size, bg_rng), _fur_texture(fur_rng), centre, heading, head, tail,
        clutter,
    )


def render_frame(scene: SyntheticScene, i: int) -> np.ndarray:
    """Draw frame i of the scene: uint8 (H, W, 3) BGR; features centred on the keypoints."""
    s, c = scene.scale, scene.centre[i]
    (f, left), (fh, lh) = _frames(scene.heading[i]), _frames(scene.head[i])
    snout, lear, rear, tailbase = scene.keypoints_at(i)
    neck = c + _NECK * s * f
    img = scene.background.copy()
    clutter = scene.clutter
    for p in clutter.distractors if clutter is not None else ():  # under the animal
        _disc(img, p, _NOSE_R * s * 1.2, _PINK)
    d = np.linspace(0.0, _TAIL_LEN, 13)[:, None]  # tail: travelling wave, tapering
    sway = 0.4 * (d / _TAIL_LEN) * np.sin(scene.tail_phase[i] - 2.2 * d)
    tail = _fx(tailbase - s * (d * f - sway * left))
    for k in range(len(d) - 1):
        width = max(1, int(round(s * (0.32 - 0.2 * k / len(d)))))
        cv2.line(img, tuple(tail[k]), tuple(tail[k + 1]), _TAIL, width, cv2.LINE_AA, _SHIFT)
    a = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)[:, None]
    body = c + s * (_BODY_A * np.cos(a) * f + _BODY_B * np.sin(a) * left)
    taper = 1.0 - 0.45 * np.clip(np.cos(a), 0.0, None) ** 2  # teardrop head, pointed snout
    head = neck + s * ((0.6 + 0.95 * np.cos(a)) * fh + 0.62 * np.sin(a) * taper * lh)
    mask = np.zeros(img.shape[:2], np.uint8)
    for p in (lear, rear):
        _disc(img, p, _EAR_R * s, _FUR)
        _disc(mask, p, _EAR_R * s, 255)
    for target, colour in ((img, _FUR), (mask, 255)):
        for poly in (body, head):  # one call per polygon: fillPoly XORs overlapping contours
            cv2.fillPoly(target, [_fx(poly)], colour, cv2.LINE_AA, _SHIFT)
    # Fur: warp the texture from body coordinates (u forward, v left) into the image, only in
    # the box around the animal (the full-frame warp would dominate the frame's cost).
    r = _MARGIN * s + 1
    (x0, y0), (x1, y1) = np.clip([c - r, c + r + 1], 0, scene.size).astype(int)
    k, o = s / _TEX_PX, scene.fur.shape[0] / 2
    m = np.array([[k * f[0], k * left[0], 0.0], [k * f[1], k * left[1], 0.0]])
    m[:, 2] = c - [x0, y0] - m[:, :2] @ [o, o]
    fur = cv2.warpAffine(scene.fur, m, (x1 - x0, y1 - y0), borderMode=cv2.BORDER_REFLECT)
    alpha = mask[y0:y1, x0:x1].astype(np.float32) / 255.0
    roi = img[y0:y1, x0:x1] * (1.0 + alpha * (fur - 1.0))[..., None]  # (h, w, 3)
    img[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
    for p in (lear, rear):
        _disc(img, p, _INNER_R * s, _PINK)
    for side in (1.0, -1.0):
        _disc(img, neck + s * (0.95 * fh + side * 0.3 * lh), 0.1 * s, _EYE)
    _disc(img, snout, _NOSE_R * s, _PINK)
    if clutter is not None:
        for p in clutter.occluders[i]:  # over the animal: hides whatever is below
            _disc(img, p, clutter.radius, (96, 104, 112))
        if clutter.noise > 0:
            noise = np.random.default_rng([clutter.seed, 3, i]).normal(
                scale=clutter.noise, size=img.shape)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img


def keypoints_to_frame(keypoints: np.ndarray, scorer: str = SCORER) -> pd.DataFrame:
    """(N, K, 2) keypoints -> DeepLabCut prediction table with likelihood 1.0 everywhere."""
    n, k, _ = keypoints.shape
    return predictions_frame(keypoints, np.ones((n, k)), SYNTHETIC_BODYPARTS[:k], scorer)


def make_synthetic_video(
    path: str | os.PathLike,
    n_frames: int = 300,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    fps: float = 30.0,
    disturb: Disturbances | None = None,
) -> pd.DataFrame:
    """Render a deterministic synthetic video and return its ground-truth keypoints.

    The video is written to a temporary name in the same folder and then renamed, so a crash
    never leaves a partial video under `path`.

    Args:
        path: output video; `.mp4` (mp4v) or `.avi` (MJPG).
        n_frames: number of frames N (at least 1).
        size: (width, height) in pixels, at least 32 each.
        seed: random seed for trajectory, background and fur.
        fps: frame rate stored in the file.
        disturb: noise, occluders and distractors (see Disturbances); None: a clean video.

    Returns:
        DataFrame in DeepLabCut's prediction layout: index 0..N-1, columns
        (scorer="synthetic", bodyparts, coords in x, y, likelihood), float64.

    Raises:
        PoselabError: unsupported extension, missing folder, odd or too small size, or the
            writer cannot open.
    """
    path = Path(path)
    codec = _FOURCC.get(path.suffix.lower())
    if codec is None:
        raise PoselabError(f"{path}: unsupported video extension {path.suffix!r}; use .mp4 or .avi")
    if not path.parent.is_dir():
        raise PoselabError(f"{path}: folder {path.parent} does not exist")
    if int(size[0]) % 2 or int(size[1]) % 2:
        raise PoselabError(f"{path}: size must be even (codecs crop odd sizes), got {size}")
    if n_frames < 1:
        raise PoselabError(f"{path}: n_frames must be at least 1, got {n_frames}")
    scene = make_scene(n_frames, size, seed, disturb)

    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), float(fps),
                                 scene.size)
        try:
            if not writer.isOpened():
                raise PoselabError(f"{path}: cv2.VideoWriter cannot open a {codec} writer")
            for i in range(n_frames):
                writer.write(render_frame(scene, i))
        finally:
            writer.release()

    atomic_write(path, write)
    return keypoints_to_frame(scene.keypoints)
