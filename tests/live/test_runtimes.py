"""Runtimes: auto calibrates every candidate and keeps the fastest measured, a compiled
network that disagrees with PyTorch is never used, and ONNX Runtime reuses its cached export."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from poselab.errors import PoselabError
from poselab.live import LivePredictor, runtimes

FRAME = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture
def quick_timing(monkeypatch):
    """Calibration with 3 timed calls per runtime (the choice logic, not the figures)."""
    real = runtimes.time_predict
    monkeypatch.setattr(runtimes, "time_predict",
                        lambda predict, **kw: real(predict, repeats=5, warmup=1))


def test_auto_keeps_the_fastest_candidate(live_run: Path, monkeypatch, capsys, quick_timing):
    monkeypatch.setattr(runtimes, "candidates", lambda device: ["torch", "torchscript"])
    monkeypatch.setattr(runtimes, "thread_candidates", lambda: [1, 2])
    lp = LivePredictor(live_run)  # runtime auto, threads auto
    cal = lp.init(FRAME)
    assert set(cal.ms) == {"torch:1", "torch:2", "torchscript:1", "torchscript:2"}
    assert all(0 < cal.median_ms[k] <= v for k, v in cal.ms.items())
    assert cal.chosen == min(cal.ms, key=cal.ms.get) == f"{cal.runtime}:{cal.threads}"
    assert torch.get_num_threads() == cal.threads  # the choice is applied
    err = capsys.readouterr().err
    assert f"runtime {cal.runtime} with {cal.threads} thread" in err and "others, p90" in err
    xy, _ = lp.predict(FRAME)
    ref, _ = LivePredictor(live_run, runtime="torch", threads=1, verbose=False).predict(FRAME)
    np.testing.assert_allclose(xy, ref, atol=1e-3)


def test_a_compiled_network_that_disagrees_is_left_out(live_run: Path, monkeypatch,
                                                       quick_timing):
    def wrong(model, example, cache, threads):
        return (lambda x: tuple(t + 1 for t in model(x))), None

    monkeypatch.setitem(runtimes.RUNTIMES, "torchscript", wrong)
    monkeypatch.setattr(runtimes, "candidates", lambda device: ["torch", "torchscript"])
    lp = LivePredictor(live_run, threads=1, verbose=False)
    cal = lp.init(FRAME)
    assert cal.chosen == "torch:1" and "torchscript" in cal.failed
    assert "disagrees with PyTorch" in cal.describe()
    with pytest.raises(PoselabError, match="disagrees with PyTorch"):
        LivePredictor(live_run, runtime="torchscript", verbose=False).init(FRAME)


@pytest.mark.slow  # oneDNN's first bf16 calls are slow here
def test_bf16_runtime_is_close_to_fp32(live_run: Path):
    lp = LivePredictor(live_run, runtime="torch-bf16", verbose=False)
    xy, lik = lp.predict(FRAME)
    assert lp.predictor.dtype == torch.bfloat16
    fp32 = LivePredictor(live_run, runtime="torch", threads=1, verbose=False)
    ref_xy, ref_lik = fp32.predict(FRAME)
    np.testing.assert_allclose(lik, ref_lik, atol=0.05)  # bf16 keeps 8 bits of mantissa
    assert np.isfinite(xy).all()


def test_unknown_runtime_is_one_line(live_run: Path):
    with pytest.raises(PoselabError, match="choose one of auto, torch"):
        LivePredictor(live_run, runtime="tensorrt")


@pytest.mark.slow  # the dynamo ONNX export takes 10-20 s on this CPU, once per run
@pytest.mark.skipif(not HAS_ORT, reason="needs onnx, onnxscript and onnxruntime")
def test_onnx_runtime_matches_and_reuses_its_export(live_run: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(live_run, run)
    lp = LivePredictor(run, runtime="onnx", verbose=False)
    xy, lik = lp.predict(FRAME)
    ref_xy, ref_lik = LivePredictor(run, runtime="torch", threads=1, verbose=False).predict(FRAME)
    np.testing.assert_allclose(xy, ref_xy, atol=1e-2)
    np.testing.assert_allclose(lik, ref_lik, atol=1e-4)
    (cached,) = (run / ".live-cache").glob("*/model.onnx")
    stamp = cached.stat().st_mtime_ns
    LivePredictor(run, runtime="onnx", verbose=False).init(FRAME[:32])  # another frame size
    assert cached.stat().st_mtime_ns == stamp  # one export serves every size
