"""Heatmap targets: encode/decode round trip, pixel convention, masks, and the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poselab.pose.heatmaps import Codec, cell_centers, decode, encode, pose_loss


def _perfect_outputs(targets: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs that reproduce the targets: logit(heatmap), offsets; batch of 1."""
    heat = torch.from_numpy(targets["heatmaps"]).clamp(1e-6, 1 - 1e-6)
    return torch.logit(heat)[None], torch.from_numpy(targets["offsets"])[None]


def _batch(targets: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([t[k] for t in targets])) for k in targets[0]}


@pytest.mark.parametrize(
    ("stride", "size"),
    [(8, (61, 83)), (8, (64, 64)), (4, (37, 50)), (16, (75, 101)), (32, (70, 99))],
)
def test_round_trip_subpixel(stride: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(stride)
    H, W = size
    codec = Codec(stride=stride)
    # random sub-pixel points, plus points hugging every border of the image
    kp = np.column_stack([rng.uniform(-0.5, W - 0.5, 40), rng.uniform(-0.5, H - 0.5, 40)])
    border = np.array([[-0.49, -0.49], [W - 0.51, H - 0.51], [0.0, H - 0.6], [W - 0.6, 0.2]])
    kp = np.vstack([kp, border])
    t = encode(kp, size, codec)
    h, w = math.ceil(H / stride), math.ceil(W / stride)
    assert t["heatmaps"].shape == (len(kp), h, w)
    assert t["offsets"].shape == (2 * len(kp), h, w)
    assert t["keypoint_mask"].tolist() == [1.0] * len(kp)
    xy, likelihood = decode(*_perfect_outputs(t), codec)
    assert xy.dtype == torch.float32 and xy.shape == (1, len(kp), 2)
    err = np.abs(xy[0].numpy() - kp).max()
    assert err < 0.1, err
    assert likelihood.min() > 0.99


def test_pixel_convention_cell_center() -> None:
    """A keypoint exactly at cell (i, j)'s center j*s + (s-1)/2 peaks there with 0 offset."""
    s = 8
    assert cell_centers(3, s).tolist() == [3.5, 11.5, 19.5]
    t = encode(np.array([[11.5, 19.5]]), (32, 32), Codec(stride=s))
    heat = t["heatmaps"][0]
    assert heat[2, 1] == 1.0 and heat.max() == 1.0
    assert np.unravel_index(heat.argmax(), heat.shape) == (2, 1)
    assert t["offsets"][0, 2, 1] == 0.0 and t["offsets"][1, 2, 1] == 0.0
    # dx is the keypoint minus the cell center, in units of locref_std
    assert t["offsets"][0, 2, 0] == pytest.approx(8 / Codec().locref_std)
    assert t["offsets"][1, 1, 1] == pytest.approx(8 / Codec().locref_std)


def test_targets_ranges_and_masks() -> None:
    codec = Codec(stride=8, locref_radius=17.0)
    kp = np.array([[30.2, 40.7], [np.nan, np.nan], [200.0, 10.0], [5.0, np.nan]])
    t = encode(kp, (64, 64), codec)
    assert all(v.dtype == np.float32 for v in t.values())
    assert t["keypoint_mask"].tolist() == [1, 0, 0, 0]
    assert t["label_mask"].tolist() == [1, 0, 1, 0]  # outside the image, but labeled
    for k in (1, 2, 3):  # unlabeled or outside: all-zero maps
        assert not t["heatmaps"][k].any() and not t["offset_mask"][k].any()
        assert not t["offsets"][2 * k : 2 * k + 2].any()
    heat = t["heatmaps"][0]
    assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    centers_y, centers_x = np.meshgrid(cell_centers(8, 8), cell_centers(8, 8), indexing="ij")
    dist = np.hypot(centers_x - 30.2, centers_y - 40.7)
    expected = (dist <= 17.0) | (dist == dist.min())
    assert (t["offset_mask"][0] == expected).all()


def test_offset_mask_always_holds_nearest_cell() -> None:
    """At stride 64 the nearest cell center can be > locref_radius away: still trained."""
    t = encode(np.array([[10.0, 10.0]]), (128, 128), Codec(stride=64))
    assert t["offset_mask"][0, 0, 0] == 1.0  # center (31.5, 31.5): 30 px away


def test_decode_batched_and_channels_last() -> None:
    codec = Codec()
    rng = np.random.default_rng(0)
    kps = [rng.uniform(0, 63, (3, 2)) for _ in range(4)]
    batch = _batch([encode(k, (64, 64), codec) for k in kps])
    logits = torch.logit(batch["heatmaps"].clamp(1e-6, 1 - 1e-6))
    offsets = batch["offsets"]
    xy, lik = decode(
        logits.to(memory_format=torch.channels_last), offsets.to(memory_format=torch.channels_last)
    )
    assert xy.shape == (4, 3, 2) and lik.shape == (4, 3)
    assert np.abs(xy.numpy() - np.stack(kps)).max() < 0.1
    xy16, _ = decode(logits.bfloat16(), offsets.bfloat16(), codec)
    assert xy16.dtype == torch.float32


def _loss_inputs() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    kp = np.array([[20.0, 30.0], [np.nan, np.nan]])
    targets = _batch([encode(kp, (64, 64)), encode(kp[::-1].copy(), (64, 64))])
    torch.manual_seed(0)
    return torch.randn(2, 2, 8, 8), torch.randn(2, 4, 8, 8), targets


def test_loss_masks_unlabeled_keypoints() -> None:
    heat, off, targets = _loss_inputs()
    changed = heat.clone()
    changed[0, 1] += 5.0  # the unlabeled keypoint's map in sample 0
    changed[1, 0] -= 3.0  # and in sample 1 (order reversed there)
    masked, parts = pose_loss(heat, off, targets)
    masked2, _ = pose_loss(changed, off, targets)
    assert masked.item() == pytest.approx(masked2.item())
    assert set(parts) == {"heatmap_loss", "locref_loss"}
    assert all(isinstance(v, float) for v in parts.values())
    dlc, _ = pose_loss(heat, off, targets, mask_unlabeled=False)
    dlc2, _ = pose_loss(changed, off, targets, mask_unlabeled=False)
    assert dlc.item() != pytest.approx(dlc2.item())


def test_loss_without_label_mask_uses_keypoint_mask() -> None:
    heat, off, targets = _loss_inputs()
    targets.pop("label_mask")
    changed = heat.clone()
    changed[0, 1] += 5.0
    assert pose_loss(heat, off, targets)[0].item() == pytest.approx(
        pose_loss(changed, off, targets)[0].item()
    )


def test_locref_loss_only_inside_mask_and_zero_when_perfect() -> None:
    heat, _, targets = _loss_inputs()
    perfect = targets["offsets"].clone()
    _, parts = pose_loss(heat, perfect, targets)
    assert parts["locref_loss"] == 0.0
    outside = perfect.clone()
    mask = targets["offset_mask"].repeat_interleave(2, dim=1).bool()
    outside[~mask] += 10.0  # errors where no offset is trained
    assert pose_loss(heat, outside, targets)[1]["locref_loss"] == 0.0
    inside = perfect.clone()
    inside[mask] += 0.5
    loss, parts = pose_loss(heat, inside, targets, locref_weight=0.05)
    assert parts["locref_loss"] == pytest.approx(0.125)  # smooth L1 of 0.5 = 0.5 * 0.5**2
    assert loss.item() == pytest.approx(parts["heatmap_loss"] + 0.05 * 0.125, rel=1e-5)


def test_loss_float32_under_autocast_and_differentiable() -> None:
    heat, off, targets = _loss_inputs()
    heat = heat.bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = pose_loss(heat, off.bfloat16(), targets)
    assert loss.dtype == torch.float32
    loss.backward()
    assert heat.grad is not None and torch.isfinite(heat.grad.float()).all()
