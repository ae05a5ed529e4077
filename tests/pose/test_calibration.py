"""Calibrated likelihoods: the fit recovers a known map; not-visible keypoints train absent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from poselab.errors import PoselabError
from poselab.pose.calibration import Calibration, fit_calibration, load_calibration
from poselab.pose.metrics import auroc, likelihood_calibration


def _sample(n: int, a: float, b: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    raw = rng.beta(2, 1.2, n)  # overconfident-looking raw scores, mostly high
    z = a * np.log(raw / (1 - raw)) + b
    p_true = 1 / (1 + np.exp(-z))
    correct = rng.random(n) < p_true
    return raw, correct, p_true


def test_platt_recovers_a_known_map_and_fixes_calibration():
    raw, correct, p_true = _sample(4000, a=0.6, b=-0.8)
    err = np.where(correct, 1.0, 20.0)
    before = likelihood_calibration(raw, err)["ece"]
    cal = fit_calibration(raw, correct, 5.0, "synthetic", method="platt")
    assert cal.params["a"] == pytest.approx(0.6, abs=0.1)
    assert cal.params["b"] == pytest.approx(-0.8, abs=0.15)
    after = likelihood_calibration(cal.apply(raw), err)["ece"]
    assert before > 0.15 and after < 0.03
    # calibration is monotone: it never changes the ranking, so AUROC is unchanged
    assert auroc(cal.apply(raw), correct) == pytest.approx(auroc(raw, correct))


def test_isotonic_with_many_points_tracks_the_true_probability():
    raw, correct, p_true = _sample(20000, a=1.5, b=0.5, seed=1)
    cal = fit_calibration(raw, correct, 5.0, "synthetic")  # auto: isotonic here
    assert cal.method == "isotonic"
    grid = np.linspace(0.05, 0.95, 19)
    truth = 1 / (1 + np.exp(-(1.5 * np.log(grid / (1 - grid)) + 0.5)))
    assert np.abs(cal.apply(grid) - truth).max() < 0.08
    assert np.isnan(cal.apply(np.array([np.nan, 0.5]))[0])  # NaN stays NaN


def test_round_trip_and_refusals(tmp_path):
    cal = Calibration("platt", 5.0, "val: 10", {"a": 1.2, "b": -0.3})
    (tmp_path / "calibration.json").write_text(json.dumps(cal.to_dict()))
    assert load_calibration(tmp_path) == cal
    assert load_calibration(tmp_path / "none") is None
    with pytest.raises(PoselabError, match="need both kinds"):
        fit_calibration(np.full(20, 0.9), np.ones(20, bool), 5.0, "x")
    (tmp_path / "calibration.json").write_text("{broken")
    with pytest.raises(PoselabError, match="not a readable calibration file"):
        load_calibration(tmp_path)


def test_auroc_by_hand():
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0], bool)) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([1, 0], bool)) == 0.5
    assert np.isnan(auroc(np.array([0.5]), np.array([1], bool)))


def test_not_visible_keypoints_train_as_absent(tmp_path):
    """A keypoint the labeler marked not visible: NaN label, all-zero target, in the loss
    (label_mask 1); a never-labeled one stays out of the loss (label_mask 0)."""
    from poselab.demo import make_synthetic_project
    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project
    from poselab.pose.data import PoseDataset
    from poselab.pose.heatmaps import Codec

    config, _, _ = make_synthetic_project(tmp_path, "nv", n_frames=12, seed=0, label_every=4)
    project = open_project(config)
    frames = load_labeled_frames(project)
    assert frames.absent is None  # no sidecar: as before
    folder = project.labeled_folders()[0]
    first = frames.paths[0].name
    from poselab.io.labels import read_labels, write_labels

    h5 = folder / f"CollectedData_{project.scorer}.h5"
    df = read_labels(h5)
    df.loc[df.index[0], (project.scorer, "snout", "x")] = np.nan
    df.loc[df.index[0], (project.scorer, "snout", "y")] = np.nan
    df.loc[df.index[0], (project.scorer, "tailbase", "x")] = np.nan
    df.loc[df.index[0], (project.scorer, "tailbase", "y")] = np.nan
    write_labels(df, h5)
    (folder / ".poselab-notvisible.json").write_text(json.dumps(
        {"format": "poselab-notvisible/1", "frames": {first: ["snout", "leftear"]}}))
    frames = load_labeled_frames(project)
    k_snout, k_ear, k_tail = (project.bodyparts.index(b) for b in ("snout", "leftear",
                                                                  "tailbase"))
    # leftear is labeled: a stale flag never hides a label; snout is absent
    assert frames.absent[0].tolist() == [k == k_snout for k in range(4)]
    item = PoseDataset(frames, [0], Codec(), (0.5,) * 3, (0.25,) * 3)[0]
    assert item["label_mask"][k_snout] == 1 and item["heatmaps"][k_snout].max() == 0
    assert item["label_mask"][k_tail] == 0  # never labeled: masked
    assert item["label_mask"][k_ear] == 1 and item["heatmaps"][k_ear].max() > 0.99
    assert bool(item["absent"][k_snout]) and not bool(item["absent"][k_tail])
    assert isinstance(item["absent"], torch.Tensor)
