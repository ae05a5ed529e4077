"""Left/right pairs from names, and flip test-time averaging."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from poselab.pose.flip import (
    detect_flip_pairs,
    flip_average,
    flip_permutation,
    mirror_mismatch,
    swapped_pairs,
)
from poselab.pose.heatmaps import Codec, decode


def test_pairs_from_names():
    assert detect_flip_pairs(["snout", "leftear", "rightear", "tailbase"]) == [
        ("leftear", "rightear")]
    assert detect_flip_pairs(["paw_L", "paw_R", "Left_eye", "Right_eye", "tail"]) == [
        ("paw_L", "paw_R"), ("Left_eye", "Right_eye")]
    assert detect_flip_pairs(["l_hand", "r_hand", "lower", "rear"]) == [("l_hand", "r_hand")]
    assert detect_flip_pairs(["snout", "tail1", "tail2"]) == []
    assert flip_permutation(["a", "l_x", "b", "r_x"], [("l_x", "r_x")]) == [0, 3, 2, 1]


class _Equivariant(nn.Module):
    """A fixed random model that a mirror maps onto itself, the pair swapped: maps of the
    mirrored image are the mirrored maps with left and right exchanged (dx negated)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3 * 3, kernel_size=8, stride=8)  # 3 keypoints: heat, dx, dy

    def _raw(self, x):
        y = self.conv(x)
        return y[:, :3], y[:, 3:]  # (B, 3, h, w), (B, 6, h, w)

    def forward(self, x):
        heat, off = self._raw(x)
        heat_m, off_m = self._raw(torch.flip(x, dims=[-1]))
        heat_m, off_m = torch.flip(heat_m, dims=[-1]), torch.flip(off_m, dims=[-1])
        b, _, h, w = heat.shape
        off, off_m = off.view(b, 3, 2, h, w), off_m.view(b, 3, 2, h, w)
        # keypoint 0 = left (its own map), 1 = right (the mirror of left), 2 = midline
        heat = torch.stack([heat[:, 0], heat_m[:, 0], heat[:, 2] + heat_m[:, 2]], dim=1)
        dx = torch.stack([off[:, 0, 0], -off_m[:, 0, 0], off[:, 2, 0] - off_m[:, 2, 0]], dim=1)
        dy = torch.stack([off[:, 0, 1], off_m[:, 0, 1], off[:, 2, 1] + off_m[:, 2, 1]], dim=1)
        return heat, torch.stack([dx, dy], dim=2).view(b, 6, h, w)


def test_flip_averaging_an_equivariant_model_changes_nothing():
    model = _Equivariant().eval()
    x = torch.rand(2, 3, 64, 96)
    perm = flip_permutation(["left", "right", "snout"], [("left", "right")])
    with torch.no_grad():
        plain = decode(*model(x), Codec())
        averaged = decode(*flip_average(model, x, perm), Codec())
    assert torch.allclose(plain[0], averaged[0], atol=0.1)
    assert torch.allclose(plain[1], averaged[1], atol=1e-5)
    # without the swap (wrong pairs) the average is wrong: the check has teeth
    with torch.no_grad():
        wrong = decode(*flip_average(model, x, [0, 1, 2]), Codec())
    assert not torch.allclose(plain[0], wrong[0], atol=0.1)


def test_names_that_look_sided_without_a_pair_are_found():
    from poselab.pose.flip import looks_sided, unpaired_sided

    assert all(looks_sided(n) for n in ["LF_paw", "paw_RH", "leftear", "L_ear", "earR", "FL"])
    assert not any(looks_sided(n) for n in ["snout", "tail1", "Tailbase", "lower", "ear"])
    names = ["snout", "LF", "RF", "leftear", "rightear"]
    assert unpaired_sided(names, [("leftear", "rightear")]) == ["LF", "RF"]
    assert unpaired_sided(names, [("leftear", "rightear"), ("LF", "RF")]) == []


def _animal(n: int, rng, heading, centre_x, width: float = 640.0, length: float = 80.0):
    """(n, 3, 2) snout, leftear, rightear of an animal heading `heading` (radians)."""
    c = np.stack([centre_x, rng.uniform(100, 380, n)], axis=1)
    fwd = np.stack([np.cos(heading), np.sin(heading)], axis=1)
    side = np.stack([-fwd[:, 1], fwd[:, 0]], axis=1)
    snout = c + fwd * length / 2
    left, right = c + fwd * 10 + side * 8, c + fwd * 10 - side * 8
    return np.stack([snout, left, right], axis=1)


def test_mirror_layout_fair_for_one_animal_unfair_for_two_views_side_by_side():
    rng = np.random.default_rng(0)
    names, pairs = ["snout", "leftear", "rightear"], [("leftear", "rightear")]
    widths = np.full(60, 640.0)
    roaming = _animal(60, rng, rng.uniform(0, 2 * np.pi, 60), rng.uniform(50, 590, 60))
    assert mirror_mismatch(roaming, widths, names, pairs) == []
    # mostly facing left near one wall (openfield's mouse): a flip is still a fair image
    wall = _animal(60, rng, np.pi + rng.normal(0, 0.5, 60), rng.uniform(30, 180, 60))
    assert mirror_mismatch(wall, widths, names, pairs) == []
    # a head-fixed animal facing the camera: left ear right of the right ear, before and
    # after a flip (the pair swaps)
    fixed = np.tile([[320.0, 200.0], [340.0, 180.0], [300.0, 180.0]], (60, 1, 1))
    assert mirror_mismatch(fixed + rng.normal(0, 3, fixed.shape), widths, names, pairs) == []
    # the same animal twice: a top view in the left half, a mirror view in the right half
    top = _animal(60, rng, rng.uniform(0, 2 * np.pi, 60), rng.uniform(60, 260, 60))
    side = top.copy()
    side[..., 0] += 340
    both = np.concatenate([top, side], axis=1)
    views = [f"{b}_top" for b in names] + [f"{b}_side" for b in names]
    view_pairs = [("leftear_top", "rightear_top"), ("leftear_side", "rightear_side")]
    assert mirror_mismatch(both, widths, views, view_pairs) == views
    # few labels: not judged
    assert mirror_mismatch(both[:3], widths[:3], views, view_pairs) == []


def test_a_left_right_swap_is_found_whatever_way_the_animal_turns():
    """Ears on a turning animal (top view): the one frame labeled the wrong way round is
    flagged, and a dataset with no agreement on sides (a side view) flags nothing."""
    rng = np.random.default_rng(0)
    names = ["snout", "leftear", "rightear", "tailbase", "tailtip"]
    frames = []
    for angle in rng.uniform(0, 2 * np.pi, 40):
        forward = np.array([np.cos(angle), np.sin(angle)])
        side = np.array([-forward[1], forward[0]])  # the animal's left, image y down
        centre = rng.uniform(50, 300, 2)
        frames.append([centre + 30 * forward, centre + 20 * forward + 8 * side,
                       centre + 20 * forward - 8 * side, centre - 30 * forward,
                       centre - 70 * forward])
    xy = np.array(frames) + rng.normal(0, 1.0, (40, 5, 2))
    pairs = [("leftear", "rightear")]
    assert swapped_pairs(xy, names, pairs) == []
    xy[[7, 19], 1], xy[[7, 19], 2] = xy[[7, 19], 2], xy[[7, 19], 1].copy()
    assert swapped_pairs(xy, names, pairs) == [(7, "leftear", "rightear"),
                                               (19, "leftear", "rightear")]
    xy[7, 1] = np.nan  # a pair with a point missing is not judged
    assert swapped_pairs(xy, names, pairs) == [(19, "leftear", "rightear")]
    mixed = xy.copy()
    mixed[::2, 1], mixed[::2, 2] = xy[::2, 2], xy[::2, 1]  # half each way: no rule to break
    assert swapped_pairs(mixed, names, pairs) == []
    assert swapped_pairs(xy, ["leftear", "rightear"], pairs) == []  # no body axis
