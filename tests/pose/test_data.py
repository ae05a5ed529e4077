"""Split, evaluation preprocessing and PoseDataset on synthetic labeled frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from poselab.errors import PoselabError
from poselab.io.labels import LabeledFrames
from poselab.pose.augment import AugmentConfig
from poselab.pose.data import (
    PoseDataset,
    make_split,
    normalize,
    pad_collate,
    pad_to_multiple,
    preprocess,
    preprocess_batch,
    read_split,
    split_indices,
    to_frame_pixels,
    worker_init_fn,
    write_split,
)

GEOMETRY_ONLY = dict(color_prob=0.0, motion_blur_prob=0.0, gaussian_blur_prob=0.0, noise_prob=0.0)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def make_frames(
    root: Path, keypoints: np.ndarray, size=(50, 70), blobs: bool = False
) -> LabeledFrames:
    """PNG frames under root/labeled-data/vid/ and their labels (N, K, 2).

    Images are random noise, or (blobs) black with a Gaussian blob at each labeled keypoint.
    """
    folder = root / "labeled-data" / "vid"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for i, kps in enumerate(keypoints):
        if blobs:
            img = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 18.0) for x, y in kps
                      if np.isfinite(x))
            img = np.repeat(np.round(255 * img).astype(np.uint8)[..., None], 3, axis=2)
        else:
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        paths.append(folder / f"img{i:04d}.png")
        cv2.imwrite(str(paths[-1]), img[..., ::-1])  # RGB -> BGR on disk
    names = [f"part{k}" for k in range(keypoints.shape[1])]
    return LabeledFrames(paths, np.asarray(keypoints, np.float32), names)


def random_keypoints(n: int, k: int, size=(50, 70), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = rng.uniform([5, 5], [size[1] - 5, size[0] - 5], (n, k, 2)).astype(np.float32)
    kp[0, -1] = np.nan  # one unlabeled keypoint
    return kp


def test_split_deterministic_sizes_disjoint_covering():
    train, test = split_indices(50, 0.5, seed=3)
    assert (train, test) == split_indices(50, 0.5, seed=3)
    assert len(train) == len(test) == 25
    assert train == sorted(train) and test == sorted(test)
    assert not set(train) & set(test) and set(train) | set(test) == set(range(50))
    assert split_indices(50, 0.5, seed=4) != (train, test)
    # numpy's PCG64 permutation is the same on every machine: pin one split.
    assert split_indices(10, 0.5, seed=0) == ([2, 3, 4, 6, 7], [0, 1, 5, 8, 9])
    assert split_indices(10, 0.95, seed=0) == ([0, 2, 3, 4, 5, 6, 7, 8, 9], [1])  # test kept
    assert [len(s) for s in split_indices(2, 0.01, seed=0)] == [1, 1]
    for n, fraction in ((1, 0.5), (10, 0.0), (10, 1.0), (10, 1.5)):
        with pytest.raises(PoselabError):
            split_indices(n, fraction, seed=0)


def test_split_json_round_trip_survives_a_moved_project(tmp_path):
    frames = make_frames(tmp_path / "proj", random_keypoints(6, 2))
    split = make_split(len(frames), 0.5, seed=1)
    path = write_split(tmp_path / "split.json", split, frames, seed=1, train_fraction=0.5)
    doc = json.loads(path.read_text())
    assert doc["seed"] == 1 and doc["train_fraction"] == 0.5 and doc["val"] == []
    assert doc["train"][0].startswith("labeled-data/vid/img") and len(doc["test"]) == 3
    assert read_split(path, frames) == split
    # Move the project and list its frames in another order: the split follows the images.
    shutil.move(tmp_path / "proj", tmp_path / "moved")
    order = [5, 3, 1, 0, 2, 4]
    moved = LabeledFrames([tmp_path / "moved" / Path(*frames.paths[i].parts[-3:]) for i in order],
                          frames.keypoints[order], frames.bodyparts)
    train2, _, test2 = read_split(path, moved)
    assert sorted(order[i] for i in train2) == split.train
    assert sorted(order[i] for i in test2) == split.test
    fewer = LabeledFrames(moved.paths[1:], moved.keypoints[1:], moved.bodyparts)
    with pytest.raises(PoselabError, match=r"split\.json: .* image labeled-data/vid/img0005"):
        read_split(path, fewer)


def test_validation_split_is_disjoint_seeded_and_leaves_the_test_split_alone(tmp_path):
    for n, fraction, val in ((116, 0.5, 0.1), (40, 0.8, 0.15), (10, 0.5, 0.05)):
        split = make_split(n, fraction, seed=3, val_fraction=val)
        assert split == make_split(n, fraction, seed=3, val_fraction=val)  # seeded
        train, test = split_indices(n, fraction, seed=3)
        assert split.test == test  # the test frames never depend on the validation split
        assert set(split.train) | set(split.val) == set(train)
        assert not set(split.train) & set(split.val)
        assert len(split.val) == max(round(n * val), 1)
    assert make_split(116, 0.5, 3, 0.1).val != make_split(116, 0.5, 4, 0.1).val
    with pytest.raises(PoselabError, match="validation fraction 0.5 takes 5 of the 5"):
        make_split(10, 0.5, 0, val_fraction=0.5)
    # old split files (no "val") read with an empty validation split
    frames = make_frames(tmp_path / "old", random_keypoints(4, 2))
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"seed": 0, "train_fraction": 0.5,
                                "train": [str(Path(*frames.paths[i].parts[-3:])) for i in (0, 1)],
                                "test": [str(Path(*frames.paths[i].parts[-3:])) for i in (2, 3)]}))
    assert read_split(path, frames) == ([0, 1], [], [2, 3])


def test_eval_preprocess_pads_to_32_and_keeps_keypoints(tmp_path):
    kp = random_keypoints(2, 3)
    frames = make_frames(tmp_path, kp)
    ds = PoseDataset(frames, [0, 1], None, *IMAGENET)
    item = ds[1]
    assert item["image"].shape == (3, 64, 96) and item["image"].dtype == torch.float32
    assert item["index"].item() == 1 and item["index"].dtype == torch.int64
    np.testing.assert_array_equal(item["keypoints"].numpy(), kp[1])
    assert torch.isnan(ds[0]["keypoints"][-1]).all()
    assert item["image"][:, 50:].abs().max() == 0 and item["image"][:, :, 70:].abs().max() == 0
    rgb = cv2.cvtColor(cv2.imread(str(frames.paths[1])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(item["image"][:, :50, :70].numpy(), normalize(rgb, *IMAGENET))
    np.testing.assert_array_equal(item["image"].numpy(), preprocess(rgb, *IMAGENET).numpy())
    padded = pad_to_multiple(normalize(rgb, *IMAGENET))
    np.testing.assert_array_equal(padded, item["image"].numpy())
    batch = preprocess_batch(torch.from_numpy(np.stack([rgb, rgb])), *IMAGENET)
    assert batch.shape == (2, 3, 64, 96)
    assert (batch[1] - item["image"]).abs().max() < 1e-6


def test_normalization_uses_mean_and_std():
    img = np.full((4, 6, 3), 128, np.uint8)
    img[..., 2] = 255
    out = normalize(img, (0.5, 0.25, 0.0), (0.5, 0.25, 2.0))
    assert out.shape == (3, 4, 6)
    np.testing.assert_allclose(out[:, 0, 0], [(128 / 255 - 0.5) / 0.5,
                                              (128 / 255 - 0.25) / 0.25, 0.5], atol=1e-6)


def test_missing_or_unreadable_image_is_a_poselab_error(tmp_path):
    frames = make_frames(tmp_path, random_keypoints(2, 1))
    frames.paths[1].unlink()
    for cache in (True, False):
        with pytest.raises(PoselabError, match=r"img0001\.png: image not found"):
            PoseDataset(frames, [0, 1], None, *IMAGENET, cache_images=cache)
    frames.paths[1].write_bytes(b"not a png")
    with pytest.raises(PoselabError, match=r"img0001\.png: unreadable image"):
        PoseDataset(frames, [1], None, *IMAGENET)


def test_train_keypoints_land_on_blob_centroids(tmp_path):
    kp = np.array([[[40.3, 50.6], [110.7, 90.2]], [[70.5, 30.25], [np.nan, np.nan]]], np.float32)
    frames = make_frames(tmp_path, kp, size=(120, 150), blobs=True)
    cfg = AugmentConfig(crop_size=(64, 64), affine_prob=1.0, keypoint_crop_prob=1.0,
                        hflip_prob=0.5, scale=(0.7, 1.25), **GEOMETRY_ONLY)
    ds = PoseDataset(frames, [0, 1], None, (0, 0, 0), (1, 1, 1), augment=cfg, train=True)
    checked = 0
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(2):
            item = ds[i]
            assert item["image"].shape == (3, 64, 64)
            assert torch.isnan(ds[1]["keypoints"][1]).all()  # unlabeled stays unlabeled
            img = item["image"][0].numpy().astype(np.float64)
            for x, y in item["keypoints"].numpy():
                if not np.isfinite(x) or min(x, y) < 10 or max(x, y) > 53:
                    continue  # blob cut by the crop edge: its centroid moves
                r, c = round(y), round(x)
                patch = img[r - 9 : r + 10, c - 9 : c + 10]
                yy, xx = np.mgrid[r - 9 : r + 10, c - 9 : c + 10]
                cx, cy = (patch * xx).sum() / patch.sum(), (patch * yy).sum() / patch.sum()
                assert abs(cx - x) < 0.15 and abs(cy - y) < 0.15
                checked += 1
    assert checked >= 10


def test_train_mode_reproducible_per_seed_epoch_and_with_workers(tmp_path):
    frames = make_frames(tmp_path, random_keypoints(4, 2, size=(64, 64)), size=(64, 64))
    cfg = AugmentConfig(crop_size=(32, 32), affine_prob=1.0, hflip_prob=0.5, color_prob=1.0,
                        noise_prob=1.0)

    def epoch_items(ds, epoch):
        ds.set_epoch(epoch)
        return [ds[i] for i in range(len(ds))]

    ds = PoseDataset(frames, range(4), None, *IMAGENET, augment=cfg, train=True, seed=7)
    first, again = epoch_items(ds, 0), epoch_items(ds, 0)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0]["image"], epoch_items(ds, 1)[0]["image"])
    other = PoseDataset(frames, range(4), None, *IMAGENET, augment=cfg, train=True, seed=8)
    assert not torch.equal(first[0]["image"], other[0]["image"])
    # Two persistent workers: the same samples as in-process, epoch 1 included.
    loader = DataLoader(ds, batch_size=2, num_workers=2, persistent_workers=True,
                        worker_init_fn=worker_init_fn)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        images = torch.cat([b["image"] for b in loader])
        expected = torch.stack([it["image"] for it in epoch_items(ds, epoch)])
        assert torch.equal(images, expected)


def test_flip_pairs_by_name_swap_in_the_dataset(tmp_path):
    kp = np.array([[[10.0, 20.0], [50.0, 20.0], [30.0, 40.0]]], np.float32)
    frames = make_frames(tmp_path, kp)
    cfg = AugmentConfig(crop_size=None, affine_prob=0.0, hflip_prob=1.0)
    ds = PoseDataset(frames, [0], None, *IMAGENET, augment=cfg, train=True,
                     flip_pairs=[["part0", "part1"]])
    item = ds[0]
    assert item["image"].shape == (3, 64, 96)  # full frame, padded to /32
    np.testing.assert_allclose(item["keypoints"].numpy(), [[19, 20], [59, 20], [39, 40]],
                               atol=1e-4)  # x -> 69 - x, then part0 <-> part1


def test_pad_collate_pads_maps_to_the_batch_max():
    items = [{"image": torch.ones(3, 32, 64), "keypoints": torch.zeros(2, 2),
              "index": torch.tensor(0), "heatmaps": torch.ones(2, 4, 8)},
             {"image": torch.ones(3, 64, 32), "keypoints": torch.ones(2, 2),
              "index": torch.tensor(5), "heatmaps": torch.ones(2, 8, 4)}]
    batch = pad_collate(items)
    assert batch["image"].shape == (2, 3, 64, 64) and batch["heatmaps"].shape == (2, 2, 8, 8)
    assert batch["image"][0, :, 32:].abs().max() == 0 and batch["image"][0, :, :32].min() == 1
    assert batch["index"].tolist() == [0, 5] and batch["keypoints"].shape == (2, 2, 2)


def test_targets_from_the_real_encode(tmp_path):
    heatmaps = pytest.importorskip("poselab.pose.heatmaps")
    kp = np.array([[[30.0, 30.0], [140.0, 100.0], [np.nan, np.nan]]], np.float32)
    frames = make_frames(tmp_path, kp, size=(120, 150))
    cfg = AugmentConfig(crop_size=(64, 64), affine_prob=0.0, keypoint_crop_prob=1.0,
                        crop_max_shift=0.0, **GEOMETRY_ONLY)
    codec = heatmaps.Codec(stride=8)
    ds = PoseDataset(frames, [0], codec, *IMAGENET, augment=cfg, train=True)
    k = 3
    shapes = {"heatmaps": (k, 8, 8), "offsets": (2 * k, 8, 8), "offset_mask": (k, 8, 8),
              "keypoint_mask": (k,)}
    for seed in range(4):
        ds.seed = seed
        item = ds[0]
        for key, shape in shapes.items():
            assert item[key].shape == shape and item[key].dtype == torch.float32
        visible = torch.isfinite(item["keypoints"]).all(dim=1).float()
        assert torch.equal(item["keypoint_mask"], visible)
        if "label_mask" in item:  # a labeled keypoint off the crop is "absent", not unlabeled
            assert item["label_mask"].tolist() == [1.0, 1.0, 0.0]
        j = int(visible.argmax())  # the crop is centered on one keypoint: its peak is there
        row, col = divmod(int(item["heatmaps"][j].argmax()), 8)
        x, y = item["keypoints"][j].tolist()
        assert abs(col * 8 + 3.5 - x) <= 4 and abs(row * 8 + 3.5 - y) <= 4
    eval_item = PoseDataset(frames, [0], codec, *IMAGENET)[0]
    assert eval_item["heatmaps"].shape == (k, 16, 20)  # 128 x 160 padded frame, stride 8


def _blob_centroids(img: np.ndarray, keypoints: np.ndarray, radius: int = 6) -> np.ndarray:
    """Brightness centroid of the patch around each (x, y) of a (H, W) image."""
    out = []
    for x, y in keypoints:
        r, c = round(float(y)), round(float(x))
        patch = img[r - radius : r + radius + 1, c - radius : c + radius + 1]
        yy, xx = np.mgrid[r - radius : r + radius + 1, c - radius : c + radius + 1]
        out.append([(patch * xx).sum() / patch.sum(), (patch * yy).sum() / patch.sum()])
    return np.array(out)


def test_input_scale_round_trip_has_no_half_pixel_bias(tmp_path):
    """At input_scale 0.5 the training warp and the inference resize put each blob where the
    keypoints say, and the inference inverse maps it back within 0.05 px of the label."""
    kp = np.array([[[40.3, 50.6], [110.7, 90.2]]], np.float32)
    frames = make_frames(tmp_path, kp, size=(121, 151), blobs=True)  # odd: ratio != 0.5
    cfg = AugmentConfig(crop_size=None, affine_prob=0.0, **GEOMETRY_ONLY)
    train = PoseDataset(frames, [0], None, (0, 0, 0), (1, 1, 1), augment=cfg, train=True,
                        input_scale=0.5)[0]
    evals = PoseDataset(frames, [0], None, (0, 0, 0), (1, 1, 1), input_scale=0.5)[0]
    assert train["image"].shape == evals["image"].shape == (3, 64, 96)  # 61x76, padded
    assert evals["frame_hw"].tolist() == [121, 151]
    np.testing.assert_allclose(train["keypoints"], evals["keypoints"], atol=1e-5)
    for item in (train, evals):
        img = item["image"][0, :61, :76].numpy().astype(np.float64)
        net_xy = _blob_centroids(img, item["keypoints"].numpy(), radius=5)
        np.testing.assert_allclose(net_xy, item["keypoints"], atol=0.05)
        np.testing.assert_allclose(to_frame_pixels(net_xy, (121, 151), 0.5), kp[0], atol=0.05)
    # A x * s convention would be a quarter network pixel (half a frame pixel) off:
    assert np.abs(kp[0] * [76 / 151, 61 / 121] - evals["keypoints"].numpy()).min() > 0.2


def test_input_scale_training_warp_matches_inference_pixels(tmp_path):
    """Without augmentation, the one training warp at 0.5 is inference's INTER_AREA resize
    (bilinear samples midway between 2x2 pixels = their box average), up to uint8 rounding."""
    frames = make_frames(tmp_path, random_keypoints(1, 2, size=(64, 96)), size=(64, 96))
    cfg = AugmentConfig(crop_size=None, affine_prob=0.0, **GEOMETRY_ONLY)
    train = PoseDataset(frames, [0], None, *IMAGENET, augment=cfg, train=True, input_scale=0.5)
    evals = PoseDataset(frames, [0], None, *IMAGENET, input_scale=0.5)
    diff = (train[0]["image"] - evals[0]["image"]).abs() * torch.tensor(IMAGENET[1])[:, None, None]
    assert diff.max() <= 1.01 / 255


def test_input_scale_crops_are_network_pixels_and_keypoints_exact(tmp_path):
    kp = np.array([[[80.3, 100.6], [220.7, 180.2]]], np.float32)
    frames = make_frames(tmp_path, kp, size=(240, 300), blobs=True)
    cfg = AugmentConfig(crop_size=(64, 64), affine_prob=1.0, keypoint_crop_prob=1.0,
                        scale=(0.8, 1.2), **GEOMETRY_ONLY)
    ds = PoseDataset(frames, [0], None, (0, 0, 0), (1, 1, 1), augment=cfg, train=True,
                     input_scale=0.5)
    checked = 0
    for epoch in range(8):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["image"].shape == (3, 64, 64)
        img = item["image"][0].numpy().astype(np.float64)
        for xy in item["keypoints"].numpy():
            if np.isfinite(xy).all() and 8 < xy.min() and xy.max() < 55:
                got = _blob_centroids(img, xy[None], radius=5)[0]
                assert np.abs(got - xy).max() < 0.15
                checked += 1
    assert checked >= 6
