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
               "skeleton", "pcutoff", "scorer", "run", "epoch", "format", "precision",
               "check", "poselab_version"}
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


HALF = [("torchscript", "bf16"), ("torchscript", "fp16"),
        pytest.param("onnx", "fp16", marks=[pytest.mark.slow, pytest.mark.skipif(
            not HAS_ORT, reason="needs onnx, onnxscript and onnxruntime")])]


@pytest.mark.slow  # two exports and a check: 5-25 s here
@pytest.mark.parametrize(("fmt", "precision"), HALF)
def test_half_precision_export_is_checked_in_its_precision(run: Path, tmp_path: Path,
                                                           fmt: str, precision: str):
    """A bf16/fp16 export computes in that precision behind float32 input and outputs; the
    check compares it with PyTorch in the same precision, and the recipe says how far that is
    from fp32. Progress lines name each step."""
    from poselab.analysis.export import CastNetwork, PaddedNetwork

    lines: list[str] = []
    model_path, json_path = export_model(run, fmt, dest=tmp_path, precision=precision,
                                         echo=lines.append)
    recipe = json.loads(json_path.read_text())
    assert recipe["precision"] == precision
    check = recipe["check"]
    assert check["against"] == f"PyTorch computing in {precision}"
    assert 0 < check["max_abs_diff_from_fp32"]["heatmaps"] < 1.0  # rounding, not a wrong net
    assert lines[0].startswith("export: tiny, ") and lines[0].endswith(f"{fmt}, {precision}")
    assert any(line.startswith("export: checking model.") for line in lines)
    net = PaddedNetwork(load_run(run)[0].fuse_for_inference()).eval()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    x = _frames(64, 96, 0, recipe["mean"], recipe["std"])
    heatmaps, offsets = load_exported(model_path)(x)
    assert heatmaps.dtype == offsets.dtype == np.float32  # the fp32 interface
    with torch.no_grad():
        same, _ = CastNetwork(net, dtype)(torch.from_numpy(x))
    scale = float(same.abs().max())
    np.testing.assert_allclose(heatmaps, same.numpy(), atol=0.05 * max(scale, 1.0))


@pytest.mark.slow  # two exports: 5-20 s here
def test_export_precision_recorded_and_refused(run: Path, tmp_path: Path):
    _, json_path = export_model(run, "torchscript", dest=tmp_path, precision="auto")
    recipe = json.loads(json_path.read_text())
    assert recipe["precision"] == "fp32"  # auto: the device that will run it is unknown
    assert recipe["check"]["max_abs_diff"]["heatmaps"] <= 1e-4
    with pytest.raises(PoselabError, match="--precision 'half'"):
        export_model(run, "torchscript", dest=tmp_path, precision="half")
    with pytest.raises(PoselabError, match="ONNX Runtime has no bfloat16"):
        export_model(run, "onnx", dest=tmp_path / "b", precision="bf16")
    assert not (tmp_path / "b").exists()
    result = CliRunner().invoke(app, ["export", str(run), "--dest", str(tmp_path / "c"),
                                      "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert "export: checking model.pt" in result.output
    recipe = json.loads((tmp_path / "c" / "export" / "preprocessing.json").read_text())
    assert recipe["precision"] == "bf16"


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
    with pytest.raises(PoselabError, match="'first'"):  # the bad value is named
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


# ----------------------------------------------------------------------------- every model
def _untrained_run(root: Path, cfg: TrainConfig, name: str) -> Path:
    """A run dir as training writes it (run.yaml + last.pt) for `cfg`'s architecture, with
    random weights and random batch-norm statistics (so fusing them is exercised too)."""
    import yaml

    from poselab.pose.engine import save_checkpoint
    from poselab.pose.heatmaps import Codec as _Codec
    from poselab.pose.models.posenet import PoseNet

    torch.manual_seed(0)
    model = PoseNet(cfg.backbone, 2, weights="none", output_stride=cfg.output_stride,
                    backbone_stride=cfg.backbone_stride, head_width=cfg.head_width,
                    head_direct=cfg.head_direct)
    _randomize_batch_norms(model)
    codec = _Codec(stride=cfg.output_stride, sigma=cfg.sigma, locref_std=cfg.locref_std)
    run = root / name
    run.mkdir()
    info = {"train": cfg.to_dict(), "model": model.config(), "codec": vars(codec),
            "bodyparts": ["a", "b"], "scorer": "me", "mean": list(model.mean),
            "std": list(model.std), "pcutoff": 0.6, "skeleton": []}
    (run / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    save_checkpoint(run / "last.pt", model=model.state_dict(), epoch=0)
    return run


def _randomize_batch_norms(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


def _presets() -> list[str]:
    from poselab.pose.train_config import preset_names

    return preset_names()


def _architectures() -> list:
    from poselab.pose.models.backbones import BACKBONES
    from poselab.pose.train_config import load_preset

    # The deeper ResNets share resnet18's code path (torchvision) and take seconds each to
    # trace and check on this CPU: slow, but still run.
    def marks(backbone: str):
        return () if backbone in ("resnet18", "efficientnet_lite0") else (pytest.mark.slow,)

    cases = [pytest.param({"backbone": b, "backbone_stride": s, "head_width": 16},
                          id=f"{b}-stride{s}", marks=marks(b))
             for b in BACKBONES for s in (32, 16)]
    cases += [pytest.param({"preset": p}, id=f"preset-{p}",
                           marks=marks(load_preset(p).get("backbone", "resnet50")))
              for p in _presets()]
    return cases


@pytest.mark.parametrize("arch", _architectures())
def test_torchscript_export_of_every_backbone_and_preset(arch: dict, tmp_path: Path):
    """Tracing keeps every shape-dependent op dynamic (EfficientNet-Lite0's "same" padding
    froze at the example size before): the export reproduces PyTorch at the check's two
    input sizes (64x96, traced; 96x128) and a third one. The network only, no run dir: the
    run-dir path is tested above, and a checkpoint round trip would triple the time."""
    from poselab.analysis.export import FORMATS as WRITERS
    from poselab.analysis.export import PaddedNetwork, _check
    from poselab.pose.models.posenet import PoseNet
    from poselab.pose.train_config import resolve_config

    preset = arch.pop("preset", None)
    cfg = resolve_config(preset, {**arch, "weights": "none"})
    torch.manual_seed(0)
    model = PoseNet(cfg.backbone, 2, weights="none", output_stride=cfg.output_stride,
                    backbone_stride=cfg.backbone_stride, head_width=cfg.head_width,
                    head_direct=cfg.head_direct).eval()
    _randomize_batch_norms(model)
    net = PaddedNetwork(model.fuse_for_inference()).eval()
    path = tmp_path / "model.pt"
    WRITERS["torchscript"].export(net, path, torch.zeros(1, 3, 64, 96))
    exported = WRITERS["torchscript"].load(path)
    _check(exported, net, path)  # raises on a mismatch at 64x96 or 96x128
    x = torch.randn(1, 3, 32, 64, generator=torch.Generator().manual_seed(0))
    heatmaps, offsets = exported(x.numpy())
    with torch.no_grad():
        ref_h, ref_o = net(x)
    assert heatmaps.shape == tuple(ref_h.shape) == (1, 2, 32 // cfg.output_stride,
                                                    64 // cfg.output_stride)
    np.testing.assert_allclose(heatmaps, ref_h.numpy(), atol=1e-4)
    np.testing.assert_allclose(offsets, ref_o.numpy(), atol=1e-4)


def test_efficientnet_lite0_run_exports_to_torchscript(tmp_path: Path):
    """The issue's case: `export` (TorchScript, the default) of a Lite0 run is kept."""
    cfg = TrainConfig(backbone="efficientnet_lite0", weights="none", head_width=16)
    run = _untrained_run(tmp_path, cfg, "lite")
    model_path, json_path = export_model(run, which="last")
    assert model_path.name == "model.pt" and model_path.is_file() and json_path.is_file()
    x = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(2))
    heatmaps, _ = load_exported(model_path)(x.numpy())
    with torch.no_grad():
        ref, _ = load_run(run, "last")[0].fuse_for_inference()(x)
    np.testing.assert_allclose(heatmaps, ref.numpy(), atol=1e-4)


@pytest.mark.slow  # the dynamo ONNX exporter takes 10-20 s here
@pytest.mark.skipif(not HAS_ORT, reason="needs onnx, onnxscript and onnxruntime")
def test_onnx_export_of_efficientnet_lite0(tmp_path: Path):
    """Stride 16 (dilated): the padding of every stride-2 block is checked by ONNX Runtime."""
    cfg = TrainConfig(backbone="efficientnet_lite0", weights="none", backbone_stride=16,
                      head_width=16)
    run = _untrained_run(tmp_path, cfg, "lite")
    model_path, _ = export_model(run, "onnx", which="last")
    x = torch.randn(1, 3, 64, 160, generator=torch.Generator().manual_seed(1))
    heatmaps, _ = load_exported(model_path)(x.numpy())
    with torch.no_grad():
        ref, _ = load_run(run, "last")[0].fuse_for_inference()(x)
    np.testing.assert_allclose(heatmaps, ref.numpy(), atol=1e-4)


def test_failed_export_leaves_no_folder(tmp_path: Path, monkeypatch):
    """An export that fails its check removes the export/ folder it created (and only it)."""
    import poselab.analysis.export as export

    cfg = TrainConfig(backbone="resnet18", weights="none", head_width=16)
    run = _untrained_run(tmp_path, cfg, "r")

    def wrong(path: Path):
        real = export._run_torchscript(path)
        return lambda x: tuple(a + 1 for a in real(x))  # a broken export, caught by the check

    monkeypatch.setitem(export.FORMATS, "torchscript",
                        export.Format("model.pt", export._export_torchscript, wrong))
    dest = tmp_path / "deploy" / "v1"
    with pytest.raises(PoselabError, match="export disagrees with PyTorch"):
        export_model(run, "torchscript", dest=dest, which="last")
    assert not (tmp_path / "deploy").exists()
    existing = tmp_path / "mine"
    (existing / "export").mkdir(parents=True)
    with pytest.raises(PoselabError):
        export_model(run, "torchscript", dest=existing, which="last")
    assert (existing / "export").is_dir()  # not ours to remove


def test_dest_that_is_a_file_is_one_line_error(tmp_path: Path):
    cfg = TrainConfig(backbone="resnet18", weights="none", head_width=16)
    run = _untrained_run(tmp_path, cfg, "r")
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    with pytest.raises(PoselabError, match="is not a folder"):
        export_model(run, dest=afile, which="last")
    assert afile.read_text() == "keep"
