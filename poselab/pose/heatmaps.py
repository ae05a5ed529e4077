"""Heatmap targets: encode keypoints -> targets, decode model outputs -> keypoints; the loss.

Pure functions, no model code. Notation: B batch, K keypoints, H W image, h w heatmap,
s = Codec.stride.

Pixel convention (used in both directions): pixel centers are at integer coordinates
(x = column, y = row, as in DeepLabCut's label files), so an image covers [-0.5, W - 0.5).
Heatmap cell (i, j) stands for input pixels [j*s, j*s + s) in x (and [i*s, i*s + s) in y);
its center is x = j*s + (s - 1)/2: the middle of its s pixel centers, e.g. 3.5 for s = 8.
h = ceil(H / s) and w = ceil(W / s), so cells cover the whole image.

Extending: another target type (e.g. integral regression) is a new codec dataclass with
its own encode/decode pair and a round-trip test in tests/pose/test_heatmaps.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Codec:
    """Target geometry.

    Attributes:
        stride: input pixels per heatmap cell.
        sigma: Gaussian sigma in input pixels.
        locref_std: offsets are stored divided by this (DeepLabCut's 7.2801), so they
            are O(1) for the loss.
        locref_radius: offsets are trained within this many input pixels of the keypoint.
    """

    stride: int = 8
    sigma: float = 8.0
    locref_std: float = 7.2801
    locref_radius: float = 17.0


def cell_centers(n: int, stride: int) -> np.ndarray:
    """Input-pixel coordinate of the centers of n cells along one axis: j*s + (s - 1)/2."""
    return np.arange(n, dtype=np.float64) * stride + (stride - 1) / 2


def encode(
    keypoints: np.ndarray, image_size: tuple[int, int], codec: Codec = Codec()
) -> dict[str, np.ndarray]:
    """Training targets for one image.

    Args:
        keypoints: (K, 2) float (x, y) in input pixels; NaN = not labeled.
        image_size: (H, W) of the (augmented) input image.
        codec: target geometry.

    Returns:
        "heatmaps" (K, h, w) float32 in [0, 1]: a Gaussian around the keypoint, scaled so
            the nearest cell is exactly 1 (a perfectly found keypoint has likelihood 1
            wherever it falls inside its cell);
        "offsets" (2K, h, w) float32: [2k] = dx, [2k + 1] = dy from each cell center to
            the keypoint, divided by locref_std (defined on every cell; the loss uses
            those in offset_mask);
        "offset_mask" (K, h, w) float32: 1 within locref_radius of the keypoint (and
            always at its nearest cell, so decode's cell is trained at any stride);
        "keypoint_mask" (K,) float32: 1 when labeled and inside the image;
        "label_mask" (K,) float32: 1 when labeled (finite), even outside the image: the
            loss trains such a keypoint as absent (all-zero map) rather than ignoring it.
        All maps are zero for keypoints with keypoint_mask 0.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)  # (K, 2)
    n_kp = kp.shape[0]
    H, W = image_size
    s = codec.stride
    h, w = math.ceil(H / s), math.ceil(W / s)
    xs, ys = cell_centers(w, s), cell_centers(h, s)  # (w,), (h,)

    labeled = np.isfinite(kp).all(axis=1)  # (K,)
    x = np.where(labeled, kp[:, 0], -1e9)
    y = np.where(labeled, kp[:, 1], -1e9)
    inside = labeled & (x >= -0.5) & (x < W - 0.5) & (y >= -0.5) & (y < H - 0.5)
    x, y = np.where(inside, x, 0.0), np.where(inside, y, 0.0)

    dx = x[:, None] - xs[None, :]  # (K, w) input pixels, cell center -> keypoint
    dy = y[:, None] - ys[None, :]  # (K, h)
    # separable Gaussian, each factor divided by its max: the nearest cell is exactly 1
    gx = np.exp(-(dx**2) / (2 * codec.sigma**2))
    gy = np.exp(-(dy**2) / (2 * codec.sigma**2))
    gx /= gx.max(axis=1, keepdims=True)
    gy /= gy.max(axis=1, keepdims=True)
    on = inside[:, None, None]
    heatmaps = np.where(on, gy[:, :, None] * gx[:, None, :], 0.0)  # (K, h, w)

    dist2 = dy[:, :, None] ** 2 + dx[:, None, :] ** 2  # (K, h, w)
    mask = dist2 <= codec.locref_radius**2
    mask[np.arange(n_kp), np.argmin(np.abs(dy), axis=1), np.argmin(np.abs(dx), axis=1)] = True
    mask &= on

    offsets = np.zeros((n_kp, 2, h, w), dtype=np.float32)  # (K, 2, h, w) -> (2K, h, w)
    offsets[:, 0] = np.broadcast_to(dx[:, None, :], (n_kp, h, w)) / codec.locref_std
    offsets[:, 1] = np.broadcast_to(dy[:, :, None], (n_kp, h, w)) / codec.locref_std
    offsets *= on[:, None]
    return {
        "heatmaps": heatmaps.astype(np.float32),
        "offsets": offsets.reshape(2 * n_kp, h, w),
        "offset_mask": mask.astype(np.float32),
        "keypoint_mask": inside.astype(np.float32),
        "label_mask": labeled.astype(np.float32),
    }


def decode(
    heatmaps: torch.Tensor, offsets: torch.Tensor, codec: Codec = Codec()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints from model outputs: argmax cell -> its center + offset * locref_std.

    Args:
        heatmaps: (B, K, h, w) logits.
        offsets: (B, 2K, h, w) in units of locref_std, [2k] = dx, [2k + 1] = dy.
        codec: the geometry the model was trained with.

    Returns:
        xy (B, K, 2) float32 in input pixels, likelihood (B, K) float32 = sigmoid(peak logit).
        On the inputs' device; batched, no Python loop over B.
    """
    B, K, h, w = heatmaps.shape
    flat = heatmaps.reshape(B, K, h * w).float()  # reshape: channels_last inputs copy here
    peak, idx = flat.max(dim=2)  # (B, K)
    off = offsets.reshape(B, K, 2, h * w).float()
    off = off.gather(3, idx[:, :, None, None].expand(B, K, 2, 1)).squeeze(3)  # (B, K, 2)
    s = codec.stride
    col, row = idx % w, idx // w
    centers = torch.stack([col, row], dim=2).float() * s + (s - 1) / 2  # (B, K, 2)
    xy = centers + off * codec.locref_std
    return xy, torch.sigmoid(peak)


HEATMAP_LOSSES = ("bce", "balanced")


def pose_loss(
    heatmap_logits: torch.Tensor,
    offsets: torch.Tensor,
    targets: dict[str, torch.Tensor],
    locref_weight: float = 0.05,
    mask_unlabeled: bool = True,
    heatmap_loss: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Heatmap BCE + locref_weight x Huber location-refinement loss, in float32.

    Args:
        heatmap_logits: (B, K, h, w) model output.
        offsets: (B, 2K, h, w) model output.
        targets: batched encode() output: "heatmaps" (B, K, h, w), "offsets" (B, 2K, h, w),
            "offset_mask" (B, K, h, w), "keypoint_mask" (B, K), optionally "label_mask"
            (B, K).
        locref_weight: weight of the offset loss (DeepLabCut: 0.05).
        mask_unlabeled: average the heatmap loss over labeled keypoints only ("label_mask"
            when given, else "keypoint_mask"). False replicates DeepLabCut: unlabeled
            keypoints are trained as all-zero maps, which depresses likelihoods.
        heatmap_loss: "bce" (DeepLabCut's: the per-cell BCE averaged over the map) or
            "balanced": that, plus the BCE averaged over the keypoint's own Gaussian (cells
            weighted by the target). Averaged over the map, the few cells near a keypoint
            weigh (sigma / stride)^2 / (h w) of the loss: on a large map with many keypoints
            and few labels, "predict background everywhere" is a long plateau. The second
            term gives each visible keypoint's peak the same weight whatever the map size.

    Returns:
        (scalar loss, {"heatmap_loss": float, "locref_loss": float}).
    """
    if heatmap_loss not in HEATMAP_LOSSES:
        raise ValueError(f"heatmap_loss {heatmap_loss!r}: use one of {HEATMAP_LOSSES}")
    with torch.autocast(device_type=heatmap_logits.device.type, enabled=False):
        logits = heatmap_logits.float()
        target = targets["heatmaps"].float()
        cells = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        bce = cells.mean(dim=(2, 3))  # (B, K): mean over cells
        if heatmap_loss == "balanced":
            mass = target.sum(dim=(2, 3))  # (B, K); 0 for an absent keypoint
            peak = (cells * target).sum(dim=(2, 3)) / mass.clamp(min=1e-6)
            bce = bce + torch.where(mass > 0, peak, torch.zeros_like(peak))
        if mask_unlabeled:
            weight = targets.get("label_mask", targets["keypoint_mask"]).float()  # (B, K)
            heat = (bce * weight).sum() / weight.sum().clamp(min=1.0)
        else:
            heat = bce.mean()

        # (B, K, h, w) -> (B, 2K, h, w): each cell's mask applies to its dx and dy
        mask = targets["offset_mask"].float().repeat_interleave(2, dim=1)
        huber = F.smooth_l1_loss(offsets.float(), targets["offsets"].float(), reduction="none")
        # mean over masked elements (dx and dy each count), like DeepLabCut's weighted Huber
        locref = (huber * mask).sum() / mask.sum().clamp(min=1.0)
        loss = heat + locref_weight * locref
    return loss, {"heatmap_loss": float(heat.detach()), "locref_loss": float(locref.detach())}
