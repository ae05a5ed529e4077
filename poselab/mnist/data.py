"""MNIST-style data: the IDX file reader, split loading, in-memory minibatches, download.

The four standard files (``train-images-idx3-ubyte.gz`` ... ``t10k-labels-idx1-ubyte.gz``,
gzip-compressed or raw) are read into numpy arrays; ``Batches`` turns them into
``{"image": (B, 1, H, W) float32, "label": (B,) int64}`` batches for ``poselab.pose.engine``.
Everything stays in memory (60,000 x 28 x 28 bytes = 47 MB), which is far faster on a CPU
than a per-item Dataset + DataLoader.

Extending: another IDX dataset in the same layout (KMNIST, EMNIST letters) needs only an
entry in ``DOWNLOADERS`` and, if it has more than 10 classes, ``num_classes`` on the model.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from poselab.errors import PoselabError

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) into an array.

    Args:
        path: the file; compression is detected from its first bytes, not its name.

    Returns:
        The array with the file's dtype (native byte order) and shape.

    Raises:
        PoselabError: missing file, corrupt gzip, bad magic number, unknown type, or a data
            size that disagrees with the header.
    """
    path = Path(path)
    if not path.is_file():
        raise PoselabError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise PoselabError(
                f"{path}: corrupt gzip data ({e}); delete it and download again") from e
    elif path.suffix == ".gz":
        raise PoselabError(f"{path}: named .gz but is not gzip data")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise PoselabError(f"{path}: bad magic number {raw[:4].hex()}; not an IDX file")
    dtype = IDX_DTYPES.get(raw[2])
    if dtype is None:
        raise PoselabError(f"{path}: unknown IDX data type 0x{raw[2]:02x} in the magic number")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise PoselabError(f"{path}: truncated IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise PoselabError(
            f"{path}: holds {len(raw) - header} data bytes but its header {shape} "
            f"needs {expected}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path:
    # torchvision's download leaves the files in <root>/<Dataset>/raw/, so look there as well.
    for base in (folder, *sorted(folder.glob("*/raw"))):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    raise PoselabError(
        f"{folder}: missing {stem}[.gz] (the standard MNIST IDX files); "
        "pass the folder that holds them or add --download"
    )


def load_split(folder: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load the images and labels of one split from a folder of IDX files.

    Args:
        folder: holds ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
            ``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]`` (directly or
            in torchvision's ``<Dataset>/raw/`` subfolder).
        split: "train" or "test".

    Returns:
        images uint8 (N, H, W) and labels int64 (N,).

    Raises:
        PoselabError: a missing folder or file, an unreadable file, wrong dimensions, or
            image and label counts that differ.
    """
    if split not in SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise PoselabError(
            f"{folder}: data folder not found; pass an existing folder or --download")
    image_path = _find(folder, f"{SPLIT_PREFIX[split]}-images-idx3-ubyte")
    label_path = _find(folder, f"{SPLIT_PREFIX[split]}-labels-idx1-ubyte")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise PoselabError(f"{image_path}: expected uint8 (N, H, W) images, got "
                           f"{images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise PoselabError(f"{label_path}: expected one label per image, got shape {labels.shape}")
    if len(images) != len(labels):
        raise PoselabError(f"{label_path}: {len(labels)} labels for {len(images)} images in "
                           f"{image_path.name}; the files do not belong together")
    return images, labels.astype(np.int64)


class Batches:
    """Re-iterable minibatches of in-memory images, as ``poselab.pose.engine`` expects.

    Yields ``{"image": (B, 1, H, W) float32 normalized, "label": (B,) int64}``. With
    ``shuffle`` every pass draws a new permutation from one seeded generator, so a run is
    reproducible; ``shift`` adds random translations of up to that many pixels (the one
    augmentation that suits digits: flips and large rotations change a digit's meaning).
    ``steps`` fixes the number of batches per pass (cycling through the data), so that a
    100-image subset still gets a useful number of optimizer steps.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        mean: float,
        std: float,
        shuffle: bool = False,
        shift: int = 0,
        steps: int | None = None,
        seed: int = 0,
    ) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))  # (N, H, W) uint8
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))  # (N,)
        self.batch_size = min(batch_size, len(self.images))
        self.mean, self.std = mean, std
        self.shuffle, self.shift, self.steps = shuffle, shift, steps
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.steps is not None:
            return self.steps
        return -(-len(self.images) // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = len(self.images)
        return torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)

    def _translate(self, x: torch.Tensor) -> torch.Tensor:
        # x (B, H, W) uint8 -> each image moved by its own (dy, dx) in [-shift, shift], zero fill,
        # as one gather from a padded copy instead of a Python loop over the batch.
        s = self.shift
        b, h, w = x.shape
        padded = torch.nn.functional.pad(x, (s, s, s, s))  # (B, H + 2s, W + 2s)
        dy, dx = torch.randint(0, 2 * s + 1, (2, b, 1), generator=self.generator)
        rows = (dy + torch.arange(h))[:, :, None]  # (B, H, 1)
        cols = (dx + torch.arange(w))[:, None, :]  # (B, 1, W)
        return padded[torch.arange(b)[:, None, None], rows, cols]

    def __iter__(self):
        order = self._order()
        pos = 0
        for _ in range(len(self)):
            if pos >= len(order):  # only with `steps`: start a new pass over the data
                order, pos = self._order(), 0
            idx = order[pos : pos + self.batch_size]
            pos += self.batch_size
            x = self.images[idx]
            if self.shift:
                x = self._translate(x)
            image = (x.float().div_(255.0).sub_(self.mean).div_(self.std)).unsqueeze(1)
            yield {"image": image, "label": self.labels[idx]}


def balanced_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of ``n`` samples, as evenly spread over the classes as possible, seeded.

    Subsets for growing ``n`` with the same seed are nested (100 labels are among the 1,000),
    so a learning curve compares like with like.

    Args:
        labels: (N,) class per sample.
        n: how many to take (all when ``n >= N``).
        seed: the shuffle seed.

    Returns:
        (n,) int64 indices into ``labels``.
    """
    labels = np.asarray(labels)
    perm = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[perm]
    # rank of each sample within its class in the shuffled order: 0 for the first of a class
    rank = np.zeros(len(perm), dtype=np.int64)
    for c in np.unique(shuffled):
        where = np.flatnonzero(shuffled == c)
        rank[where] = np.arange(len(where))
    # take all rank-0 samples (one per class), then all rank-1, ...: round-robin over classes
    order = np.lexsort((np.arange(len(perm)), rank))
    return perm[order[: min(n, len(perm))]]


DOWNLOADERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def download(dataset: str, dest: str | os.PathLike) -> Path:
    """Fetch a dataset through torchvision (needs network) and return its IDX folder.

    Args:
        dataset: "mnist" or "fashion-mnist".
        dest: the root folder; the files land in ``dest/<MNIST|FashionMNIST>/raw/``.

    Returns:
        The folder holding the IDX files, ready for ``load_split``.

    Raises:
        PoselabError: an unknown dataset name or a failed download.
    """
    if dataset not in DOWNLOADERS:
        raise PoselabError(f"dataset {dataset!r}: unknown; use one of {', '.join(DOWNLOADERS)}")
    import torchvision.datasets  # lazy: only users who download pay for the import

    cls = getattr(torchvision.datasets, DOWNLOADERS[dataset])
    dest = Path(dest)
    try:
        for train in (True, False):
            cls(root=str(dest), train=train, download=True)
    except (OSError, RuntimeError) as e:
        raise PoselabError(f"{dest}: downloading {dataset} failed ({e})") from e
    return dest / DOWNLOADERS[dataset] / "raw"
