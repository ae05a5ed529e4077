"""Tests for the MNIST warmup: IDX reading, batches, the CNN, training, transfer and the CLI.

The training tests read the real IDX files in ../shared/data (relative to the repository root)
and are skipped when that folder is absent; everything else runs on tiny generated files.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from poselab.cli.mnist_commands import mnist_app
from poselab.errors import PoselabError
from poselab.mnist import data as mnist_data
from poselab.mnist import mnist
from poselab.mnist.data import Batches, balanced_subset, load_split, read_idx
from poselab.mnist.mnist import MnistCNN, MnistRecipe
from poselab.pose import engine
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA
MNIST_DIR, FASHION_DIR = DATA / "mnist", DATA / "fashion-mnist"
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"{MNIST_DIR} not present")
needs_fashion = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} not present")

IDX_CODES = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C, np.dtype("float32"): 0x0D}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic (0, 0, type, ndim), big-endian dims, data."""
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_split(folder: Path, split: str, n: int, n_labels: int | None = None, gz: bool = True,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n_labels or n) % 10).astype(np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    suffix = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    return images, labels


# --- IDX reader ---------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32"])
def test_read_idx_round_trip(tmp_path, gz, dtype):
    values = np.arange(24) if dtype == "uint8" else np.arange(24) - 5.5 * (dtype == "float32")
    array = values.reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array, gz)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, array)


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    truncated = tmp_path / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(PoselabError, match=r"train-images-idx3-ubyte\.gz: corrupt gzip"):
        read_idx(truncated)
    flipped = bytearray(good)
    flipped[20] ^= 0xFF  # damage the deflate stream (or its CRC) behind an intact header
    bad = tmp_path / "flipped.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(PoselabError, match="flipped.gz: corrupt gzip"):
        read_idx(bad)
    fake = tmp_path / "fake.gz"
    fake.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(PoselabError, match="fake.gz: named .gz but is not gzip"):
        read_idx(fake)


def test_read_idx_bad_magic_type_and_size(tmp_path):
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(PoselabError, match="magic: bad magic number 12340801"):
        read_idx(bad_magic)
    bad_type = tmp_path / "type"
    bad_type.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(PoselabError, match="unknown IDX data type 0x07"):
        read_idx(bad_type)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((4, 5), np.uint8))[:-3])
    with pytest.raises(PoselabError, match="short: holds 17 data bytes .* needs 20"):
        read_idx(short)
    with pytest.raises(PoselabError, match="missing: file not found"):
        read_idx(tmp_path / "missing")


# --- splits ---------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_load_split(tmp_path, gz):
    images, labels = write_split(tmp_path, "test", 12, gz=gz)
    x, y = load_split(tmp_path, "test")
    np.testing.assert_array_equal(x, images)
    assert y.dtype == np.int64 and y.tolist() == labels.tolist()


def test_load_split_finds_torchvision_layout(tmp_path):
    write_split(tmp_path / "FashionMNIST" / "raw", "train", 5)
    assert load_split(tmp_path, "train")[0].shape == (5, 28, 28)


def test_load_split_errors(tmp_path):
    with pytest.raises(PoselabError, match="data folder not found"):
        load_split(tmp_path / "nope", "train")
    with pytest.raises(PoselabError, match=r"missing train-images-idx3-ubyte\[\.gz\].*--download"):
        load_split(tmp_path, "train")
    write_split(tmp_path, "train", 10, n_labels=9)
    with pytest.raises(PoselabError, match="train-labels-idx1-ubyte.gz: 9 labels for 10 images"):
        load_split(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(PoselabError, match=r"t10k-images-idx3-ubyte: expected uint8 \(N, H, W\)"):
        load_split(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        load_split(tmp_path, "validation")


# --- batches and subsets ----------------------------------------------------------------------

def test_batches_shapes_normalization_and_reproducibility():
    images = np.full((10, 28, 28), 255, np.uint8)
    labels = np.arange(10)
    batches = Batches(images, labels, 4, mean=0.5, std=0.5)
    out = list(batches)
    assert len(batches) == len(out) == 3
    assert out[0]["image"].shape == (4, 1, 28, 28) and out[0]["image"].dtype == torch.float32
    assert out[-1]["label"].tolist() == [8, 9]
    assert torch.all(out[0]["image"] == 1.0)  # (1 - 0.5) / 0.5

    shuffled = [b["label"].tolist() for b in Batches(images, labels, 4, mean=0, std=1,
                                                      shuffle=True, seed=3)]
    again = [b["label"].tolist() for b in Batches(images, labels, 4, mean=0, std=1,
                                                   shuffle=True, seed=3)]
    assert shuffled == again
    assert sorted(sum(shuffled, [])) == list(range(10))


def test_batches_shift_moves_each_image_within_range():
    images = np.zeros((64, 28, 28), np.uint8)
    images[:, 14, 14] = 255  # one bright pixel in the middle
    batch = next(iter(Batches(images, np.zeros(64), 64, mean=0, std=1, shift=2, shuffle=True)))
    x = batch["image"][:, 0]  # (B, 28, 28)
    assert torch.all(x.sum(dim=(1, 2)) == 1.0)  # moved, never cut off or duplicated
    rows, cols = x.amax(2).argmax(1), x.amax(1).argmax(1)
    assert rows.min() >= 12 and rows.max() <= 16 and cols.min() >= 12 and cols.max() <= 16
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # images move independently


def test_batches_fixed_steps_cycle_through_small_sets():
    batches = Batches(np.zeros((5, 28, 28), np.uint8), np.arange(5), 4, mean=0, std=1,
                      shuffle=True, steps=7)
    out = list(batches)
    assert len(batches) == len(out) == 7
    assert all(len(b["label"]) in (1, 4) for b in out)


def test_balanced_subset_is_balanced_and_nested():
    labels = np.repeat(np.arange(10), [50, 5, 30, 30, 30, 30, 30, 30, 30, 30])
    small, large = balanced_subset(labels, 20, seed=1), balanced_subset(labels, 100, seed=1)
    assert np.bincount(labels[small], minlength=10).tolist() == [2] * 10
    assert set(small) <= set(large)
    assert len(set(large)) == 100
    assert np.bincount(labels[large])[1] == 5  # a rare class contributes all it has
    assert len(balanced_subset(labels, 10_000)) == len(labels)


# --- model ------------------------------------------------------------------------------------

def test_cnn_shapes_and_split():
    model = MnistCNN()
    x = torch.randn(3, 1, 28, 28)  # (B, 1, 28, 28)
    assert model.features(x).shape == (3, 64, 7, 7)
    assert model(x).shape == (3, 10)
    n_head = sum(p.numel() for p in model.head.parameters())
    assert n_head == 64 * 7 * 7 * 1000 + 1000 + 1000 * 10 + 10


def test_confusion_matrix_and_table_format():
    cm = mnist.confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    text = mnist.format_table([{"labels": 100, "frozen": 0.5, "scratch": 0.25, "seconds": 1.0}])
    assert "50.00%" in text and "25.00%" in text and "finetuned" not in text


def test_download_through_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets

    calls = []

    class FakeFashion:
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashion)
    assert mnist_data.download("fashion-mnist", tmp_path) == tmp_path / "FashionMNIST" / "raw"
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    with pytest.raises(PoselabError, match="unknown"):
        mnist_data.download("cifar", tmp_path)


# --- training on the real data -----------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    """A 2,000-image, 3-epoch run, shared by the tests below (about 10 s on 2 cores)."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f"{MNIST_DIR} not present")
    out = tmp_path_factory.mktemp("mnist") / "run"
    result = mnist.train_mnist(MNIST_DIR, epochs=3, out=out, batch_size=64, limit=2000,
                               test_limit=2000, progress=False)
    return out, result


@needs_mnist
def test_train_on_2000_images_clears_90_percent(mnist_run):
    out, result = mnist_run
    assert result["n_train"] == 2000 and result["n_test"] == 2000
    assert result["test_accuracy"] > 0.90
    assert [row["epoch"] for row in result["epochs"]] == [1, 2, 3]
    assert result["epochs"][-1]["train_loss"] < result["epochs"][0]["train_loss"]
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt", "config.yaml", "metrics.csv", "metrics.json"]
    assert json.loads((out / "metrics.json").read_text()) == result["epochs"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 4


@needs_mnist
def test_run_checkpoint_loads_weights_only_and_reproduces_accuracy(mnist_run):
    out, result = mnist_run
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["arch"] == "mnist-cnn" and ckpt["epoch"] == 3
    model, _ = mnist.load_pretrained(out)
    x, y = load_split(MNIST_DIR, "test")
    idx = balanced_subset(y, 2000, seed=0)
    test = Batches(x[idx], y[idx], 1000, **ckpt["normalization"])
    ev = engine.evaluate(model, test, mnist.classify_metrics, torch.device("cpu"),
                         autocast_dtype=torch.bfloat16)
    assert ev["accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-9)


def test_load_pretrained_rejects_other_checkpoints(tmp_path):
    engine.save_checkpoint(tmp_path / "checkpoint.pt", model={}, arch="posenet")
    with pytest.raises(PoselabError, match="not an MNIST run"):
        mnist.load_pretrained(tmp_path)


@needs_mnist
@needs_fashion
def test_tiny_transfer_writes_table_plot_and_confusion_matrix(mnist_run, tmp_path):
    run, _ = mnist_run
    recipe = MnistRecipe(min_steps=15)
    result = mnist.transfer(run, FASHION_DIR, [100], out=tmp_path / "t", epochs=1,
                            batch_size=50, test_limit=500, recipe=recipe, progress=False)
    (row,) = result["table"]
    assert row["labels"] == 100
    for name in ("frozen", "finetuned", "scratch"):
        assert 0.1 < row[name] <= 1.0  # better than chance even at 100 labels
    assert result["best"]["variant"] in ("frozen", "finetuned")
    for key in ("plot", "confusion_matrix"):
        png = Path(result[key])
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "t" / "transfer.json").read_text())
    assert saved["table"] == result["table"]
    with pytest.raises(PoselabError, match="--labels 0: must be at least 1"):
        mnist.transfer(run, FASHION_DIR, [0], out=tmp_path / "t")
    with pytest.raises(PoselabError, match="'many'"):
        mnist.transfer(run, FASHION_DIR, ["many"], out=tmp_path / "t")
    with pytest.raises(PoselabError, match="--labels 70000: .* has only 60000 training images"):
        mnist.transfer(run, FASHION_DIR, [70000], out=tmp_path / "t")


# --- the typer sub-app ---------------------------------------------------------------------------

@pytest.fixture()
def cli():
    app = typer.Typer()
    app.add_typer(mnist_app, name="mnist")
    return app


@needs_mnist
def test_cli_train_json(cli, tmp_path):
    args = ["mnist", "train", "--data", str(MNIST_DIR), "--epochs", "1", "--limit", "300",
            "--test-limit", "200", "--out", str(tmp_path / "run"), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert {"test_accuracy", "seconds"} <= data.keys()
    assert 0.0 <= data["test_accuracy"] <= 1.0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_cli_train_missing_files_raises_poselab_error(cli, tmp_path):
    result = CliRunner().invoke(cli, ["mnist", "train", "--data", str(tmp_path)])
    assert isinstance(result.exception, PoselabError)
    assert "train-images-idx3-ubyte" in str(result.exception)


def test_cli_transfer_parses_labels_and_prints_json(cli, tmp_path, monkeypatch):
    seen = {}
    table = [{"labels": 100, "frozen": 0.7, "finetuned": 0.72, "scratch": 0.6, "seconds": 1.0}]

    def fake_transfer(from_run, data, labels, **kw):
        seen.update(from_run=from_run, data=data, labels=labels, **kw)
        return {"table": table, "plot": "p.png", "confusion_matrix": "c.png"}

    monkeypatch.setattr(mnist, "transfer", fake_transfer)
    args = ["mnist", "transfer", "--from", str(tmp_path), "--data", str(tmp_path),
            "--labels", "100, 1000,all", "--epochs", "2", "--no-finetune", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["table"] == table
    assert seen["labels"] == ["100", "1000", "all"]
    assert seen["from_run"] == tmp_path and seen["epochs"] == 2 and seen["finetune"] is False

    text = CliRunner().invoke(cli, args[:-1])
    assert "70.00%" in text.stdout and "c.png" in text.stdout
