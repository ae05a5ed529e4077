"""Evaluate a pose model on its train/validation/test splits: errors, tables, images.

Training calls `evaluate_split` after epochs and `poselab evaluate RUN` calls it afterwards:
one code path, so in-training and post-hoc figures agree (DeepLabCut's disagree). Images go
through `PoseDataset` in eval mode, the same preprocessing video analysis uses. With an
input_scale, predictions and ground truth are mapped back to frame pixels before any metric,
so errors are in original image pixels, as the labels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.pose.data import PoseDataset, pad_collate, read_split, to_frame_pixels
from poselab.pose.engine import evaluate as run_eval
from poselab.pose.engine import resolve_device
from poselab.pose.ensemble import combine_arrays, ensemble_members, is_ensemble
from poselab.pose.flip import flip_average
from poselab.pose.heatmaps import Codec, decode
from poselab.pose.metrics import format_metrics, keypoint_metrics
from poselab.pose.predict import DEFAULT_PRECISION


def eval_loader(frames, indices, codec, mean, std, batch_size: int = 4,
                input_scale: float = 1.0) -> DataLoader:
    """Full frames resized by input_scale, no augmentation, padded to a multiple of 32 (as
    video analysis)."""
    dataset = PoseDataset(frames, indices, None, mean, std, augment=None, train=False,
                          input_scale=input_scale)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=pad_collate)


def predict_loader(model, loader, codec: Codec, device, dtype,
                   flip_perm: list[int] | None = None) -> dict[str, np.ndarray]:
    """xy (N, K, 2), likelihood (N, K), ground truth (N, K, 2) and dataset index (N,); xy and
    ground truth in frame pixels. With `flip_perm`, maps are averaged with the mirror's."""

    def metric_fn(m, batch):
        image = batch["image"].contiguous(memory_format=torch.channels_last)
        if flip_perm is not None:
            heatmaps, offsets = flip_average(m, image, flip_perm)
        else:
            heatmaps, offsets = m(image)
        xy, likelihood = decode(heatmaps.float(), offsets.float(), codec)
        return {"xy": xy, "likelihood": likelihood, "gt": batch["keypoints"],
                "index": batch["index"], "frame_hw": batch["frame_hw"],
                "absent": batch["absent"]}

    out = run_eval(model, loader, metric_fn, device, autocast_dtype=dtype, keep=True,
                   progress=False)["values"]
    out = {k: v.numpy() if k in ("index", "frame_hw", "absent") else v.float().numpy()
           for k, v in out.items()}
    scale = getattr(loader.dataset, "input_scale", 1.0)
    frame_hw = out.pop("frame_hw")
    for key in ("xy", "gt"):
        out[key] = _rows_to_frame_pixels(out[key], frame_hw, scale)
    return out


def _rows_to_frame_pixels(xy: np.ndarray, frame_hw: np.ndarray, scale: float) -> np.ndarray:
    """Per-frame `to_frame_pixels` of (N, K, 2) network coordinates; frames may differ in size."""
    if scale == 1.0 or len(xy) == 0:
        return xy
    return np.stack([to_frame_pixels(v, (int(h), int(w)), scale)
                     for v, (h, w) in zip(xy, frame_hw, strict=True)])


def evaluate_split(model, loader, codec, device, dtype, pcutoff: float, bodyparts: list[str],
                   flip_perm: list[int] | None = None, calibration=None, radius: float = 5.0):
    """(metrics dict, predictions dict) of one split.

    With `calibration` (a calibration.Calibration), likelihoods are the calibrated ones (as
    analysis writes them); pred["raw_likelihood"] keeps the model's own, and the metrics'
    "calibration_raw" says how calibrated those were.
    """
    pred = predict_loader(model, loader, codec, device, dtype, flip_perm)
    pred["raw_likelihood"] = pred["likelihood"]
    if calibration is not None:
        pred["likelihood"] = calibration.apply(pred["likelihood"])
        radius = calibration.radius
    metrics = keypoint_metrics(pred["xy"], pred["likelihood"], pred["gt"], pcutoff, bodyparts,
                               absent=pred["absent"], radius=radius)
    if calibration is not None:
        metrics["calibration_raw"] = keypoint_metrics(
            pred["xy"], pred["raw_likelihood"], pred["gt"], pcutoff, bodyparts,
            absent=pred["absent"], radius=radius)["calibration"]
        metrics["calibration_map"] = f"{calibration.method}, fitted on {calibration.source}"
    return metrics, pred


def _project_of(run: Path, info: dict):
    """The project that contains the run (models/<run> is two levels below config.yaml).

    The path recorded at training time is only a fallback: a copied or moved project must be
    graded against its own labels, not the original's. Returns (project, note or None).
    """
    from poselab.io.project import open_project

    recorded = Path(str(info.get("project_config", "")))
    # the folder above models/ (an ensemble member is one level deeper)
    own = next((d.parent / "config.yaml" for d in run.resolve().parents if d.name == "models"),
               run.resolve().parents[1] / "config.yaml")
    if own.is_file():
        differs = recorded.is_file() and recorded.resolve() != own.resolve()
        note = (f"trained in {recorded.parent}; evaluated against the labels of {own.parent}, "
                "the project that holds the run") if differs else None
        return open_project(own), note
    if recorded.is_file():
        return open_project(recorded), (f"the run is not inside a project; using the one it "
                                        f"was trained in, {recorded.parent}")
    raise PoselabError(f"{run}: no project found (neither {own} nor {recorded} exists)")


def evaluate(
    run: str | os.PathLike, plot: bool = False, device: str = "auto", which: str = "auto",
    precision: str = DEFAULT_PRECISION, test_flip: bool | None = None,
) -> dict:
    """Evaluate a trained run on its own train, validation and test splits.

    The model is the one the run's selection rule gives (see run_dir.selected_checkpoint):
    best on validation, or the final checkpoint when there is no validation split; the
    result says which (`selection`). Writes `evaluation/metrics.json` (and with `plot`,
    `evaluation/<split>/*.png` images of ground truth (filled) vs prediction (ring) and
    `evaluation/calibration.png`). `precision` (fp32, bf16, fp16 or auto, as `poselab
    analyze --precision`) is what the model computes in; fp32 gives the same figures on
    every machine. The result records it (`precision`: the one used). `test_flip` False
    grades the model without averaging with the mirrored image (as `analyze
    --no-test-flip`); None does what the run was trained for (`test_flip` in the result).

    Returns:
        {"run", "epoch", "checkpoint", "selection", "notes", "precision", "train": metrics,
        "test":
        metrics, and "val": metrics when the run has a validation split}; each metrics dict
        has mean_px_error, rmse, their pcutoff variants, pck5, missing predictions,
        per_bodypart and calibration.

    Raises:
        PoselabError: not a run, an unknown `which`, no project or a missing checkpoint.
    """
    from poselab.io.labels import load_labeled_frames
    from poselab.pose.calibration import load_calibration
    from poselab.pose.predict import (
        autocast_dtype,
        check_precision,
        load_run,
        precision_name,
        run_calibration_radius,
        run_flip_permutation,
        run_input_scale,
    )

    run = Path(run)
    check_precision(precision)
    dev = resolve_device(device)
    members = ensemble_members(run) if is_ensemble(run) else [run]
    loaded = [load_run(m, which, dev) for m in members]
    model, info, epoch = loaded[0]
    model = model.to(memory_format=torch.channels_last)
    project, note = _project_of(members[0], info)
    frames = load_labeled_frames(project)
    split = read_split(members[0] / "split.json", frames)
    calibration = load_calibration(members[0])
    codec = Codec(**info["codec"])
    dtype = autocast_dtype(precision, dev)  # not the training precision: see the docstring
    pcutoff = float(info.get("pcutoff", project.pcutoff))

    def flips(run_info: dict) -> list[int] | None:
        return run_flip_permutation(run_info) if test_flip is not False else None

    result: dict = {"run": str(run), "epoch": epoch, "checkpoint": info["checkpoint"]["file"],
                    "selection": info["checkpoint"]["rule"], "notes": [note] if note else [],
                    "precision": precision_name(dtype),
                    "test_flip": flips(info) is not None}
    if len(members) > 1:
        result["ensemble"] = len(members)
        result["selection"] = f"ensemble of {len(members)} members, each: {result['selection']}"
    out_dir = run / "evaluation"
    out_dir.mkdir(exist_ok=True)
    parts = [("train", split.train), ("val", split.val), ("test", split.test)]
    for name, idx in parts:
        if not idx:
            continue
        loader = eval_loader(frames, idx, codec, model.mean, model.std,
                             input_scale=run_input_scale(info))
        metrics, pred = evaluate_split(model, loader, codec, dev, dtype, pcutoff,
                                       info["bodyparts"], flip_perm=flips(info),
                                       calibration=calibration,
                                       radius=run_calibration_radius(info))
        if len(members) > 1:
            metrics, pred = _ensemble_split(members, loaded, loader, pred, codec, dev, dtype,
                                            pcutoff, info, flips)
        result[name] = metrics
        if plot:
            from poselab.viz.plots import draw_comparisons

            draw_comparisons(frames, pred, info, out_dir / name)
    if plot:
        from poselab.viz.plots import plot_calibration

        plot_calibration(result["test"]["calibration"], out_dir / "calibration.png")
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=2))
    return result


def _ensemble_split(members, loaded, loader, first: dict, codec, dev, dtype, pcutoff: float,
                    info: dict, flips) -> tuple[dict, dict]:
    """Metrics of an ensemble on one split: every member's (calibrated) predictions combined
    by ensemble.combine_arrays, as analysis combines them."""
    from poselab.pose.calibration import load_calibration
    from poselab.pose.predict import run_calibration_radius

    xys, liks = [first["xy"]], [first["likelihood"]]
    for member, (model, member_info, _) in zip(members[1:], loaded[1:], strict=True):
        model = model.to(memory_format=torch.channels_last)
        _, pred = evaluate_split(model, loader, codec, dev, dtype, pcutoff,
                                 member_info["bodyparts"],
                                 flip_perm=flips(member_info),
                                 calibration=load_calibration(member))
        xys.append(pred["xy"])
        liks.append(pred["likelihood"])
    xy, lik, var = combine_arrays(np.stack(xys), np.stack(liks))
    pred = {**first, "xy": xy, "likelihood": lik, "variance": var}
    metrics = keypoint_metrics(xy, lik, first["gt"], pcutoff, info["bodyparts"],
                               absent=first["absent"], radius=run_calibration_radius(info))
    return metrics, pred


def format_evaluation(result: dict) -> str:
    lines = [f"run {result['run']}: {result.get('checkpoint', 'checkpoint')} of epoch "
             f"{result['epoch'] + 1}, {result.get('selection', '')}"
             + (f"; computed in {result['precision']}" if result.get("precision") else "")]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    for name in ("train", "val", "test"):
        if name in result:
            lines.append(format_metrics("validation" if name == "val" else name, result[name]))
    test = result.get("test") or {}
    if test.get("kept_pcutoff", 1.0) < 0.2:
        lines.append(f"warning: only {test['kept_pcutoff']:.0%} of the test keypoints are "
                     f"predicted with likelihood >= pcutoff {test['pcutoff']:.2f}: the model "
                     "has not learned to find them. See the learning curve "
                     "(learning-curve.png); train longer, or check crops and labels.")
    return "\n".join(lines)
