"""Where the network runs: PyTorch fp32 or bf16, TorchScript, or ONNX Runtime.

Each runtime replaces only the network inside a `Predictor` (`predictor.model`, a callable
from the padded normalized batch (B, 3, H, W) to (heatmaps, offsets), and the autocast
`predictor.dtype`), so resizing, normalization, decoding and the mapping back to frame pixels
stay the ones evaluation and `analyze` use.

  torch        eager PyTorch, fp32 (batch norms fused, channels_last), as `analyze` on CPUs
               without fast bf16
  torch-bf16   the same under bf16 autocast (fast on CPUs with AVX512-BF16/AMX and on GPUs;
               coordinates move by about a tenth of a pixel)
  torchscript  the network traced and frozen (constants folded), no Python per layer
  onnx         ONNX Runtime on the CPU, from poselab's checked ONNX export (cached in
               <run>/.live-cache/ so only the first start pays for the export)

LivePredictor.init times each candidate, with 1 thread and with one per core, on a real frame
of the source's size and keeps the lowest 90th percentile; compiled runtimes are checked
against eager fp32 first and left out if they differ.

Adding a runtime: write `_build_<name>(model, example, cache, threads) -> (network, dtype)`, add it
to RUNTIMES (and to `candidates` if auto should try it).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from poselab.errors import PoselabError

Network = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
CHECK_ATOL = 1e-3  # compiled vs eager heatmap logits (fp32, fused both: float rounding only)


def _build_torch(model, example, cache, threads) -> tuple[Network, torch.dtype | None]:
    return model, None


def _build_torch_bf16(model, example, cache, threads) -> tuple[Network, torch.dtype | None]:
    return model, torch.bfloat16


def _build_torchscript(model, example, cache, threads) -> tuple[Network, torch.dtype | None]:
    from poselab.analysis.export import PaddedNetwork

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes
        traced = torch.jit.trace(PaddedNetwork(model).eval(), example, check_trace=False)
        return torch.jit.freeze(traced), None


def _build_onnx(model, example, cache, threads) -> tuple[Network, torch.dtype | None]:
    from poselab.analysis.export import FORMATS, PaddedNetwork, require_packages

    require_packages("onnx", "onnxscript", "onnxruntime")
    import onnxruntime as ort

    if example.device.type != "cpu":
        raise PoselabError("the onnx runtime runs on the CPU here; use --device cpu")
    path = cache / "model.onnx"
    if not path.is_file():
        from poselab.io.fileio import atomic_write

        print(f"live: exporting the network to ONNX once ({path})", file=sys.stderr)
        # torch.export refuses dynamic shapes with channels_last weights: export a copy.
        net = PaddedNetwork(copy.deepcopy(model).to(memory_format=torch.contiguous_format)).eval()
        example = example.clone().contiguous()  # a normal tensor, not an inference one
        atomic_write(path, lambda tmp: FORMATS["onnx"].export(net, tmp, example))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps, offsets = session.run(["heatmaps", "offsets"],
                                        {"image": np.ascontiguousarray(x.float().numpy())})
        return torch.from_numpy(heatmaps), torch.from_numpy(offsets)

    return run, None


RUNTIMES: dict[str, Callable] = {
    "torch": _build_torch,
    "torch-bf16": _build_torch_bf16,
    "torchscript": _build_torchscript,
    "onnx": _build_onnx,
}


def candidates(device: torch.device) -> list[str]:
    """The runtimes `auto` calibrates on this device (bf16 only where it is fast)."""
    from poselab.pose.predict import cpu_has_fast_bf16

    names = ["torch"]
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
        names.append("torch-bf16")
    names.append("torchscript")
    if device.type == "cpu" and all(importlib.util.find_spec(m)
                                    for m in ("onnx", "onnxscript", "onnxruntime")):
        names.append("onnx")
    return names


def cache_dir(predictor) -> Path:
    """<run>/.live-cache/<key>/ for this checkpoint and these library versions (a temporary
    folder when the run dir is read-only)."""
    import poselab

    stamp = [str(predictor.epoch), poselab.__version__, torch.__version__]
    for p in sorted(predictor.run.glob("*.pt")):
        st = p.stat()
        stamp.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:16]
    folder = predictor.run / ".live-cache" / key
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError:
        return Path(tempfile.mkdtemp(prefix="poselab-live-"))


def thread_candidates() -> list[int]:
    """Intra-op thread counts to calibrate: 1, and one per CPU this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return sorted({1, cores})


def build(name: str, predictor, example: torch.Tensor, eager: Network, threads: int = 1,
          reuse: tuple[Network, torch.dtype | None] | None = None
          ) -> tuple[Network, torch.dtype | None]:
    """The network and autocast dtype of runtime `name`, checked against `eager` on
    `example` (compiled fp32 runtimes only).

    Args:
        threads: intra-op threads (ONNX Runtime sets them per session; torch per process).
        reuse: the same runtime built already for another thread count (only ONNX Runtime
            needs a new session for it).

    Raises:
        PoselabError: an unknown runtime, a missing package, or a compiled network that
            disagrees with eager PyTorch.
    """
    if name not in RUNTIMES:
        raise PoselabError(f"--runtime {name}: choose one of auto, {', '.join(RUNTIMES)}")
    if reuse is not None and name != "onnx":
        return reuse
    cache = cache_dir(predictor) if name == "onnx" else None
    network, dtype = RUNTIMES[name](eager, example, cache, threads)
    if name in ("torchscript", "onnx"):
        with torch.inference_mode():
            want = eager(example)[0].float()
            got = network(example)[0].float()
        diff = float((got - want).abs().max()) if got.shape == want.shape else float("inf")
        if not diff <= CHECK_ATOL:
            raise PoselabError(f"runtime {name} disagrees with PyTorch ({diff:.2g}); not used")
    return network, dtype


def time_predict(predict: Callable[[], object], seconds: float = 1.5, repeats: int = 15,
                 warmup: int = 3) -> tuple[float, float]:
    """(median, 90th percentile) milliseconds of `predict()` after `warmup` calls: `repeats`
    timed calls, or fewer (at least 5) when they would take longer than `seconds`."""
    for _ in range(warmup):
        predict()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
        t = time.perf_counter()
        predict()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), float(np.percentile(times, 90))
