"""Schedules, the time-budget planner, the step floor, EMA, auto crops and the balanced loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from poselab.pose.augment import AugmentConfig, auto_crop_size, sample_geometry
from poselab.pose.heatmaps import Codec, encode, pose_loss
from poselab.pose.schedule import EMA, floor_epochs, lr_factor, plan_epochs
from poselab.pose.train_config import TrainConfig


def test_step_schedule_is_per_epoch_as_before():
    cfg = TrainConfig(epochs=100, warmup_epochs=2, lr_drops=[0.5, 0.8],
                      lr_drop_factors=[0.1, 0.5])
    assert lr_factor(cfg, 0.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 0.99) == pytest.approx(0.1)  # warm-up steps per epoch
    assert lr_factor(cfg, 1.5) == pytest.approx(0.55)
    assert lr_factor(cfg, 49.9) == 1.0 and lr_factor(cfg, 50.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 80.0) == pytest.approx(0.05)


def test_cosine_schedule_warms_up_then_decays_to_the_final_factor():
    cfg = TrainConfig(epochs=10, warmup_epochs=1, lr_schedule="cosine", lr_final_factor=0.01)
    assert lr_factor(cfg, 0.5) == pytest.approx(0.55)  # smooth warm-up within the epoch
    assert lr_factor(cfg, 1.0) == pytest.approx(1.0)
    assert lr_factor(cfg, 5.5) == pytest.approx(0.01 + 0.99 * 0.5)  # half way
    assert lr_factor(cfg, 10.0) == pytest.approx(0.01)
    values = [lr_factor(cfg, e / 10) for e in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # monotone decay


def test_a_small_dataset_gets_its_floor_of_steps():
    cfg = TrainConfig(epochs=120, min_steps=3000)
    assert floor_epochs(cfg, steps_per_epoch=6) == 500  # 45 frames at batch 8
    assert floor_epochs(cfg, steps_per_epoch=100) == 120  # a large dataset keeps its epochs
    assert floor_epochs(TrainConfig(epochs=120), 6) == 120


def test_the_plan_fits_the_budget_and_places_the_drops():
    cfg = TrainConfig(epochs=1000, max_minutes=30, lr_drops=[0.6, 0.85],
                      lr_drop_factors=[0.2, 0.2])
    plan = plan_epochs(cfg, done=2, elapsed_minutes=0.4, epoch_minutes=0.2, eval_minutes=0.5,
                       steps_per_epoch=7)
    assert plan.epochs == 2 + int((30 - 0.4 - 0.5) // 0.2)  # 147
    assert "147 epochs" in plan.note and "lr drops at epochs 89 and 126" in plan.note
    capped = plan_epochs(TrainConfig(epochs=50, max_minutes=30), 2, 0.4, 0.2, 0.5, 7)
    assert capped.epochs == 50  # the configured epochs stay the ceiling
    short = plan_epochs(TrainConfig(epochs=1000, max_minutes=1, min_steps=3000), 2, 0.4, 0.2,
                        0.1, 7)
    assert short.epochs == 4 and "fewer than the 3000 steps" in short.note


def test_ema_follows_the_weights_with_a_ramp():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first update: d = min(0.9, 2/11)
    assert ema.module.weight.mean().item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        ema.update(model)
    assert ema.module.weight.mean().item() == pytest.approx(1.0, abs=1e-6)
    assert not ema.module.weight.requires_grad


def test_auto_crop_holds_the_animal_and_respects_the_frame():
    rng = np.random.default_rng(0)
    # a small animal (~60 px) in a 1280x1024 frame: the minimum crop
    small = rng.uniform(0, 60, (20, 5, 2)) + 500
    assert auto_crop_size(small, [(1024, 1280)]) == (256, 256)
    # two views over a whole 396x406 frame: the frame itself, padded to 32
    wide = np.stack([rng.uniform([5, 5], [390, 400], (17, 2)) for _ in range(20)])
    assert auto_crop_size(wide, [(406, 396)]) == (416, 416)
    # a large animal (300 px) in 1280x1024: 1.5 x 300 = 450 -> 480
    big = rng.uniform(0, 300, (20, 5, 2)) + 100
    big[:, :, 0] = np.linspace(100, 400, 5)  # extent exactly 300 in x
    assert auto_crop_size(big, [(1024, 1280)]) == (480, 480)
    # input_scale shrinks the extent and the frame alike (203x198: never above the frame)
    assert auto_crop_size(wide, [(406, 396)], input_scale=0.5) == (224, 224)


def test_animal_crops_keep_every_keypoint_in_view_when_they_fit():
    """Two views far apart in a 400x400 frame, a 416 crop: every keypoint is always inside;
    keypoint crops of 256 around one keypoint lose the other view."""
    kp = np.array([[40.0, 50.0], [60, 70], [340, 330], [360, 350]])
    animal = AugmentConfig(crop_size=(416, 416), crop_anchor="animal", keypoint_crop_prob=1.0,
                           affine_prob=0.0, crop_max_shift=0.0)
    keypoint = AugmentConfig(crop_size=(256, 256), keypoint_crop_prob=1.0, affine_prob=0.0)
    rng = np.random.default_rng(1)
    lost_animal = lost_keypoint = 0
    for _ in range(200):
        for cfg, name in ((animal, "a"), (keypoint, "k")):
            m, out_hw, _ = sample_geometry(cfg, (400, 400), kp, rng)
            moved = kp @ m[:, :2].T + m[:, 2]
            inside = ((moved >= -0.5) & (moved < np.array(out_hw[::-1]) - 0.5)).all(axis=1)
            if name == "a":
                lost_animal += (~inside).sum()
            else:
                lost_keypoint += (~inside).sum()
    assert lost_animal == 0 and lost_keypoint > 200


def test_balanced_loss_gives_peaks_weight_on_large_maps():
    """At the background-everywhere start, the gradient on a keypoint's peak does not shrink
    with the map size under 'balanced'; under 'bce' it shrinks with 1 / (h w)."""
    codec = Codec(stride=8, sigma=6.0)
    grads = {}
    for loss_name in ("bce", "balanced"):
        for size in (64, 512):
            target = encode(np.array([[size / 2, size / 2]]), (size, size), codec)
            batch = {k: torch.from_numpy(v)[None] for k, v in target.items()}
            h = size // 8
            logits = torch.full((1, 1, h, h), -4.6, requires_grad=True)
            offsets = torch.zeros(1, 2, h, h)
            loss, _ = pose_loss(logits, offsets, batch, heatmap_loss=loss_name)
            loss.backward()
            grads[loss_name, size] = -logits.grad[0, 0, h // 2, h // 2].item()
    assert grads["bce", 64] / grads["bce", 512] == pytest.approx(64, rel=0.05)
    assert grads["balanced", 512] > 0.5 * grads["balanced", 64]
    # an absent keypoint (all-zero target) adds nothing to the balanced term
    absent = {k: torch.from_numpy(v)[None] for k, v in
              encode(np.array([[math.nan, math.nan]]), (64, 64), codec).items()}
    logits = torch.zeros(1, 1, 8, 8)
    a, _ = pose_loss(logits, torch.zeros(1, 2, 8, 8), absent, mask_unlabeled=False)
    b, _ = pose_loss(logits, torch.zeros(1, 2, 8, 8), absent, mask_unlabeled=False,
                     heatmap_loss="balanced")
    assert a.item() == pytest.approx(b.item())
