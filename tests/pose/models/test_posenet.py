"""PoseNet: shapes vs. encode's grid, config round trip, parameter groups, a tiny overfit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from poselab.errors import PoselabError
from poselab.pose.heatmaps import Codec, decode, encode, pose_loss
from poselab.pose.models import PoseNet


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run faster on one thread, and far faster when others load the CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(
    ("backbone", "backbone_stride"),
    [("resnet18", 32), ("resnet18", 16), ("efficientnet_lite0", 32)],
)
@pytest.mark.parametrize("size", [(64, 64), (72, 90)])
def test_output_matches_encode_grid(backbone: str, backbone_stride: int, size: tuple) -> None:
    model = PoseNet(backbone, 3, weights="none", backbone_stride=backbone_stride).eval()
    with torch.inference_mode():
        heatmaps, offsets = model(torch.zeros(2, 3, *size))
    target = encode(np.zeros((3, 2)), size, Codec(stride=model.stride))
    assert heatmaps.shape == (2, *target["heatmaps"].shape)
    assert offsets.shape == (2, *target["offsets"].shape)
    if size[0] % 32 == 0:
        assert heatmaps.shape[-2:] == (size[0] // 8, size[1] // 8)
    else:
        assert heatmaps.shape[-2:] == (math.ceil(size[0] / 8), math.ceil(size[1] / 8))


def test_attributes_and_normalization() -> None:
    model = PoseNet("efficientnet_lite0", 2, weights="none", output_stride=8)
    assert model.stride == 8 and model.num_keypoints == 2
    assert model.backbone_name == "efficientnet_lite0"
    assert model.mean[0] == pytest.approx(127 / 255) and len(model.std) == 3


def test_from_config_rebuilds_identical_model() -> None:
    torch.manual_seed(0)
    model = PoseNet("resnet18", 2, weights="none", backbone_stride=16, head_width=32).eval()
    cfg = json.loads(json.dumps(model.config()))  # plain data
    rebuilt = PoseNet.from_config(cfg).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        for a, b in zip(model(x), rebuilt(x), strict=True):
            assert torch.equal(a, b)
    assert rebuilt.config() == model.config()
    cfg["mean"] = [0.5, 0.5, 0.5]  # a recorded normalization wins over the default
    assert PoseNet.from_config(cfg).mean == (0.5, 0.5, 0.5)
    with pytest.raises(PoselabError, match="unknown PoseNet config keys.*'colour'"):
        PoseNet.from_config({**cfg, "colour": "red"})


def test_parameter_groups_cover_all_parameters_once() -> None:
    model = PoseNet("resnet18", 2, weights="none")
    groups = model.parameter_groups(1e-3, backbone_lr_factor=0.1, weight_decay=1e-4)
    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == pytest.approx(1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    torch.optim.AdamW(groups)  # accepted as they are


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_fuse_for_inference_keeps_outputs(backbone: str) -> None:
    torch.manual_seed(0)
    model = PoseNet(backbone, 2, weights="none", head_width=16)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.normal_(0, 0.1)  # non-trivial statistics, as after training
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    with pytest.raises(RuntimeError, match="eval"):
        model.fuse_for_inference()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        before = model(x)
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        after = model.fuse_for_inference()(x)
    assert n_bn > 0 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_channels_last_forward() -> None:
    model = PoseNet("resnet18", 2, weights="none").eval().to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64).to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        heatmaps, offsets = model(x)
        xy, likelihood = decode(heatmaps, offsets)
    assert xy.dtype == torch.float32 and xy.shape == (1, 2, 2)
    assert ((likelihood >= 0) & (likelihood <= 1)).all()


def test_tiny_overfit_loss_decreases() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.uniform(0, 0.2, (3, 64, 64))).float()
    keypoints = np.array([[20.3, 41.6], [45.2, 12.8]])
    for x, y in keypoints.astype(int):
        image[:, y - 2 : y + 3, x - 2 : x + 3] = 1.0  # bright squares mark the keypoints
    targets = {k: torch.from_numpy(v)[None] for k, v in encode(keypoints, (64, 64)).items()}
    # BCE against soft targets bottoms out at the targets' own entropy, not 0
    floor = torch.nn.functional.binary_cross_entropy(targets["heatmaps"], targets["heatmaps"])
    model = PoseNet("resnet18", 2, weights="none", head_width=32).train()
    opt = torch.optim.AdamW(model.parameter_groups(3e-3))
    excess = []
    for _ in range(20):
        loss, parts = pose_loss(*model(image[None]), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        excess.append(loss.item() - floor.item())
    assert parts["heatmap_loss"] > floor.item() and parts["locref_loss"] >= 0
    assert excess[-1] < 0.5 * excess[0], excess
