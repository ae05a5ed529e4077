"""DeconvHead: upsampling derived from the strides, exact output size, initialization."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from poselab.pose.models.heads import HEATMAP_BIAS_INIT, DeconvHead


def _n_deconvs(head: DeconvHead) -> int:
    return sum(isinstance(m, nn.ConvTranspose2d) for m in head.modules())


@pytest.mark.parametrize("direct", [False, True])
@pytest.mark.parametrize(("in_stride", "n_up"), [(32, 2), (16, 1), (8, 0)])
def test_output_size_exact(in_stride: int, n_up: int, direct: bool) -> None:
    head = DeconvHead(64, num_keypoints=3, in_stride=in_stride, width=32, direct=direct).eval()
    assert _n_deconvs(head) == n_up
    H, W = 96, 160  # multiples of 32: heatmaps are exactly (H/8, W/8)
    features = torch.randn(2, 64, H // in_stride, W // in_stride)
    with torch.inference_mode():
        heatmaps, offsets = head(features)
    assert heatmaps.shape == (2, 3, H // 8, W // 8)
    assert offsets.shape == (2, 6, H // 8, W // 8)
    assert heatmaps.dtype == offsets.dtype == torch.float32


def test_direct_head_is_dlc_single_deconv() -> None:
    head = DeconvHead(2048, num_keypoints=4, in_stride=16, direct=True)
    deconvs = [m for m in head.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(deconvs) == 1 and deconvs[0].out_channels == 12  # K heatmaps + 2K offsets
    assert not any(isinstance(m, nn.BatchNorm2d) for m in head.modules())


@pytest.mark.parametrize("direct", [False, True])
def test_initial_heatmaps_near_absent(direct: bool) -> None:
    head = DeconvHead(32, num_keypoints=2, in_stride=32, width=16, direct=direct).eval()
    with torch.inference_mode():
        heatmaps, offsets = head(torch.randn(1, 32, 2, 2))
    prob = torch.sigmoid(heatmaps)
    assert torch.allclose(prob, torch.full_like(prob, 0.01), atol=0.005)
    assert offsets.abs().max() < 0.1
    assert HEATMAP_BIAS_INIT == pytest.approx(-4.6)


def test_rejects_non_power_of_two_ratio() -> None:
    with pytest.raises(ValueError, match="power of 2"):
        DeconvHead(16, 2, in_stride=24, out_stride=8)
    with pytest.raises(ValueError, match="power of 2"):
        DeconvHead(16, 2, in_stride=8, out_stride=16)


@pytest.mark.parametrize("backbone, stride", [("efficientnet_lite0", 32), ("resnet18", 32),
                                              ("resnet50", 16)])
@pytest.mark.parametrize("out_stride", [8, 4])
def test_fpn_head_gives_the_codec_grid_and_fuses(backbone, stride, out_stride):
    from poselab.pose.models.posenet import PoseNet

    torch.manual_seed(0)
    model = PoseNet(backbone, 3, weights="none", head="fpn", backbone_stride=stride,
                    output_stride=out_stride, head_width=32).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        heat, off = model(x)
        assert heat.shape == (2, 3, 96 // out_stride, 128 // out_stride)
        assert off.shape == (2, 6, 96 // out_stride, 128 // out_stride)
        # the prior: every cell starts near "absent"
        assert torch.sigmoid(heat).max() < 0.05
        rebuilt = PoseNet.from_config(model.config())
        rebuilt.load_state_dict(model.state_dict())
        rebuilt.eval().fuse_for_inference()
        torch.testing.assert_close(rebuilt(x)[0], heat, atol=1e-4, rtol=1e-4)
