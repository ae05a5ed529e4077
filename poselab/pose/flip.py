"""Left/right symmetry: bodypart pairs that a mirror image swaps, and flip test-time averaging.

A horizontal flip of the image turns the left ear into a right ear: training with flips
(augment.hflip_prob) and averaging the model's maps over the image and its mirror at test
time both need the pairs. They come from config.yaml `flip_pairs`, else from the names:
a bodypart whose name has the word "left" (or "l"/"L" as a separate token: l_paw, paw_L)
pairs with the same name saying "right"; every other bodypart is its own mirror image.

Test-time flip: the input is padded to a multiple of 32, so the stride-s cells of the
mirrored image line up exactly with the original's (cell j <-> w - 1 - j); heatmap logits
and offsets of the mirror are flipped back, the pairs' channels swapped and dx negated, and
the two are averaged before decoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

_SIDES = (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"))
_TOKEN = re.compile(r"(?:(?<=^)|(?<=[_\-\s.]))([lLrR])(?=$|[_\-\s.])")


def _mirror_name(name: str) -> str | None:
    for a, b in _SIDES:
        if a in name:
            return name.replace(a, b)
        if b in name:
            return name.replace(b, a)
    swapped = _TOKEN.sub(lambda m: {"l": "r", "r": "l", "L": "R", "R": "L"}[m.group(1)], name)
    return swapped if swapped != name else None


_SPLIT = re.compile(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])")


def looks_sided(name: str) -> bool:
    """Whether a bodypart name seems to say left or right: the words, an l/r token
    (paw_l, L_ear), or a short upper-case token with L or R (LF, RH, FL: limb codes)."""
    if re.search(r"left|right", name, re.IGNORECASE):
        return True
    for token in _SPLIT.split(name):
        if token.lower() in ("l", "r") or (1 < len(token) <= 3 and token.isupper()
                                           and ("L" in token or "R" in token)):
            return True
    return False


def unpaired_sided(bodyparts: Sequence[str], pairs: Sequence[Sequence[str]]) -> list[str]:
    """Bodyparts that look sided but are in no pair: a flip would mislabel them."""
    paired = {b for pair in pairs for b in pair}
    return [b for b in bodyparts if looks_sided(b) and b not in paired]


def detect_flip_pairs(bodyparts: Sequence[str]) -> list[tuple[str, str]]:
    """Pairs of bodyparts whose names differ by left/right (leftear/rightear, paw_L/paw_R)."""
    names = list(bodyparts)
    pairs = []
    for name in names:
        other = _mirror_name(name)
        if other is not None and other in names and (other, name) not in pairs:
            pairs.append((name, other))
    return pairs


# Of the frame width: how far a flip may move keypoints relative to each other on average.
# Views side by side are about half a frame apart (a flip moves them by a whole frame); an
# animal that mostly faces one way (openfield's mouse: tail base 0.14 of the width right of
# the snout, 0.27 after a flip) still flips well.
MIRROR_TOLERANCE = 0.5


def mirror_mismatch(keypoints, widths, bodyparts: Sequence[str],
                    pairs: Sequence[Sequence[str]], tolerance: float = MIRROR_TOLERANCE,
                    min_labels: int = 5) -> list[str]:
    """Bodyparts whose arrangement a mirror image would turn into one never labeled.

    A flip is a fair augmentation when a mirrored frame looks like a real one. What matters
    is how keypoints sit relative to each other, not where the animal is (a mouse that
    stays near one wall still flips well): for every two bodyparts i, j the mean horizontal
    offset x_i - x_j (as a share of the frame width) is compared with what a mirror makes of
    it, minus the offset of their counterparts (pairs swap under the mirror). An animal seen
    in every orientation, one that mostly faces one way, or a head-fixed one facing the
    camera (left paw right of the right paw, before and after) passes; two views side by
    side (a top view left of a mirror view) fail: every mirror-view keypoint is about half a
    frame right of every top-view one, and a flip would put it half a frame left.

    Args:
        keypoints: (N, K, 2) labels in pixels, NaN where missing.
        widths: (N,) width of each labeled frame in pixels.
        bodyparts: the K names.
        pairs: left/right pairs (names) a flip swaps.
        tolerance: largest allowed difference of the mean offsets, as a share of the width.
        min_labels: offsets seen in fewer frames are not judged.

    Returns:
        The bodyparts of the offending pairs, in bodypart order ([] when flips are fair).
    """
    import numpy as np

    x = np.asarray(keypoints, dtype=float)[..., 0] / np.asarray(widths, float)[:, None]
    index = {b: i for i, b in enumerate(bodyparts)}
    partner = list(range(len(bodyparts)))
    for a, b in pairs:
        partner[index[a]], partner[index[b]] = index[b], index[a]
    offsets = x[:, :, None] - x[:, None, :]  # (N, K, K): x_i - x_j
    counts = np.isfinite(offsets).sum(axis=0)
    mean = np.where(counts >= min_labels, np.nansum(offsets, axis=0) / np.maximum(counts, 1),
                    np.nan)
    mirrored = -mean[np.ix_(partner, partner)]  # the offset a flip gives the pair i, j
    with np.errstate(invalid="ignore"):
        bad = np.abs(mean - mirrored) > tolerance
    involved = bad.any(axis=0) | bad.any(axis=1)
    return [b for k, b in enumerate(bodyparts) if involved[k]]


def swapped_pairs(keypoints, bodyparts: Sequence[str], pairs: Sequence[Sequence[str]],
                  agreement: float = 0.8, min_frames: int = 5) -> list[tuple[int, str, str]]:
    """Labeled frames where a left/right pair looks swapped: (frame index, left, right).

    Each pair is judged against a body axis through two bodyparts of no pair near it (of the
    three nearest on average, the two farthest apart: snout and tail base for a pair of
    ears; within the same view when a frame shows two). In a fixed camera, which side of
    that axis the left member lies on does not change as the animal turns (a turn is a
    rotation), so when at least `agreement` of the `min_frames` or more frames with all four
    points labeled put it on one side, a frame that clearly puts it on the other (the pair
    at least 0.2 rad off the axis) was most likely labeled with left and right exchanged.
    Side views, where the animal can turn towards the camera, rarely reach the agreement,
    and then nothing is flagged. `keypoints` is (N, K, 2) with NaN for unlabeled.
    """
    import numpy as np

    index = {b: i for i, b in enumerate(bodyparts)}
    paired = {b for pair in pairs for b in pair}
    unpaired = [index[b] for b in bodyparts if b not in paired]
    if len(unpaired) < 2:
        return []
    xy = np.asarray(keypoints, np.float64)
    found = []
    for left, right in pairs:
        a, b = _axis_parts(xy, unpaired, index[left], index[right])
        axis = xy[:, a] - xy[:, b]
        across = xy[:, index[left]] - xy[:, index[right]]
        cross = axis[:, 0] * across[:, 1] - axis[:, 1] * across[:, 0]
        size = np.linalg.norm(axis, axis=1) * np.linalg.norm(across, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sine = cross / size
        clear = np.isfinite(sine) & (np.abs(sine) >= np.sin(0.2))
        if clear.sum() < min_frames:
            continue
        majority = 1.0 if (sine[clear] > 0).mean() >= 0.5 else -1.0
        if (np.sign(sine[clear]) == majority).mean() < agreement:
            continue
        found += [(int(i), left, right) for i in np.flatnonzero(clear & (sine * majority < 0))]
    return sorted(found)


def label_swaps(config_path) -> list[tuple[Path, str, str]]:
    """`swapped_pairs` over a project's labeled frames, with the pairs config.yaml's
    flip_pairs or the bodypart names give: (image path, left, right)."""
    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project

    project = open_project(config_path)
    frames = load_labeled_frames(project)
    pairs = [tuple(p) for p in project.get("flip_pairs") or detect_flip_pairs(project.bodyparts)]
    return [(frames.paths[i], left, right)
            for i, left, right in swapped_pairs(frames.keypoints, frames.bodyparts, pairs)]


def _axis_parts(xy, unpaired: list[int], left: int, right: int) -> tuple[int, int]:
    """Two unpaired bodyparts (earlier in the list first) that span a body axis near a pair."""
    import numpy as np

    def mean_distance(p, q) -> float:
        d = np.linalg.norm(p - q, axis=-1)
        return float(np.nanmean(d)) if np.isfinite(d).any() else np.inf

    middle = (xy[:, left] + xy[:, right]) / 2
    near = sorted(unpaired, key=lambda u: mean_distance(xy[:, u], middle))[:3]
    a, b = max(((p, q) for i, p in enumerate(near) for q in near[i + 1:]),
               key=lambda pq: mean_distance(xy[:, pq[0]], xy[:, pq[1]]))
    return min(a, b), max(a, b)


def flip_permutation(bodyparts: Sequence[str], pairs: Sequence[Sequence[str]]) -> list[int]:
    """Channel order of a mirrored prediction: index k takes channel perm[k]."""
    index = {b: i for i, b in enumerate(bodyparts)}
    perm = list(range(len(index)))
    for a, b in pairs:
        perm[index[a]], perm[index[b]] = index[b], index[a]
    return perm


def flip_average(model, x: torch.Tensor, perm: Sequence[int]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmap logits (B, K, h, w) and offsets (B, 2K, h, w) averaged over x and its mirror.

    Args:
        model: maps x (B, 3, H, W) to (heatmaps, offsets); W a multiple of the stride.
        x: normalized, padded images.
        perm: `flip_permutation` of the bodyparts.
    """
    heatmaps, offsets = model(x)
    mirror_h, mirror_o = mirrored_maps(model, x, perm)
    return (heatmaps + mirror_h) / 2, (offsets + mirror_o) / 2


def mirrored_maps(model, x: torch.Tensor, perm: Sequence[int]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's maps of x's mirror image, mapped back onto x (pairs swapped, dx negated)."""
    mirror_h, mirror_o = model(torch.flip(x, dims=[-1]))
    b, k, h, w = mirror_h.shape
    index = torch.as_tensor(list(perm), device=x.device)
    mirror_h = torch.flip(mirror_h, dims=[-1])[:, index]
    mirror_o = torch.flip(mirror_o, dims=[-1]).reshape(b, k, 2, h, w)[:, index]
    sign = torch.tensor([-1.0, 1.0], device=x.device, dtype=mirror_o.dtype).view(1, 1, 2, 1, 1)
    return mirror_h, (mirror_o * sign).reshape(b, 2 * k, h, w)
