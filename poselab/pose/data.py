"""Training data: seeded train/test split, PoseDataset, and THE evaluation preprocessing.

Notation: B batch, K keypoints, H W image, H' W' padded image, h w heatmap.

Evaluation, video analysis and eval-mode PoseDataset all use `preprocess` /
`preprocess_batch`: RGB uint8 -> resize by input_scale (`resize_image`; skipped at 1) ->
[0, 1] -> (x - mean) / std -> zero-pad bottom/right to a multiple of 32. Network outputs
are mapped back to frame pixels with `to_frame_pixels`. Zero after normalization is the
mean color, which is also the border color of training warps (`PoseDataset` fills with
round(mean * 255)), so padding looks the same in training and inference. Bottom/right
padding leaves pixel coordinates unchanged, and a multiple of 32 makes every backbone stride
divide the input exactly.

Train mode draws each sample's randomness from numpy.random.default_rng((seed, epoch, frame
index)): the same seed gives the same augmentations whatever the number of DataLoader
workers or which worker serves an index. Call `set_epoch(e)` before each epoch (the epoch
lives in shared memory, so persistent workers see it too); pass `worker_init_fn` to the
DataLoader so each worker runs OpenCV single-threaded.

Extending: new augmentations go in poselab/pose/augment.py (see its docstring); a new per-sample
output is one more key in `PoseDataset.__getitem__` (then `pad_collate` pads it if it is a
map with trailing (h, w) dimensions).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.labels import LabeledFrames
from poselab.pose.augment import (
    AugmentConfig,
    apply_geometry,
    compose,
    drop_outside,
    flip_pair_indices,
    input_scale_matrix,
    padded_size,
    photometric,
    sample_geometry,
    scaled_size,
    transform_keypoints,
)
from poselab.pose.heatmaps import Codec, encode

MULTIPLE = 32  # the largest backbone stride: inputs are padded to a multiple of it


# ----------------------------------------------------------------------------- split
class Split(NamedTuple):
    """Indices into the labeled frames, each sorted; the three lists are disjoint.

    `val` chooses (the best checkpoint, a calibration), `test` only grades: nothing is ever
    chosen on it. `val` is empty when the run has no validation split.
    """

    train: list[int]
    val: list[int]
    test: list[int]


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/test split of range(n); both sorted, disjoint, covering, non-empty.

    numpy's default_rng(seed).permutation gives the same order on every machine; the first
    round(n * train_fraction) shuffled indices (clamped to [1, n - 1]) are the train set.

    Raises:
        PoselabError: n < 2 or train_fraction outside (0, 1).
    """
    if n < 2:
        raise PoselabError(f"need at least 2 labeled frames to split into train/test, got {n}")
    if not 0.0 < train_fraction < 1.0:
        raise PoselabError(f"train fraction must be in (0, 1), got {train_fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = min(max(round(n * train_fraction), 1), n - 1)
    return sorted(int(i) for i in perm[:n_train]), sorted(int(i) for i in perm[n_train:])


def make_split(n: int, train_fraction: float, seed: int, val_fraction: float = 0.0) -> Split:
    """Seeded train/validation/test split of range(n).

    The test set is exactly `split_indices(n, train_fraction, seed)`'s, so adding a
    validation split never changes which frames grade a model; the validation frames,
    round(n * val_fraction) of them (at least 1), are drawn from the training part with
    their own seeded permutation.

    Raises:
        PoselabError: as `split_indices`, or a validation split that leaves no frame to train.
    """
    train, test = split_indices(n, train_fraction, seed)
    if not 0.0 <= val_fraction < 1.0:
        raise PoselabError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0.0:
        return Split(train, [], test)
    n_val = max(round(n * val_fraction), 1)
    if n_val >= len(train):
        raise PoselabError(
            f"validation fraction {val_fraction} takes {n_val} of the {len(train)} training "
            f"frames ({n} labeled, train fraction {train_fraction}); lower it or label more"
        )
    order = np.random.default_rng([seed, 1]).permutation(train)
    val = sorted(int(i) for i in order[:n_val])
    return Split(sorted(set(train) - set(val)), val, test)


def image_key(path: str | os.PathLike) -> str:
    """The project-relative name of a labeled image: 'labeled-data/<video stem>/imgNNNN.png'."""
    return "/".join(Path(path).parts[-3:])


def write_split(
    path: str | os.PathLike,
    split: Split,
    frames: LabeledFrames,
    seed: int,
    train_fraction: float,
    val_fraction: float = 0.0,
) -> Path:
    """Write a split as readable JSON naming images by project-relative path (survives moves)."""
    doc = {
        "seed": seed,
        "train_fraction": train_fraction,
        "val_fraction": val_fraction,
        "train": [image_key(frames.paths[i]) for i in split.train],
        "val": [image_key(frames.paths[i]) for i in split.val],
        "test": [image_key(frames.paths[i]) for i in split.test],
    }
    return atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def read_split(path: str | os.PathLike, frames: LabeledFrames) -> Split:
    """Map a split file back to sorted indices of `frames` by image path.

    Frames labeled after the split was written are in no list. Split files written before
    validation splits existed have no "val": it is empty.

    Raises:
        PoselabError: unreadable file, or an image of the split missing from the labels.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        names = {"train": list(doc["train"]), "val": list(doc.get("val") or []),
                 "test": list(doc["test"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PoselabError(f"{path}: not a readable split file ({exc})") from exc
    index = {image_key(p): i for i, p in enumerate(frames.paths)}
    out = {}
    for part, listed in names.items():
        missing = [n for n in listed if n not in index]
        if missing:
            raise PoselabError(
                f"{path}: {part} image {missing[0]} is not in the labeled frames"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        out[part] = sorted(index[n] for n in listed)
    return Split(out["train"], out["val"], out["test"])


# ----------------------------------------------------------------------------- preprocessing
def pad_to_multiple(array: np.ndarray, multiple: int = MULTIPLE) -> np.ndarray:
    """Zero-pad the trailing (H, W) dimensions bottom/right to multiples of `multiple`."""
    h, w = array.shape[-2:]
    ph, pw = padded_size(h, multiple) - h, padded_size(w, multiple) - w
    if ph == 0 and pw == 0:
        return array
    return np.pad(array, [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)])


def normalize(
    image: np.ndarray, mean: Sequence[float], std: Sequence[float], out: np.ndarray | None = None
) -> np.ndarray:
    """RGB (H, W, 3), uint8 0..255 or float 0..1 -> float32 (3, H, W) = (x - mean) / std.

    Channels move first in the same pass. Train and eval share this exact arithmetic:
    float32 x * (1/255), then - mean, then / std.

    Args:
        image: RGB image (H, W, 3).
        mean: per-channel mean on the [0, 1] scale (e.g. ImageNet's 0.485, 0.456, 0.406).
        std: per-channel standard deviation on the [0, 1] scale.
        out: optional float32 (3, H, W) destination (e.g. a view into a padded array).
    """
    chw = image.transpose(2, 0, 1)  # a view
    if out is None:
        out = np.empty(chw.shape, np.float32)
    if image.dtype == np.uint8:
        np.multiply(chw, np.float32(1 / 255), out=out, dtype=np.float32)
        out -= np.asarray(mean, np.float32)[:, None, None]
    else:
        np.subtract(chw, np.asarray(mean, np.float32)[:, None, None], out=out)
    out /= np.asarray(std, np.float32)[:, None, None]
    return out


def resize_image(image: np.ndarray, input_scale: float) -> np.ndarray:
    """An (H, W, C) image resized to `scaled_size` (the image itself at scale 1).

    INTER_AREA when shrinking (a box filter: no aliasing), INTER_LINEAR when enlarging.
    """
    if input_scale == 1.0:
        return image
    h, w = scaled_size(image.shape[:2], input_scale)
    interp = cv2.INTER_AREA if input_scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def resize_frames(frames: np.ndarray, input_scale: float) -> np.ndarray:
    """`resize_image` for a uint8 (B, H, W, 3) batch."""
    if input_scale == 1.0 or len(frames) == 0:
        return frames
    return np.stack([resize_image(f, input_scale) for f in frames])


def to_frame_pixels(xy: np.ndarray, frame_hw: tuple[int, int], input_scale: float) -> np.ndarray:
    """Network-input coordinates (..., 2) of a frame resized by `resize_image` -> frame pixels.

    The inverse of augment.input_scale_matrix: x = (x' + 0.5) W / W' - 0.5 (pixel centers
    at integers, the resize maps edges to edges).
    """
    if input_scale == 1.0:
        return xy
    h, w = frame_hw
    sh, sw = scaled_size(frame_hw, input_scale)
    ratio = np.array([w / sw, h / sh], np.float64)
    return ((xy + 0.5) * ratio - 0.5).astype(xy.dtype)


def preprocess(
    image: np.ndarray, mean: Sequence[float], std: Sequence[float], multiple: int = MULTIPLE,
    input_scale: float = 1.0,
) -> torch.Tensor:
    """Evaluation preprocessing of one RGB uint8 (H, W, 3) frame -> float32 (3, H', W').

    Resizes by input_scale, normalizes, then zero-pads bottom/right (0 = the mean color);
    padding leaves coordinates unchanged, the resize maps them as `input_scale_matrix`.
    """
    image = resize_image(image, input_scale)
    h, w = image.shape[:2]
    out = np.zeros((3, padded_size(h, multiple), padded_size(w, multiple)), np.float32)
    normalize(image, mean, std, out=out[:, :h, :w])
    return torch.from_numpy(out)


def preprocess_batch(
    frames: torch.Tensor, mean: Sequence[float], std: Sequence[float], multiple: int = MULTIPLE
) -> torch.Tensor:
    """`preprocess` for a uint8 (B, H, W, 3) RGB tensor on any device -> float32 (B, 3, H', W').

    No resize here: callers with an input_scale resize on the host first (`resize_frames`,
    OpenCV, the same pixels as `preprocess`), as `Predictor` does before the upload.
    """
    x = frames.permute(0, 3, 1, 2).float().mul_(1 / 255)  # (B, 3, H, W)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x - m) / s
    h, w = x.shape[-2:]
    return F.pad(x, (0, padded_size(w, multiple) - w, 0, padded_size(h, multiple) - h))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3).

    Raises:
        PoselabError: missing or unreadable file.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if Path(path).is_file() else None
    if image is None:
        what = "unreadable image" if Path(path).is_file() else "image not found"
        raise PoselabError(f"{path}: {what}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- dataset
class PoseDataset(Dataset):
    """Labeled frames as model inputs and (optionally) heatmap targets.

    Each item is a dict of tensors: "image" float32 (3, H, W) normalized; "keypoints"
    float32 (K, 2) in the returned image's pixels (NaN = unlabeled or outside it); "index"
    int64, the frame's index in `frames`; "frame_hw" int64 (2,), the source frame's (H, W)
    (with `input_scale`, `to_frame_pixels` needs it); and, when `codec` is set, every
    heatmaps.encode
    output ("heatmaps" (K, h, w), "offsets" (2K, h, w), "offset_mask" (K, h, w),
    "keypoint_mask" (K,), ...).

    Eval mode (train False or augment None) is `preprocess` on the full frame, no randomness;
    batch it with `pad_collate` when frame sizes differ. Train mode applies `augment`; fixed
    crops make every item the same size, so the default collate works. Both modes see the
    frame resized by `input_scale` (train mode inside its one warp).

    Args:
        frames: the project's labeled frames.
        indices: which frames (indices into `frames`) this dataset serves, e.g. a split.
        codec: heatmap target geometry, or None for image + keypoints only.
        mean: per-channel normalization mean on the [0, 1] scale (the backbone's).
        std: per-channel normalization std on the [0, 1] scale.
        augment: training augmentation; None = eval preprocessing.
        train: apply `augment` (False = eval preprocessing even with `augment` set).
        crop_size: (H, W) overriding augment.crop_size when given.
        flip_pairs: left/right pairs swapped by a horizontal flip, as keypoint indices or
            bodypart names (config.yaml `flip_pairs`).
        cache_images: decode every image once, at construction (a missing image fails
            then); otherwise read from disk on each access.
        seed: augmentation seed; item randomness = default_rng((seed, epoch, frame index)).
        input_scale: resize factor of every frame (TrainConfig.input_scale); crops and
            targets are in the resized image's pixels.

    Raises:
        PoselabError: an index out of range or a missing/unreadable image (naming it).
    """

    def __init__(
        self,
        frames: LabeledFrames,
        indices: Sequence[int],
        codec: Codec | None,
        mean: Sequence[float],
        std: Sequence[float],
        augment: AugmentConfig | None = None,
        train: bool = False,
        crop_size: tuple[int, int] | None = None,
        flip_pairs: Sequence[tuple[Any, Any]] = (),
        cache_images: bool = True,
        seed: int = 0,
        input_scale: float = 1.0,
    ) -> None:
        self.frames, self.indices = frames, [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < len(frames)]
        if bad:
            raise PoselabError(f"frame index {bad[0]} out of range (have {len(frames)} frames)")
        self.codec, self.seed, self.input_scale = codec, seed, float(input_scale)
        self.mean, self.std = list(map(float, mean)), list(map(float, std))
        self.train = bool(train and augment is not None)
        if augment is not None and crop_size is not None:
            augment = replace(augment, crop_size=tuple(crop_size))
        self.augment = augment
        self.flip_pairs = flip_pair_indices(flip_pairs, frames.bodyparts)
        self._absent = frames.absent_mask()
        # Border color of training warps: the mean, i.e. 0 after normalization (as padding).
        self._fill = tuple(round(m * 255) for m in self.mean)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        # Decode every image now: a missing file fails here, not minutes into training, and
        # forked DataLoader workers share the decoded arrays.
        self._cache: dict[int, np.ndarray] | None = None
        if cache_images:
            self._cache = {i: read_image(frames.paths[i]) for i in dict.fromkeys(self.indices)}
        else:
            missing = [frames.paths[i] for i in self.indices if not Path(frames.paths[i]).is_file()]
            if missing:
                raise PoselabError(f"{missing[0]}: image not found")

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentations (shared with DataLoader workers)."""
        self._epoch.fill_(int(epoch))

    def image(self, index: int) -> np.ndarray:
        """RGB uint8 (H, W, 3) of frame `index` (an index into `frames`)."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        return read_image(self.frames.paths[index])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        index = self.indices[i]
        image = self.image(index)
        keypoints = self.frames.keypoints[index].astype(np.float32)  # (K, 2), a copy
        absent = self._absent[index].copy()  # (K,) marked not visible by a labeler
        moved = keypoints
        if self.train:
            rng = np.random.default_rng((self.seed % 2**63, int(self._epoch), index))
            m, out_hw, flipped = self._geometry(image.shape[:2], keypoints, rng)
            warped, moved = apply_geometry(
                image, keypoints, m, out_hw, flipped, self.flip_pairs, self._fill
            )
            keypoints = drop_outside(moved, out_hw)
            if flipped:  # the flags follow their bodyparts, as the keypoints did
                for left, right in self.flip_pairs:
                    absent[[left, right]] = absent[[right, left]]
            x = np.multiply(warped, np.float32(1 / 255), dtype=np.float32)  # (H, W, 3)
            x = torch.from_numpy(normalize(photometric(x, self.augment, rng), self.mean, self.std))
        else:
            x = preprocess(image, self.mean, self.std, input_scale=self.input_scale)
            if self.input_scale != 1.0:
                moved = keypoints = transform_keypoints(
                    keypoints, input_scale_matrix(image.shape[:2], self.input_scale))
        item = {
            "image": x,
            "keypoints": torch.from_numpy(keypoints),
            "index": torch.tensor(index, dtype=torch.int64),
            "frame_hw": torch.tensor(image.shape[:2], dtype=torch.int64),
            "absent": torch.from_numpy(absent),
        }
        if self.codec is not None:
            # The moved keypoints, not the NaN'd ones: a labeled keypoint pushed off the crop
            # is trained as absent (encode's label_mask 1, keypoint_mask 0), not ignored.
            targets = encode(moved, tuple(x.shape[-2:]), self.codec)
            # A keypoint a labeler marked not visible is absent too: an all-zero target.
            targets["label_mask"] = np.maximum(targets["label_mask"], absent.astype(np.float32))
            item.update({k: torch.from_numpy(np.asarray(v)) for k, v in targets.items()})
        return item

    def _geometry(
        self, image_hw: tuple[int, int], keypoints: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, tuple[int, int], bool]:
        """sample_geometry in the resized image's pixels, composed with the resize."""
        if self.input_scale == 1.0:  # today's path, bit for bit
            return sample_geometry(self.augment, image_hw, keypoints, rng)
        resize = input_scale_matrix(image_hw, self.input_scale)
        m, out_hw, flipped = sample_geometry(
            self.augment, scaled_size(image_hw, self.input_scale),
            transform_keypoints(keypoints, resize), rng)
        return compose(m, resize), out_hw, flipped


def pad_collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collate items of different image sizes: zero-pad maps bottom/right to the batch max.

    Images (3, H, W) and targets (C, h, w) are padded (zero = mean color for images, "no
    keypoint" for targets); keypoints keep their pixel coordinates. Same-size entries are
    simply stacked.
    """
    out = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if values[0].dim() >= 2 and len({v.shape for v in values}) > 1:
            h = max(v.shape[-2] for v in values)
            w = max(v.shape[-1] for v in values)
            values = [F.pad(v, (0, w - v.shape[-1], 0, h - v.shape[-2])) for v in values]
        out[key] = torch.stack(values)
    return out



def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker_init_fn: OpenCV runs single-threaded in workers (they are the
    parallelism; N workers x N OpenCV threads would oversubscribe the cores).

    0, not 1: cv2.setNumThreads(1) stops the pthreads pool by joining its threads, which a
    forked worker inherited only on paper, and hangs intermittently; 0 only flags OpenCV
    to run sequentially and never touches the pool.
    """
    cv2.setNumThreads(0)
