"""input_scale end to end: a tiny run trained at 0.5 predicts, evaluates and analyzes in
ORIGINAL frame pixels; runs saved before the option load as 1. One tiny model trained once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import poselab.pose.training as train_module
from poselab.analysis.analyze import analyze_video
from poselab.demo import make_synthetic_project
from poselab.io.labels import load_labeled_frames
from poselab.io.predictions import predictions_arrays
from poselab.io.project import open_project
from poselab.io.video import VideoReader
from poselab.pose.data import preprocess_batch, read_image, read_split
from poselab.pose.evaluation import eval_loader, evaluate, predict_loader
from poselab.pose.heatmaps import Codec, decode
from poselab.pose.metrics import keypoint_metrics
from poselab.pose.predict import Predictor, load_run
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train


@pytest.fixture(scope="module")
def half(tmp_path_factory) -> dict:
    """A resnet18 (random init) trained 2 epochs at input_scale 0.5 on a 96x64 video; records
    the input_scale of every PoseDataset that training builds."""
    root = tmp_path_factory.mktemp("scale")
    config, video, _ = make_synthetic_project(root, "sc", n_frames=24, seed=4, label_every=2)
    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=2, batch_size=4, workers=0,
                      head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                      input_scale=0.5, augment={"crop_size": None, "affine_prob": 0.0})
    seen: list[float] = []
    real = train_module.PoseDataset

    def recording(*args, **kwargs):
        dataset = real(*args, **kwargs)
        seen.append(dataset.input_scale)
        return dataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "PoseDataset", recording)
        run = train(config, cfg, name="half")
    return {"root": root, "config": config, "video": video, "run": run, "seen": seen}


def _video_frames(video: Path, numbers: list[int]) -> np.ndarray:
    with VideoReader(video) as reader:
        return np.stack([f for _, f in reader.frames(numbers)])  # BGR (N, H, W, 3)


def test_predictor_resizes_and_maps_back_to_frame_pixels(half: dict):
    predictor = Predictor.from_dir(half["run"], device="cpu", batch_size=3, fuse=False)
    assert predictor.input_scale == 0.5
    frames = _video_frames(half["video"], list(range(7)))
    xy, lik = predictor.predict_frames(frames)
    # By hand: INTER_AREA to 48x32, the network, decode, then x = (x' + 0.5) * 2 - 0.5.
    model, info, _ = load_run(half["run"])
    rgb = np.ascontiguousarray(frames[..., ::-1])
    small = np.stack([cv2.resize(f, (48, 32), interpolation=cv2.INTER_AREA) for f in rgb])
    with torch.no_grad():
        heatmaps, offsets = model(preprocess_batch(torch.from_numpy(small), model.mean,
                                                   model.std))
    net_xy, net_lik = decode(heatmaps, offsets, Codec(**info["codec"]))
    np.testing.assert_allclose(xy, (net_xy.numpy() + 0.5) * 2 - 0.5, atol=1e-4)
    np.testing.assert_allclose(lik, net_lik.numpy(), atol=1e-5)
    # Analysis goes through the Predictor: same rows, and the metadata says so.
    h5 = analyze_video(predictor, half["video"], dest=half["root"] / "out", progress=False)
    table_xy, _, _ = predictions_arrays(pd.read_hdf(h5, "df_with_missing"))
    np.testing.assert_allclose(table_xy[:7], xy, atol=1e-4)
    meta = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())
    assert meta["input_scale"] == 0.5 and (meta["width"], meta["height"]) == (96, 64)


def test_evaluation_errors_are_in_frame_pixels(half: dict):
    result = evaluate(half["run"], device="cpu")
    frames = load_labeled_frames(open_project(half["config"]))
    test_idx = read_split(half["run"] / "split.json", frames).test
    # Independent path: the labeled PNGs through the Predictor, against the raw labels.
    predictor = Predictor.from_dir(half["run"], device="cpu")
    images = np.stack([read_image(frames.paths[i]) for i in test_idx])  # RGB
    xy, lik = predictor.predict_rgb(images)
    ref = keypoint_metrics(xy, lik, frames.keypoints[test_idx], predictor.info["pcutoff"],
                           predictor.bodyparts)
    assert result["test"]["mean_px_error"] == pytest.approx(ref["mean_px_error"], abs=1e-3)
    model, info, _ = load_run(half["run"])
    loader = eval_loader(frames, test_idx, Codec(**info["codec"]), model.mean, model.std,
                         input_scale=0.5)
    assert loader.dataset[0]["image"].shape == (3, 32, 64)  # 32x48, padded to /32
    pred = predict_loader(model, loader, Codec(**info["codec"]), torch.device("cpu"), None)
    np.testing.assert_allclose(pred["gt"], frames.keypoints[test_idx], atol=1e-4)
    np.testing.assert_allclose(pred["xy"], xy, atol=1e-3)


def test_run_saved_before_the_option_loads_as_scale_one(half: dict, tmp_path: Path):
    old = tmp_path / "old"
    shutil.copytree(half["run"], old)
    info = yaml.safe_load((old / "run.yaml").read_text())
    del info["train"]["input_scale"]
    (old / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    predictor = Predictor.from_dir(old, device="cpu", fuse=False)
    assert predictor.input_scale == 1.0
    TrainConfig.from_dict(info["train"], "run.yaml")  # resume reads it this way
    frames = _video_frames(half["video"], [0, 1])
    model = load_run(old)[0]
    with torch.no_grad():  # full resolution, no mapping
        heatmaps, offsets = model(preprocess_batch(
            torch.from_numpy(np.ascontiguousarray(frames[..., ::-1])), model.mean, model.std))
    np.testing.assert_allclose(predictor.predict_frames(frames)[0],
                               decode(heatmaps, offsets, predictor.codec)[0].numpy(), atol=1e-4)


def test_training_builds_its_datasets_at_the_input_scale(half: dict):
    assert half["seen"] and all(s == 0.5 for s in half["seen"]), half["seen"]
