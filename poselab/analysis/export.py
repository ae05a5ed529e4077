"""Export a trained run's network for deployment: TorchScript or ONNX, plus its recipe.

`export_model(run, fmt)` writes `<dest or run>/export/model.pt` (TorchScript) or
`model.onnx` (ONNX) and `export/preprocessing.json`, which states everything a consumer
outside poselab must do around the network. The exported graph is the network only, with
batch norms folded (`PoseNet.fuse_for_inference`):

    input   "image"     float32 (B, 3, H, W), the frame resized by input_scale, normalized,
                        zero-padded to multiples of 32
    outputs "heatmaps"  float32 (B, K, H/stride, W/stride), logits
            "offsets"   float32 (B, 2K, H/stride, W/stride), [2k] = dx, [2k + 1] = dy

Preprocessing (data.preprocess_batch) and decoding (heatmaps.decode) stay outside the graph:
both are a few lines in any language, and keeping them out keeps the graph free of
data-dependent ops (argmax, gather), so the export matches PyTorch up to float rounding.
Every export is checked against the PyTorch model on two input sizes before it is kept
(atol 1e-4 in fp32).

Precision: fp32 by default. `precision="bf16"` (TorchScript) or `"fp16"` (both formats)
stores the weights in that type and computes in it behind the same float32 input and
outputs, to match `poselab analyze --precision` of the same setting; the check then compares
with PyTorch computing in that precision (tolerance CHECK_TOLERANCE) and preprocessing.json
records the precision and how far the outputs are from fp32.

Adding a format: write `_export_<name>(net, path, example) -> None` that saves `net` (a
`PaddedNetwork`, taking the padded normalized batch) to `path`, and a `_run_<name>(path)` that
loads it back as a callable `x -> (heatmaps, offsets)` for the check; register both, with the
file name, in `FORMATS`.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write, atomic_write_text
from poselab.pose.predict import precision_name

PAD_MULTIPLE = 32  # data.MULTIPLE; repeated so the recipe does not import OpenCV
CHECK_SIZES = ((64, 96), (96, 128))  # (H, W) of the padded inputs the export is checked on
CHECK_ATOL = 1e-4  # exported vs PyTorch outputs (fused batch norms; float rounding only)
# Half precisions: exported vs PyTorch in the same precision, as a fraction of the largest
# output (different kernels round differently: about 1e-3 of the range here)
CHECK_TOLERANCE = {"fp32": None, "fp16": 2e-2, "bf16": 5e-2}
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class PaddedNetwork(nn.Module):
    """PoseNet for padded inputs: `backbone -> head`, without PoseNet.forward's crop.

    For H, W multiples of 32 the crop never applies, and without it the graph has no
    shape-dependent branch, so one trace or ONNX graph serves every input size.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(image))


class CastNetwork(nn.Module):
    """A network that computes in `dtype` (weights stored in it) behind float32 input and
    outputs, so a half-precision export has the interface of an fp32 one."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = net.to(dtype), dtype

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps, offsets = self.net(image.to(self.dtype))
        return heatmaps.float(), offsets.float()


# ----------------------------------------------------------------------------- torchscript
def _export_torchscript(net: nn.Module, path: Path, example: torch.Tensor) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notes
        traced = torch.jit.trace(net, example, check_trace=False)
        torch.jit.save(traced, str(path))


def _run_torchscript(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            heatmaps, offsets = module(torch.from_numpy(x))
        return heatmaps.numpy(), offsets.numpy()

    return run


# ----------------------------------------------------------------------------- onnx
ONNX_OPSET = 18


def require_packages(*modules: str) -> None:
    """Raise a one-line PoselabError naming the missing packages (ONNX export and runtime)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise PoselabError(f"ONNX export needs the {' and '.join(missing)} package(s): "
                           f"pip install {' '.join(missing)}")


def _export_onnx(net: nn.Module, path: Path, example: torch.Tensor) -> None:
    require_packages("onnx", "onnxscript", "onnxruntime")
    from torch.export import Dim

    dims = {0: Dim("batch"), 2: Dim("height"), 3: Dim("width")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (deprecations, dynamo notes)
        torch.onnx.export(net, (example,), str(path), input_names=["image"],
                          output_names=["heatmaps", "offsets"], dynamic_shapes={"image": dims},
                          opset_version=ONNX_OPSET, dynamo=True, verbose=False,
                          external_data=False)  # one self-contained file (< 2 GB)


def _run_onnx(path: Path) -> Runner:
    require_packages("onnxruntime")
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heatmaps, offsets = session.run(["heatmaps", "offsets"], {"image": x})
        return heatmaps, offsets

    return run


@dataclass(frozen=True)
class Format:
    """An export format: its file name, writer and loader (for the check and for tests)."""

    filename: str
    export: Callable[[nn.Module, Path, torch.Tensor], None]
    load: Callable[[Path], Runner]


FORMATS: dict[str, Format] = {
    "torchscript": Format("model.pt", _export_torchscript, _run_torchscript),
    "onnx": Format("model.onnx", _export_onnx, _run_onnx),
}


def load_exported(path: str | os.PathLike) -> Runner:
    """An exported model as `f(x float32 (B, 3, H, W)) -> (heatmaps, offsets)` numpy arrays.

    Raises:
        PoselabError: a file name that no format writes.
    """
    path = Path(path)
    for fmt in FORMATS.values():
        if path.name == fmt.filename:
            return fmt.load(path)
    raise PoselabError(f"{path}: not an exported model "
                       f"({', '.join(f.filename for f in FORMATS.values())})")


# ----------------------------------------------------------------------------- API
def preprocessing_spec(info: dict, run: Path, epoch: int, fmt: str,
                       precision: str = "fp32", check: dict | None = None) -> dict:
    """The JSON recipe around the exported network: resize, normalization, padding, decoding;
    the precision it computes in and what its check measured."""
    from poselab import __version__
    from poselab.pose.predict import run_input_scale

    codec = info["codec"]
    return {
        "input": "RGB uint8 frame (H, W, 3) -> resize (resize) -> float32 / 255 -> "
                 "(x - mean) / std per channel -> NCHW -> zero-pad bottom/right to a multiple "
                 "of 32 (pad_multiple)",
        "input_scale": run_input_scale(info),
        "resize": "when input_scale != 1: resize the frame to H' = round(H * input_scale), "
                  "W' = round(W * input_scale) with area interpolation when shrinking "
                  "(OpenCV INTER_AREA), bilinear when enlarging; when input_scale == 1: "
                  "H' = H, W' = W, no resize",
        "to_frame_pixels": "decoded (x, y) are in resized-frame pixels; frame pixels are "
                           "x = (x + 0.5) * W / W' - 0.5, y = (y + 0.5) * H / H' - 0.5 (pixel "
                           "centers at integers, the resize maps pixel edges to edges)",
        "mean": [float(v) for v in info.get("mean", info["model"]["mean"])],
        "std": [float(v) for v in info.get("std", info["model"]["std"])],
        "pad_multiple": PAD_MULTIPLE,
        "input_name": "image",
        "output_names": ["heatmaps", "offsets"],
        "outputs": "heatmaps (B, K, H/stride, W/stride) logits; offsets (B, 2K, H/stride, "
                   "W/stride), channel 2k = dx and 2k + 1 = dy of keypoint k, in units of "
                   "locref_std",
        "stride": int(codec["stride"]),
        "locref_std": float(codec["locref_std"]),
        "cell_center": "j*stride + (stride-1)/2 (x for column j, y for row i)",
        "decode": "per keypoint k: (i, j) = argmax of heatmaps[k]; x = j*stride + (stride-1)/2 "
                  "+ offsets[2k, i, j]*locref_std; y = i*stride + (stride-1)/2 + "
                  "offsets[2k+1, i, j]*locref_std; likelihood = sigmoid(heatmaps[k, i, j]); "
                  "coordinates are resized-frame pixels (padding is bottom/right only), pixel "
                  "centers at integers; map them back with to_frame_pixels",
        "bodyparts": list(info["bodyparts"]),
        "skeleton": [list(p) for p in info.get("skeleton", [])],
        "pcutoff": float(info.get("pcutoff", 0.6)),
        "scorer": info.get("scorer"),
        "run": run.resolve().name,
        "epoch": epoch,
        "format": fmt,
        "precision": precision,
        "precision_note": "the network computes in this precision behind float32 input and "
                          "outputs; `poselab analyze --precision` of the same value matches it",
        "check": check or {},
        "poselab_version": __version__,
    }


def _check(run_export: Runner, model: nn.Module, path: Path, precision: str = "fp32",
           fp32: nn.Module | None = None) -> dict:
    """Raise unless the export reproduces `model` (PyTorch, in the export's precision) on
    CHECK_SIZES (a wrong dynamic shape or a traced-in constant shows up as a size mismatch
    or a large difference). Returns what it measured: the largest differences from `model`
    and, for a half-precision export, from the fp32 network `fp32`."""
    gen = torch.Generator().manual_seed(0)
    worst = {"heatmaps": 0.0, "offsets": 0.0}
    from_fp32 = dict(worst)
    for batch, (h, w) in zip((1, 2), CHECK_SIZES, strict=True):
        x = torch.randn(batch, 3, h, w, generator=gen)
        with torch.no_grad():
            expected = model(x)
            full = fp32(x) if fp32 is not None else expected
        got = run_export(x.numpy())
        for name, e, g, f in zip(("heatmaps", "offsets"), expected, got, full, strict=True):
            e, f = e.float().numpy(), f.float().numpy()
            tol = CHECK_TOLERANCE.get(precision)
            atol = CHECK_ATOL if tol is None else tol * max(1.0, float(np.abs(e).max()))
            if g.shape != e.shape or not np.allclose(g, e, atol=atol, rtol=0):
                diff = np.abs(g - e).max() if g.shape == e.shape else f"shape {g.shape}"
                raise PoselabError(f"{path}: export disagrees with PyTorch ({precision}) on "
                                   f"{name} for a {h}x{w} input ({diff} vs {e.shape}); not kept")
            worst[name] = max(worst[name], float(np.abs(g - e).max()))
            from_fp32[name] = max(from_fp32[name], float(np.abs(g - f).max()))
    return {"against": f"PyTorch computing in {precision}", "input_sizes": [list(s) for s in
            CHECK_SIZES], "max_abs_diff": worst, "max_abs_diff_from_fp32": from_fp32}


def export_dtype(precision: str, fmt: str) -> torch.dtype | None:
    """The dtype an export computes in (None: fp32). auto is fp32: the device that will run
    the export is not known here."""
    from poselab.pose.predict import check_precision

    check_precision(precision)
    if precision == "bf16" and fmt == "onnx":
        raise PoselabError("--precision bf16: ONNX Runtime has no bfloat16 convolutions; "
                           "export bf16 as --format torchscript, or ONNX in fp16 or fp32")
    return _DTYPES.get(precision)


def export_model(
    run: str | os.PathLike,
    fmt: str = "torchscript",
    dest: str | os.PathLike | None = None,
    which: str = "auto",
    precision: str = "fp32",
    echo: Callable[[str], None] | None = None,
) -> list[Path]:
    """Export a run's network and its pre/post-processing recipe.

    Args:
        run: the run dir (models/<run>).
        fmt: "torchscript" (model.pt) or "onnx" (model.onnx, opset 18; needs the onnx,
            onnxscript and onnxruntime packages).
        dest: folder that receives export/ (default: the run dir).
        which: checkpoint "auto" (best on validation, else the final one), "best" or "last".
        precision: fp32 (default), fp16, bf16 (TorchScript only) or auto (= fp32); see the
            module docstring.
        echo: receives progress lines (the step, and every ~30 s "still running" during
            the export and its check); None is silent.

    Returns:
        [model file, preprocessing.json], both in <dest or run>/export/.

    Raises:
        PoselabError: not a run dir, an unknown format or checkpoint, a missing optional
            package, or an export that does not reproduce the PyTorch outputs.
    """
    from poselab.pose.predict import load_run

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise PoselabError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if which not in ("auto", "best", "last"):
        raise PoselabError(f"--which {which!r}: choose one of auto, best, last")
    run = Path(run)
    dtype = export_dtype(precision, fmt)
    if fmt == "onnx":
        require_packages("onnx", "onnxscript", "onnxruntime")  # before the (slower) model load
    say = echo or (lambda line: None)
    model, info, epoch = load_run(run, which, "cpu")
    say(f"export: {run.name}, {info['checkpoint']['file']} (epoch {epoch + 1}), "
        f"{fmt}, {precision_name(dtype)}")
    net = PaddedNetwork(model.fuse_for_inference()).eval()
    fp32 = None
    if dtype is not None:
        fp32, net = net, CastNetwork(copy.deepcopy(net), dtype).eval()
    out = Path(dest if dest is not None else run) / "export"
    for folder in (out.parent, out):
        if folder.exists() and not folder.is_dir():
            raise PoselabError(f"{folder}: exists and is not a folder")
    created = _missing_folders(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PoselabError(f"{out}: cannot create the folder ({exc.strerror})") from None
    spec = FORMATS[fmt]
    path = out / spec.filename
    example = torch.zeros(1, 3, *CHECK_SIZES[0])

    check: dict = {}

    def write(tmp: Path) -> None:
        with _beat(f"export: writing {spec.filename}", echo):
            spec.export(net, tmp, example)
        say(f"export: checking {spec.filename} against PyTorch on {len(CHECK_SIZES)} "
            "input sizes")
        with _beat(f"export: checking {spec.filename}", echo):
            check.update(_check(spec.load(tmp), net, path, precision_name(dtype), fp32))

    try:
        atomic_write(path, write)
    except BaseException:
        for folder in created:  # only what this call made, and only if still empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    recipe = preprocessing_spec(info, run, epoch, fmt, precision_name(dtype), check)
    json_path = atomic_write_text(out / "preprocessing.json", json.dumps(recipe, indent=2) + "\n")
    return [path, json_path]


def _beat(what: str, echo: Callable[[str], None] | None):
    """A "still running" line every ~30 s through `echo` (nothing without one)."""
    from poselab.progress import heartbeat

    return heartbeat(what, echo) if echo is not None else contextlib.nullcontext()


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and its missing parents, deepest first (what mkdir(parents=True) creates)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
