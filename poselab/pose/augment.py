"""Keypoint-aware training augmentation: geometry with one affine warp, then photometry.

Notation: K keypoints, H W source image, oh ow output image. Keypoints are float32 (K, 2)
(x = column, y = row) in DeepLabCut's convention, pixel centers at integer coordinates,
NaN = unlabeled.

Geometry is ONE 2x3 matrix per sample: rotation, scale, crop translation and horizontal flip
are composed into it (`sample_geometry`), the image is resampled once with cv2.warpAffine and
the keypoints are moved with the same matrix (`apply_geometry`). cv2.warpAffine computes
dst(x, y) = src(M^-1 (x, y)) at integer (x, y), i.e. it maps pixel centers to pixel centers,
which is the labels' convention: a keypoint p lands exactly at M p, no half-pixel offsets.
(Only corner-based conventions, e.g. "scale by s" as p * s on pixel edges, need the
(p + 0.5) * s - 0.5 correction.) One warp is also the fastest path: one bilinear pass, and no
intermediate rotated/scaled full-size image.

Input scale (TrainConfig.input_scale): the resize that inference applies to every frame
(`input_scale_matrix`, edge-aligned as cv2.resize) is composed into the same matrix, and
`sample_geometry` draws in the resized image's pixels, so crop sizes stay network pixels and
there is still one warp. At scale 1/2 the warp's bilinear samples fall midway between 2x2
source pixels: the box average that inference's cv2.INTER_AREA resize computes.

Extending: add a documented field to AugmentConfig whose default keeps today's behaviour,
draw its random parameters from the `rng` passed in (never a global RNG: reproducibility
depends on it), then either compose it into the matrix in `sample_geometry` if it moves
pixels (never warp twice) or add it to `photometric` if it changes values only; add a test
in tests/pose/test_augment.py (geometric ones: the blob-centroid exactness test).
"""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from poselab.errors import ConfigError
from poselab.validate import check_options

# Luma weights (ITU-R BT.601), the gray used by contrast and saturation jitter.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class AugmentConfig:
    """Training augmentation; defaults follow DeepLabCut 3's pose recipe (see dlc-compat.md).

    Attributes:
        crop_size: (H, W) of training crops, multiples of 32; None trains on full frames
            (padded bottom/right to a multiple of 32); "auto" picks, when training starts,
            a square crop that holds the labeled keypoints' extent with room to spare (at
            least 256, at most the largest frame: see `auto_crop_size`).
        crop_anchor: what a crop is centred near (with keypoint_crop_prob): "keypoint", a
            random labeled keypoint (DeepLabCut), or "animal", the box around all labeled
            keypoints, moved at random only as far as it stays inside the crop when it fits.
            With two views of an animal or many keypoints, "keypoint" crops hide most of
            them from every step; "animal" crops keep them all in play.
        crop_max_shift: keypoint-aware crops put the chosen keypoint within this fraction
            of the crop size from the crop center (DeepLabCut max_shift 0.1; < 0.5).
        keypoint_crop_prob: probability that a crop is centered near a random labeled
            keypoint; otherwise its center is uniform over the image (DeepLabCut "hybrid").
        affine_prob: probability of a random rotation + scale.
        rotation: maximum absolute rotation in degrees.
        scale: (min, max) zoom factor; < 1 shows more of the frame.
        hflip_prob: probability of a horizontal flip; left/right keypoints listed in the
            dataset's flip_pairs swap names. 0 by default, as in DeepLabCut.
        color_prob: probability of applying brightness/contrast/saturation/hue jitter.
        brightness: brightness factor drawn from [1 - b, 1 + b].
        contrast: contrast factor drawn from [1 - c, 1 + c] (blend with the mean gray).
        saturation: saturation factor drawn from [1 - s, 1 + s] (blend with per-pixel gray).
        hue: hue shift drawn from [-h, h] in turns (0.5 = 180 degrees); 0 skips the HSV
            round trip, the slowest color step.
        motion_blur_prob: probability of a linear motion blur at a random angle.
        motion_blur_kernel: largest motion-blur length in pixels (odd, >= 3); the length is
            drawn from the odd sizes 3..this.
        gaussian_blur_prob: probability of a Gaussian blur.
        gaussian_blur_sigma: (min, max) Gaussian blur sigma in pixels.
        noise_prob: probability of additive per-pixel Gaussian noise.
        noise_std: largest noise standard deviation, on the [0, 1] intensity scale (the std
            is drawn from [0, this]; DeepLabCut's 12.75 / 255 = 0.05).
    """

    crop_size: tuple[int, int] | str | None = (448, 448)
    crop_anchor: str = "keypoint"
    crop_max_shift: float = 0.1
    keypoint_crop_prob: float = 0.5
    affine_prob: float = 0.5
    rotation: float = 30.0
    scale: tuple[float, float] = (0.5, 1.25)
    hflip_prob: float = 0.0
    color_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0
    motion_blur_prob: float = 0.5
    motion_blur_kernel: int = 7
    gaussian_blur_prob: float = 0.0
    gaussian_blur_sigma: tuple[float, float] = (0.5, 1.5)
    noise_prob: float = 0.5
    noise_std: float = 0.05

    def __post_init__(self) -> None:
        if self.crop_size == "auto":
            pass  # resolved by `with_crop_size` once the frames are known
        elif isinstance(self.crop_size, str):
            raise ConfigError(f"augment crop_size {self.crop_size!r}: use [H, W], auto or null")
        elif self.crop_size is not None:
            self.crop_size = (int(self.crop_size[0]), int(self.crop_size[1]))
            if min(self.crop_size) <= 0 or any(s % 32 for s in self.crop_size):
                raise ConfigError(f"augment crop_size {list(self.crop_size)}: use multiples of 32")
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        self.gaussian_blur_sigma = tuple(float(s) for s in self.gaussian_blur_sigma)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, (int, float)) and (
                isinstance(value, bool) or not isinstance(value, type(f.default) | int)
            ):
                kind = "an integer" if isinstance(f.default, int) else "a number"
                raise ConfigError(f"augment {f.name} must be {kind}, got {value!r}")
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment {f.name} must be a probability in [0, 1]")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"augment scale {list(self.scale)}: need 0 < min <= max")
        if self.crop_anchor not in ("keypoint", "animal"):
            raise ConfigError(f"augment crop_anchor {self.crop_anchor!r}: use keypoint or animal")
        if not 0.0 <= self.crop_max_shift < 0.5:
            raise ConfigError("augment crop_max_shift must be in [0, 0.5)")
        if self.motion_blur_kernel < 3 or self.motion_blur_kernel % 2 == 0:
            raise ConfigError("augment motion_blur_kernel must be an odd number >= 3")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, source: str = "augment") -> AugmentConfig:
        """Build from a YAML mapping, rejecting unknown keys with a did-you-mean hint.

        Args:
            d: mapping of field names to values (lists accepted for tuples); None = defaults.
            source: where the mapping came from (a file path), named in error messages.

        Raises:
            ConfigError: an unknown key or an invalid value.
        """
        options = check_options(cls, dict(d or {}), source, "augmentation key")
        try:
            return cls(**options)
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{source}: invalid augmentation value ({exc})") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples as lists), for the run dir's resolved config."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def flip_pair_indices(
    pairs: list[tuple[Any, Any]] | tuple = (), bodyparts: list[str] | None = None
) -> list[tuple[int, int]]:
    """Left/right pairs as keypoint indices; names (config `flip_pairs`) are looked up.

    Raises:
        ConfigError: a name that is not a bodypart, or an index out of range.
    """
    bodyparts = list(bodyparts or [])
    out = []
    for pair in pairs or ():
        idx = []
        for p in pair:
            if isinstance(p, str):
                if p not in bodyparts:
                    near = difflib.get_close_matches(p, bodyparts, n=1)
                    hint = f" (did you mean '{near[0]}'?)" if near else ""
                    raise ConfigError(f"flip_pairs: '{p}' is not a bodypart{hint}")
                idx.append(bodyparts.index(p))
            else:
                idx.append(int(p))
        if len(idx) != 2 or (bodyparts and not all(0 <= i < len(bodyparts) for i in idx)):
            raise ConfigError(f"flip_pairs: {list(pair)} is not a pair of bodyparts")
        out.append((idx[0], idx[1]))
    return out


def padded_size(size: int, multiple: int = 32) -> int:
    """Smallest multiple of `multiple` >= size."""
    return -(-size // multiple) * multiple


def auto_crop_size(keypoints: np.ndarray, frame_hw: list[tuple[int, int]],
                   input_scale: float = 1.0, minimum: int = 256) -> tuple[int, int]:
    """A square training crop for `crop_size: auto`, in network pixels (after input_scale).

    The side holds the 90th percentile of the labeled keypoints' extent (the larger side of
    their box in a frame) 1.5 times over, so the animal and some context fit with room to
    move; at least `minimum` (a pretrained network wants context) and at most the largest
    frame (beyond it a crop only adds padding), rounded up to a multiple of 32. Small frames
    (320x240, two views side by side) are thus trained whole; a small animal in a large
    frame gets a crop around it.

    Args:
        keypoints: float (N, K, 2) labeled keypoints in frame pixels, NaN = unlabeled.
        frame_hw: (H, W) of the frames (any number; the largest bounds the crop).
        input_scale: the resize applied to every frame before the network.
        minimum: smallest side, network pixels.
    """
    extents = []
    for kp in np.asarray(keypoints, np.float64):
        ok = np.isfinite(kp).all(axis=1)
        if ok.sum() >= 2:
            extents.append(float((kp[ok].max(axis=0) - kp[ok].min(axis=0)).max()))
    extent = float(np.percentile(extents, 90)) * input_scale if extents else 0.0
    largest = max(max(scaled_size(hw, input_scale)) for hw in frame_hw)
    side = min(max(1.5 * extent, float(minimum)), float(padded_size(largest)))
    side = padded_size(int(math.ceil(side)))
    return side, side


def scaled_size(image_hw: tuple[int, int], input_scale: float) -> tuple[int, int]:
    """(h, w) of an image resized by input_scale: the size inference resizes frames to."""
    h, w = image_hw
    return max(1, round(h * input_scale)), max(1, round(w * input_scale))


def input_scale_matrix(image_hw: tuple[int, int], input_scale: float) -> np.ndarray:
    """M float64 (2, 3) of the resize to `scaled_size`, on pixel centers.

    cv2.resize maps pixel EDGES to edges, ratio r = new size / old size per axis (the
    rounded size makes r differ slightly from input_scale), so a pixel center p lands at
    (p + 0.5) r - 0.5. Training composes this matrix into its warp so that its keypoints
    agree with resized inference frames to the last bit of the convention: no half-pixel bias.
    """
    h, w = image_hw
    sh, sw = scaled_size(image_hw, input_scale)
    rx, ry = sw / w, sh / h
    return np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine map `outer(inner(p))`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])
                      [:, None]])


def sample_geometry(
    cfg: AugmentConfig, image_hw: tuple[int, int], keypoints: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int], bool]:
    """Draw one sample's geometry: (M float64 (2, 3), output (oh, ow), flipped).

    M maps source pixel centers to output pixel centers:
        M p = F (A (p - anchor) + shift) + center
    A = scale * rotation; anchor = the source point placed at the output center (a labeled
    keypoint, a uniform random point, or the image center for full frames); shift = the
    keypoint-aware crop's jitter; F = diag(-1, 1) mirrors about the output center.
    """
    h, w = image_hw
    if cfg.crop_size is None:  # full frame: keep it in place, pad bottom/right to /32
        out_hw = (padded_size(h), padded_size(w))
        center = np.array([(w - 1) / 2, (h - 1) / 2])  # source center: flip stays in-frame
    else:
        out_hw = cfg.crop_size
        center = np.array([(out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2])
    angle, s = 0.0, 1.0
    if rng.random() < cfg.affine_prob:
        angle = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
        s = rng.uniform(*cfg.scale)
    a = s * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    anchor, shift = center.copy(), np.zeros(2)
    if cfg.crop_size is not None:
        labeled = np.flatnonzero(~np.isnan(keypoints).any(axis=1))
        if len(labeled) and rng.random() < cfg.keypoint_crop_prob:
            if cfg.crop_anchor == "animal":
                box = keypoints[labeled].astype(np.float64)
                lo, hi = box.min(axis=0), box.max(axis=0)
                # how far the box may move and stay inside the crop (source pixels)
                room = np.maximum(np.array(out_hw[::-1]) / s - (hi - lo), 0.0) / 2
                anchor = (lo + hi) / 2 + rng.uniform(-1, 1, 2) * room
            else:
                anchor = keypoints[labeled[rng.integers(len(labeled))]].astype(np.float64)
            # Jitter in output pixels, so the keypoint stays inside the crop at any scale.
            shift = rng.uniform(-1, 1, 2) * cfg.crop_max_shift * np.array(out_hw[::-1])
        else:
            # Uniform center, kept where the crop fits inside the (scaled) image if it can.
            half = center / s
            lo = np.minimum(half, [(w - 1) / 2, (h - 1) / 2])
            hi = np.maximum([w - 1 - half[0], h - 1 - half[1]], [(w - 1) / 2, (h - 1) / 2])
            anchor = rng.uniform(lo, hi)
    flipped = bool(rng.random() < cfg.hflip_prob)
    f = np.diag([-1.0, 1.0]) if flipped else np.eye(2)
    linear = f @ a
    offset = f @ (shift - a @ anchor) + center
    return np.hstack([linear, offset[:, None]]), out_hw, flipped


def transform_keypoints(keypoints: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Keypoints (K, 2) moved by M (2, 3) -> float32 (K, 2); NaN stays NaN."""
    return (keypoints.astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)


def drop_outside(keypoints: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """A copy of keypoints (K, 2) with those off an (oh, ow) image set to NaN.

    The image covers [-0.5, ow - 0.5) x [-0.5, oh - 0.5) (pixel centers at integers), the
    same test heatmaps.encode uses for keypoint_mask.
    """
    out = keypoints.copy()
    with np.errstate(invalid="ignore"):
        inside = (out >= -0.5).all(axis=1) & (out[:, 0] < out_hw[1] - 0.5) & (
            out[:, 1] < out_hw[0] - 0.5
        )
    out[~inside] = np.nan
    return out


def apply_geometry(
    image: np.ndarray,
    keypoints: np.ndarray,
    m: np.ndarray,
    out_hw: tuple[int, int],
    flipped: bool = False,
    flip_pairs: list[tuple[int, int]] = (),
    fill: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Warp image (H, W, 3) and keypoints (K, 2) with M; after a flip, swap left/right.

    Returns:
        image (oh, ow, 3) of the input dtype; keypoints float32 (K, 2), which may now lie
        outside the image (heatmaps.encode trains those as absent; `drop_outside` NaNs them).
    """
    out = cv2.warpAffine(
        image, m, (out_hw[1], out_hw[0]), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=fill,
    )
    kp = transform_keypoints(keypoints, m)
    if flipped:  # the left paw is now drawn where the right one was: swap the labels
        for left, right in flip_pairs:
            kp[[left, right]] = kp[[right, left]]
    return out, kp


@functools.cache
def _noise_bank() -> np.ndarray:
    """2^22 fixed N(0, 1) draws (16 MB, made once per process from seed 0).

    Drawing 448 x 448 x 3 normals per sample costs ~4 ms (numpy) or ~2 ms (torch); a window
    at a random offset into this bank costs ~0.1 ms. Each sample's noise is still i.i.d.
    Gaussian; samples differ by the offset (and the std).
    """
    return np.random.default_rng(0).standard_normal(1 << 22, dtype=np.float32)


def _noise_window(rng: np.random.Generator, size: int) -> np.ndarray:
    bank = _noise_bank()
    start = int(rng.integers(max(len(bank) - size, 0) + 1))
    if size <= len(bank):
        return bank[start : start + size]
    return np.resize(bank, size)  # frames over 4 Mpx: the bank repeated cyclically


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalized line of about `length` pixels through the kernel center."""
    k = np.zeros((length, length), np.float32)
    c = r = (length - 1) / 2
    dx, dy = r * math.cos(angle), r * math.sin(angle)
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0)
    return k / k.sum()


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Color jitter, blur and noise on a float32 (H, W, 3) RGB image in [0, 1], in place.

    Returns:
        the same array, clipped to [0, 1].
    """
    if rng.random() < cfg.color_prob:
        b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        # brightness then contrast as one multiply-add: (x b - m) c + m, m = mean gray of x b
        m = b * float(np.array(cv2.mean(image)[:3], np.float32) @ _LUMA)
        image *= b * c
        image += m * (1 - c)
        sat = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
        if sat != 1.0:
            gray = image @ _LUMA  # (H, W)
            image *= sat
            image += (1 - sat) * gray[..., None]
        if cfg.hue > 0:
            np.clip(image, 0.0, 1.0, out=image)
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # float: H in degrees [0, 360)
            hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-cfg.hue, cfg.hue)) % 360.0
            image[:] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < cfg.motion_blur_prob:
        length = int(rng.choice(np.arange(3, cfg.motion_blur_kernel + 1, 2)))
        kernel = _motion_kernel(length, rng.uniform(0, math.pi))
        cv2.filter2D(image, -1, kernel, dst=image, borderType=cv2.BORDER_REFLECT)
    if rng.random() < cfg.gaussian_blur_prob:
        sigma = rng.uniform(*cfg.gaussian_blur_sigma)
        cv2.GaussianBlur(image, (0, 0), sigma, dst=image, borderType=cv2.BORDER_REFLECT)
    if rng.random() < cfg.noise_prob:
        std = np.float32(rng.uniform(0, cfg.noise_std))
        image += std * _noise_window(rng, image.size).reshape(image.shape)
    np.clip(image, 0.0, 1.0, out=image)
    return image
