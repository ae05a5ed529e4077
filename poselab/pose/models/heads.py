"""Pose heads: backbone features -> K heatmap logits + 2K location-refinement offsets.

Shapes: B batch, K keypoints, C feature channels, h w heatmap. A head takes (B, C, H/s_in,
W/s_in) features and returns (heatmaps (B, K, h, w), offsets (B, 2K, h, w)) at the output
stride, with offsets laid out [2k] = dx, [2k + 1] = dy (see poselab.pose.heatmaps).

Two heads: `DeconvHead` upsamples the last backbone stage (DeepLabCut, SimpleBaseline);
`FPNHead` fuses the stride-8, -16 and -32 stages top-down (a feature pyramid), so the
heatmaps see fine detail from the higher-resolution stages, not only what survived to
stride 32.

Adding a head: a module with the same forward contract, selected by name in PoseNet, plus a
test in tests/pose/models/test_heads.py.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# sigmoid(-4.6) ~ 0.01: most cells are background, so start every map near "absent"
# instead of 0.5 everywhere (the focal-loss prior trick); the first steps then train the
# peaks instead of pushing the whole map down.
HEATMAP_BIAS_INIT = -4.6


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    # kernel 4, stride 2, padding 1: output = (in - 1) * 2 - 2 + 4 = exactly 2 * in
    return nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=False)


def _output_convs(channels: int, k: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """1x1 convolutions to K heatmap logits (starting near "absent") and 2K offsets (near 0)."""
    heatmap = nn.Conv2d(channels, k, kernel_size=1)
    offset = nn.Conv2d(channels, 2 * k, kernel_size=1)
    for conv in (heatmap, offset):
        nn.init.normal_(conv.weight, std=0.001)
        nn.init.zeros_(conv.bias)
    nn.init.constant_(heatmap.bias, HEATMAP_BIAS_INIT)
    return heatmap, offset


class DeconvHead(nn.Module):
    """Transposed-convolution head (SimpleBaseline / DeepLabCut style).

    log2(in_stride / out_stride) deconvolutions (kernel 4, stride 2) upsample the features:
    32 -> 8 takes 2, 16 -> 8 takes 1 (DeepLabCut's dilated ResNet-50). Each doubles the size
    exactly, so for inputs whose sides are multiples of in_stride the output is exactly
    (H / out_stride, W / out_stride).

    Args:
        in_channels: C of the backbone features.
        num_keypoints: K.
        in_stride: the backbone's output stride.
        out_stride: the heatmap stride (must divide in_stride by a power of 2).
        width: channels of the intermediate deconvolutions (each + BN + ReLU).
        direct: DeepLabCut style: the last deconvolution outputs the K + 2K maps itself
            (no BN/ReLU, no 1x1 convs). It costs far less when it reads the backbone
            features directly (16 -> 8 from ResNet-50's 2048 channels, K = 4: 1 GFLOP per
            640x480 frame instead of about 20 for a 256-wide deconvolution), at the price of
            one nonlinearity less. Otherwise 1x1 convs map `width` channels to the maps.
    """

    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        in_stride: int,
        out_stride: int = 8,
        width: int = 256,
        direct: bool = False,
    ) -> None:
        super().__init__()
        ratio = in_stride // out_stride
        if in_stride % out_stride or ratio & (ratio - 1):
            raise ValueError(f"in_stride {in_stride} / out_stride {out_stride} not a power of 2")
        n_up = int(math.log2(ratio))
        self.num_keypoints = num_keypoints
        k = num_keypoints
        n_hidden = n_up - 1 if direct and n_up > 0 else n_up
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(n_hidden):
            layers += [_deconv(c, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            c = width
        self.upsample = nn.Sequential(*layers)
        if n_hidden < n_up:  # direct: one deconvolution to heatmaps and offsets together
            self.heatmap = None
            self.offset = None
            self.out = _deconv(c, 3 * k)
            self.out.bias = nn.Parameter(torch.zeros(3 * k))
            nn.init.normal_(self.out.weight, std=0.001)
            with torch.no_grad():
                self.out.bias[:k] = HEATMAP_BIAS_INIT
        else:
            self.out = None
            self.heatmap, self.offset = _output_convs(c, k)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H/s_in, W/s_in) -> heatmap logits (B, K, h, w), offsets (B, 2K, h, w)."""
        x = self.upsample(features)  # (B, width, h, w)
        if self.out is not None:
            y = self.out(x)  # (B, 3K, h, w)
            return y[:, : self.num_keypoints], y[:, self.num_keypoints :]
        return self.heatmap(x), self.offset(x)


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FPNHead(nn.Module):
    """Top-down feature pyramid head: backbone stages -> K heatmap logits + 2K offsets.

    Each stage (finest first, e.g. strides 8, 16, 32) is projected to `width` channels by a
    1x1 convolution; from the coarsest, the map is upsampled x2 (nearest), added to the next
    finer projection and smoothed by a 3x3 convolution, down to the finest stage; with
    out_stride 4, one transposed convolution doubles it once more. Stages at the same stride
    (a dilated last stage) are added without upsampling.

    Args:
        in_channels: channels of each stage, finest first.
        strides: stride of each stage, finest first (non-decreasing powers of 2).
        num_keypoints: K.
        out_stride: heatmap stride: the finest stage's, or half of it.
        width: channels of the pyramid.
    """

    def __init__(self, in_channels: list[int], strides: list[int], num_keypoints: int,
                 out_stride: int = 8, width: int = 128) -> None:
        super().__init__()
        if out_stride not in (strides[0], strides[0] // 2):
            raise ValueError(f"FPN out_stride {out_stride}: use {strides[0]} or "
                             f"{strides[0] // 2} for stages at strides {strides}")
        self.strides = list(strides)
        self.num_keypoints = num_keypoints
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.ModuleList(_conv_bn_relu(width, width, 3) for _ in in_channels[:-1])
        self.up = (nn.Sequential(_deconv(width, width), nn.BatchNorm2d(width),
                                 nn.ReLU(inplace=True))
                   if out_stride < strides[0] else nn.Identity())
        self.heatmap, self.offset = _output_convs(width, num_keypoints)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stages [(B, C_i, H/s_i, W/s_i)], finest first -> (B, K, h, w), (B, 2K, h, w)."""
        x = self.lateral[-1](features[-1])
        for i in range(len(features) - 2, -1, -1):
            if self.strides[i + 1] > self.strides[i]:
                x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.smooth[i](x + self.lateral[i](features[i]))
        x = self.up(x)
        return self.heatmap(x), self.offset(x)
