"""Model export: TorchScript and ONNX reproduce the PyTorch model on two input sizes, the
recipe JSON is complete, the CLI works and bad input is one line + exit code 2. One tiny
model trained once for the module."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from poselab.analysis.export import export_model, load_exported
from poselab.cli import app
from poselab.demo import make_synthetic_project
from poselab.errors import PoselabError
from poselab.io.synthetic import SYNTHETIC_BODYPARTS
from poselab.pose.heatmaps import Codec, decode
from poselab.pose.predict import load_run
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
RECIPE_KEYS = {"input", "input_scale", "resize", "to_frame_pixels", "mean", "std",
               "pad_multiple", "stride", "locref_std", "cell_center", "decode", "bodyparts",
               "skeleton", "pcutoff", "scorer", "run", "epoch", "format", "poselab_version"}
FORMATS = ["torchscript",
           pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ORT, reason="needs onnx, "
                                                         "onnxscript and onnxruntime"))]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A resnet18 (random init, head width 32) trained 2 epochs on a 96x64 synthetic video."""
    root = tmp_path_factory.mktemp("export")
    config, _, _ = make_synthetic_project(root, "ex", n_frames=16, seed=3, label_every=2)
    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=2, batch_size=4, workers=0,
                      head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                      augment={"crop_size": None, "affine_prob": 0.0})
    return train(config, cfg, name="tiny")


def _frames(h: int, w: int, seed: int, mean, std) -> np.ndarray:
    """Padded normalized inputs as the recipe builds them: 2 random RGB frames of (h, w)."""
    from poselab.pose.data import preprocess_batch

    frames = np.random.default_rng(seed).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    return preprocess_batch(torch.from_numpy(frames), mean, std).numpy()


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_matches_pytorch(run: Path, tmp_path: Path, fmt: str):
    model_path, json_path = export_model(run, fmt, dest=tmp_path)
    assert model_path == tmp_path / "export" / ("model.pt" if fmt == "torchscript"
                                                else "model.onnx")
    assert json_path == tmp_path / "export" / "preprocessing.json"
    assert not list(model_path.parent.glob(".*tmp*"))  # atomic: no temp file left
    recipe = json.loads(json_path.read_text())
    assert RECIPE_KEYS <= set(recipe)
    assert recipe["format"] == fmt and recipe["run"] == "tiny" and recipe["pad_multiple"] == 32
    assert recipe["bodyparts"] == list(SYNTHETIC_BODYPARTS) and recipe["input_scale"] == 1.0

    model, info, epoch = load_run(run)
    assert recipe["epoch"] == epoch and recipe["mean"] == pytest.approx(list(model.mean))
    codec = Codec(**info["codec"])
    assert (recipe["stride"], recipe["locref_std"]) == (codec.stride, codec.locref_std)
    fused = load_run(run)[0].fuse_for_inference()
    exported = load_exported(model_path)
    # 64x96 is the (already padded) video size; 70x100 pads to 96x128: both sizes, one graph.
    for (h, w), seed in (((64, 96), 0), ((70, 100), 1)):
        x = _frames(h, w, seed, recipe["mean"], recipe["std"])
        assert x.shape[-2:] == ((64, 96) if h == 64 else (96, 128))
        heatmaps, offsets = exported(x)
        with torch.no_grad():
            ref_h, ref_o = fused(torch.from_numpy(x))
            raw_h, _ = model(torch.from_numpy(x))
        np.testing.assert_allclose(heatmaps, ref_h.numpy(), atol=1e-4)
        np.testing.assert_allclose(offsets, ref_o.numpy(), atol=1e-4)
        np.testing.assert_allclose(heatmaps, raw_h.numpy(), atol=1e-3)  # unfused, too
        xy, lik = decode(torch.from_numpy(heatmaps), torch.from_numpy(offsets), codec)
        ref_xy, ref_lik = decode(ref_h, ref_o, codec)
        np.testing.assert_allclose(xy.numpy(), ref_xy.numpy(), atol=1e-3)
        np.testing.assert_allclose(lik.numpy(), ref_lik.numpy(), atol=1e-4)
        # The recipe's decode, written from the JSON alone, gives the same keypoints.
        np.testing.assert_allclose(_recipe_decode(recipe, heatmaps, offsets)[0], xy.numpy(),
                                   atol=1e-3)


def _recipe_decode(recipe: dict, heatmaps: np.ndarray, offsets: np.ndarray):
    """preprocessing.json's decode, as a consumer without poselab would write it."""
    b, k, h, w = heatmaps.shape
    idx = heatmaps.reshape(b, k, -1).argmax(-1)
    i, j = np.unravel_index(idx, (h, w))
    s, std = recipe["stride"], recipe["locref_std"]
    bb, kk = np.meshgrid(np.arange(b), np.arange(k), indexing="ij")
    dx, dy = offsets[bb, 2 * kk, i, j], offsets[bb, 2 * kk + 1, i, j]
    xy = np.stack([j * s + (s - 1) / 2 + dx * std, i * s + (s - 1) / 2 + dy * std], -1)
    return xy, 1 / (1 + np.exp(-heatmaps[bb, kk, i, j]))


def test_scaled_run_export_follows_the_recipe(run: Path, tmp_path: Path):
    """A run with input_scale 0.5: the exported network takes the resized frame, and the
    JSON's resize + decode + to_frame_pixels reproduce Predictor in frame pixels."""
    import shutil

    import cv2
    import yaml

    from poselab.pose.predict import Predictor

    scaled = tmp_path / "half"
    shutil.copytree(run, scaled)  # the weights do not matter for parity; the option does
    info = yaml.safe_load((scaled / "run.yaml").read_text())
    info["train"]["input_scale"] = 0.5
    (scaled / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    model_path, json_path = export_model(scaled, "torchscript", dest=tmp_path)
    recipe = json.loads(json_path.read_text())
    assert recipe["input_scale"] == 0.5 and "INTER_AREA" in recipe["resize"]
    frames = np.random.default_rng(5).integers(0, 256, (2, 70, 101, 3), dtype=np.uint8)
    h, w = round(70 * recipe["input_scale"]), round(101 * recipe["input_scale"])  # 35, 50
    resized = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    x = _frames_from(resized, recipe["mean"], recipe["std"])
    assert x.shape[-2:] == (64, 64)
    xy, _ = _recipe_decode(recipe, *load_exported(model_path)(x))
    xy = (xy + 0.5) * [101 / w, 70 / h] - 0.5  # the JSON's to_frame_pixels
    predictor = Predictor.from_dir(scaled, device="cpu")
    ref, _ = predictor.predict_rgb(frames)
    np.testing.assert_allclose(xy, ref, atol=1e-3)


def _frames_from(rgb: np.ndarray, mean, std) -> np.ndarray:
    from poselab.pose.data import preprocess_batch

    return preprocess_batch(torch.from_numpy(rgb), mean, std).numpy()


def test_cli_export_and_errors(run: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(run), "--dest", str(tmp_path), "--which", "last"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "export" / "model.pt").is_file()
    assert str(tmp_path / "export" / "preprocessing.json") in result.output
    assert json.loads((tmp_path / "export" / "preprocessing.json").read_text())["epoch"] == 1

    for args, needle in (([str(tmp_path), "--dest", str(tmp_path)], "not a poselab run"),
                         ([str(run), "--format", "tflite"], "unknown export format")):
        result = runner.invoke(app, ["export", *args])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    with pytest.raises(PoselabError, match="unknown checkpoint"):
        export_model(run, which="first")
    with pytest.raises(PoselabError, match="not an exported model"):
        load_exported(tmp_path / "export" / "preprocessing.json")


def test_missing_onnx_packages_named(run: Path, tmp_path: Path, monkeypatch):
    import importlib.util as util

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(PoselabError, match="pip install onnxruntime"):
        export_model(run, "onnx", dest=tmp_path)
    assert not (tmp_path / "export").exists()  # nothing written before the check
