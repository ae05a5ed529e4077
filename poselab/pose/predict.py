"""Load a trained run and predict keypoints on frames.

`load_run(run)` rebuilds the model from the run dir alone (run.yaml + a checkpoint), so a
run dir copied to another machine is all that inference needs. `Predictor` wraps it for
inference: frames in (BGR, as OpenCV decodes them), keypoints in frame pixels out, through
the SAME preprocessing (data.resize_frames + data.preprocess_batch) and decoding
(heatmaps.decode, then data.to_frame_pixels) as evaluation.
Videos are analyzed by poselab.analysis.analyze on top of `Predictor`.

Extending: a new output (e.g. raw heatmaps for a tracker) is a method beside
`predict_rgb` that reuses `_forward`; keep evaluation and prediction on one code path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch
import yaml

from poselab.errors import PoselabError


def read_run_info(run: str | os.PathLike) -> dict:
    """run.yaml of a run dir, with a clear error for a folder that is not a run.

    For an ensemble (pose/ensemble.py), the first member's, with "ensemble": [member dirs].
    """
    from poselab.pose.ensemble import ensemble_members, is_ensemble

    if is_ensemble(run):
        members = ensemble_members(run)
        return {**read_run_info(members[0]), "ensemble": [str(m) for m in members]}
    path = Path(run) / "run.yaml"
    if not path.is_file():
        raise PoselabError(f"{run}: not a poselab run (no run.yaml); runs live in models/<run>/")
    try:
        info = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PoselabError(f"{path}: malformed YAML ({exc})") from exc
    if not isinstance(info, dict) or "model" not in info or "bodyparts" not in info:
        raise PoselabError(f"{path}: incomplete run description (needs model and bodyparts)")
    return info


def load_run(run: str | os.PathLike, which: str = "auto", device: torch.device | str = "cpu"):
    """Rebuild a run's model with its trained weights, in eval mode.

    Args:
        run: the run dir.
        which: "auto" (best on the validation split when the run has one, else the final
            checkpoint), "best" or "last" (see run_dir.selected_checkpoint).

    Returns:
        (model, run info dict, checkpoint epoch). info["checkpoint"] says which file was
        loaded and the rule that chose it.

    Raises:
        PoselabError: not a run, an unknown `which`, a missing or unreadable checkpoint.
    """
    from poselab.pose.engine import load_checkpoint
    from poselab.pose.models.posenet import PoseNet
    from poselab.pose.run_dir import selected_checkpoint

    run = Path(run)
    info = read_run_info(run)
    path, rule = selected_checkpoint(run, which)
    state = load_checkpoint(path, map_location="cpu")
    model = PoseNet.from_config(info["model"])
    model.load_state_dict(state["model"])
    info["checkpoint"] = {"file": path.name, "rule": rule}
    return model.to(device).eval(), info, int(state.get("epoch", -1))


def run_input_scale(info: dict) -> float:
    """A run's TrainConfig.input_scale; runs saved before the option existed used 1."""
    return float((info.get("train") or {}).get("input_scale", 1.0))


def run_flip_permutation(info: dict) -> list[int] | None:
    """The channel permutation for test-time flip averaging, or None when the run does not
    use it (TrainConfig.test_flip off, or a run saved before it existed)."""
    from poselab.pose.flip import flip_permutation

    if not (info.get("train") or {}).get("test_flip") or info.get("flip_pairs") is None:
        return None
    return flip_permutation(info["bodyparts"], info["flip_pairs"])


def run_calibration_radius(info: dict) -> float:
    """r of "within r pixels" in the likelihood's definition (5 px for older runs)."""
    return float((info.get("train") or {}).get("calibration_radius", 5.0))


@cache
def cpu_has_fast_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run at about twice fp32 speed on this CPU."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


# Inference precision (analyze, evaluate, export) unless asked otherwise: fp32, the same
# output on every machine (the choice is measured: benchmarks/README.md, "Inference
# precision").
DEFAULT_PRECISION = "fp32"
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


def check_precision(precision: str) -> str:
    """A precision setting (fp32, bf16, fp16 or auto), or a one-line error."""
    if precision not in PRECISIONS:
        raise PoselabError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def precision_name(dtype: torch.dtype | None) -> str:
    """fp32, bf16 or fp16: what an autocast dtype (None: no autocast) computes in."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting (None = plain fp32): auto is bf16 on GPUs
    that support it (else fp16) and on CPUs with AVX512-BF16 or AMX, else fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise PoselabError("precision fp16 needs CUDA; use bf16 or fp32 on this device")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None


def run_scorer(run: str | os.PathLike, info: dict) -> str:
    """The scorer string of a run's predictions, DeepLabCut-like: poselab_<backbone>_<run>."""
    return f"poselab_{info['model']['backbone_name']}_{Path(run).resolve().name}"


class Predictor:
    """A trained run ready for inference: `predict_frames(BGR frames) -> (xy, likelihood)`.

    Attributes:
        run, info (run.yaml), epoch (of the checkpoint), device, batch_size, precision (as
        asked: fp32, bf16, fp16 or auto), dtype (the autocast dtype that gave on this device,
        None for fp32), bodyparts, scorer, codec, model (eval, channels_last),
        input_scale (frames are resized by it; outputs are frame pixels regardless).
    """

    def __init__(self, model, info: dict, epoch: int, run: str | os.PathLike,
                 device: torch.device, batch_size: int = 8, fuse: bool = True,
                 precision: str = DEFAULT_PRECISION, test_flip: bool | None = None):
        from poselab.pose.calibration import load_calibration
        from poselab.pose.heatmaps import Codec

        if batch_size < 1:
            raise PoselabError(f"batch size must be >= 1, not {batch_size}")
        if fuse:  # load_run's model is our own copy: fusing it leaves no checkpoint changed
            model = model.fuse_for_inference()
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        self.info, self.epoch, self.run = info, epoch, Path(run)
        self.device, self.batch_size = device, batch_size
        # Not the run's training precision: inference gives the same numbers on every
        # machine unless a faster, machine-dependent precision is asked for.
        self.precision = check_precision(precision)
        self.dtype = autocast_dtype(precision, device)
        self.bodyparts: list[str] = list(info["bodyparts"])
        self.scorer = run_scorer(run, info)
        self.codec = Codec(**info["codec"])
        self.mean, self.std = model.mean, model.std
        self.input_scale = run_input_scale(info)
        # Test-time flip averaging, when trained so; test_flip=False skips it (half the work).
        self.flip_perm = run_flip_permutation(info) if test_flip is not False else None
        self.calibration = load_calibration(run)  # likelihood -> probability, when fitted

    @classmethod
    def from_dir(cls, run: str | os.PathLike, device: str = "auto", batch_size: int = 8,
                 which: str = "auto", fuse: bool = True,
                 precision: str = DEFAULT_PRECISION,
                 test_flip: bool | None = None) -> Predictor:
        """Rebuild a run's model from its dir alone.

        Args:
            run: the run dir (models/<run>).
            device: "auto", "cpu", "cuda", "cuda:N" or "mps".
            batch_size: frames per forward pass.
            which: checkpoint "auto", "best" or "last" (see `load_run`).
            fuse: fold batch norms into convolutions (outputs agree within about 1e-4).
            precision: fp32 (default: the same output on every machine), bf16, fp16 (CUDA)
                or auto (bf16/fp16 where the device runs it fast, else fp32).
            test_flip: None (default) averages with the mirrored frame when the run was
                trained to (TrainConfig.test_flip); False never does: about twice as fast,
                a little less accurate.

        Raises:
            PoselabError: not a run dir, an unavailable device, an unknown precision.
        """
        from poselab.pose.engine import resolve_device
        from poselab.pose.ensemble import ensemble_members, is_ensemble

        check_precision(precision)
        if is_ensemble(run):  # the same interface, N models inside
            members = [Predictor.from_dir(m, device, batch_size, which, fuse, precision,
                                          test_flip) for m in ensemble_members(run)]
            return EnsemblePredictor(members, run)
        dev = resolve_device(device)
        model, info, epoch = load_run(run, which, dev)
        return cls(model, info, epoch, run, dev, batch_size, fuse, precision, test_flip)

    def predict_frames(
        self, frames_bgr: np.ndarray | Sequence[np.ndarray], offset: tuple[float, float] = (0, 0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of BGR uint8 frames (B, H, W, 3), as OpenCV decodes them.

        Args:
            frames_bgr: an array or a list of equally sized frames.
            offset: (x, y) added to every coordinate, e.g. a crop's top-left corner.

        Returns:
            xy float32 (B, K, 2) in frame pixels, likelihood float32 (B, K).
        """
        frames = np.asarray(frames_bgr)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames (B, H, W, 3), got {frames.dtype} "
                             f"{frames.shape}")
        return self.predict_rgb(np.ascontiguousarray(frames[..., ::-1]), offset)

    def predict_rgb(
        self, frames_rgb: np.ndarray, offset: tuple[float, float] = (0, 0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """`predict_frames` for RGB uint8 frames (B, H, W, 3), run in `batch_size` chunks."""
        from poselab.pose.data import resize_frames, to_frame_pixels

        xys, liks = [], []
        for start in range(0, len(frames_rgb), self.batch_size):
            chunk = frames_rgb[start:start + self.batch_size]
            # Resized on the host: the same OpenCV pixels as evaluation, fewer bytes to upload.
            xy, lik = self._forward(torch.from_numpy(resize_frames(chunk, self.input_scale)))
            xys.append(to_frame_pixels(xy, chunk.shape[1:3], self.input_scale))
            liks.append(lik)
        k = len(self.bodyparts)
        xy = np.concatenate(xys) if xys else np.zeros((0, k, 2), np.float32)
        lik = np.concatenate(liks) if liks else np.zeros((0, k), np.float32)
        if self.calibration is not None:
            lik = self.calibration.apply(lik)
        if offset[0] or offset[1]:
            xy += np.asarray(offset, np.float32)
        return xy, lik

    @torch.inference_mode()
    def _forward(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from poselab.pose.data import preprocess_batch
        from poselab.pose.flip import flip_average
        from poselab.pose.heatmaps import decode

        # Normalizing on the device moves uint8 (4x fewer bytes than float) to an accelerator.
        x = preprocess_batch(frames.to(self.device, non_blocking=True), self.mean, self.std)
        x = x.contiguous(memory_format=torch.channels_last)  # (B, 3, H', W')
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            if self.flip_perm is not None:
                heatmaps, offsets = flip_average(self.model, x, self.flip_perm)
            else:
                heatmaps, offsets = self.model(x)  # (B, K, h, w), (B, 2K, h, w)
        # Padding is bottom/right only, so these are resized-frame pixels (predict_rgb maps
        # them back to frame pixels).
        xy, likelihood = decode(heatmaps.float(), offsets.float(), self.codec)
        return xy.cpu().numpy(), likelihood.cpu().numpy()


class EnsemblePredictor:
    """An ensemble run (pose/ensemble.py) behind Predictor's interface.

    `predict_rgb` returns the combined keypoints and likelihoods; `predict_rgb_with_variance`
    also returns the members' spread, (B, K, 2) px^2, which analysis writes beside the
    predictions. Attributes mirror Predictor's (taken from the first member); `members`
    holds the members' Predictors.
    """

    def __init__(self, members: list[Predictor], run: str | os.PathLike) -> None:
        first = members[0]
        self.members, self.run = members, Path(run)
        self.info = {**first.info, "ensemble": [str(m.run) for m in members]}
        self.epoch, self.device, self.batch_size = first.epoch, first.device, first.batch_size
        self.dtype, self.bodyparts = first.dtype, first.bodyparts
        self.precision = first.precision
        self.scorer = run_scorer(run, first.info)
        self.input_scale, self.codec = first.input_scale, first.codec

    def predict_frames(self, frames_bgr, offset: tuple[float, float] = (0, 0)):
        frames = np.asarray(frames_bgr)
        return self.predict_rgb(np.ascontiguousarray(frames[..., ::-1]), offset)

    def predict_rgb(self, frames_rgb: np.ndarray, offset: tuple[float, float] = (0, 0)):
        xy, lik, _ = self.predict_rgb_with_variance(frames_rgb, offset)
        return xy, lik

    def predict_rgb_with_variance(self, frames_rgb: np.ndarray,
                                  offset: tuple[float, float] = (0, 0)):
        from poselab.pose.ensemble import combine_arrays

        outs = [m.predict_rgb(frames_rgb, offset) for m in self.members]
        xy, lik, var = combine_arrays(np.stack([o[0] for o in outs]),
                                      np.stack([o[1] for o in outs]))
        return xy.astype(np.float32), lik.astype(np.float32), var.astype(np.float32)
