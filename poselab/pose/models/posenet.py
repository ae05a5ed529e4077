"""PoseNet: backbone features -> deconvolution head -> heatmaps + location refinement.

Notation (used in every shape comment): B batch, K keypoints, H W image, h w heatmap
(h = ceil(H / stride), w = ceil(W / stride)), C backbone channels.

Extending: a new backbone goes in backbones.BACKBONES, a new head in heads.py; PoseNet
only wires them, so both are picked by name/arguments here and recorded in `config()`,
which is all a run dir needs (with the weights) to rebuild the model.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from poselab.errors import PoselabError
from poselab.pose.models.backbones import MultiScale, backbone_normalization, build_backbone
from poselab.pose.models.heads import DeconvHead, FPNHead


class PoseNet(nn.Module):
    """Heatmap pose model: `forward(x) = head(backbone(x))`.

    Args:
        backbone_name: a key of poselab.pose.models.backbones.BACKBONES.
        num_keypoints: K.
        weights: backbone weights: "imagenet", "none" or a state dict path.
        output_stride: heatmap stride (8 like DeepLabCut).
        backbone_stride: 32 (plain backbone, 2 deconvolutions to stride 8) or 16 (dilated
            last stage, 1 deconvolution: DeepLabCut's ResNet-50; about 1.5x the backbone
            compute of stride 32).
        head_width: channels of the head's intermediate deconvolutions.
        head_direct: the last deconvolution outputs the maps itself (DeepLabCut style; see
            DeconvHead).

    Attributes:
        stride, mean, std (input normalization for RGB in [0, 1]), num_keypoints,
        backbone_name.
    """

    def __init__(
        self,
        backbone_name: str,
        num_keypoints: int,
        weights: str = "imagenet",
        output_stride: int = 8,
        backbone_stride: int = 32,
        head_width: int = 256,
        head_direct: bool = False,
        head: str = "deconv",
    ) -> None:
        super().__init__()
        if num_keypoints < 1:
            raise PoselabError(f"num_keypoints must be >= 1, not {num_keypoints}")
        if output_stride > backbone_stride or backbone_stride % output_stride:
            raise PoselabError(
                f"output_stride {output_stride} must divide backbone_stride {backbone_stride}"
            )
        if head not in ("deconv", "fpn"):
            raise PoselabError(f"head {head!r}: use deconv or fpn")
        self.backbone, channels, stride = build_backbone(backbone_name, weights, backbone_stride)
        if head == "fpn":
            self.backbone = MultiScale(backbone_name, self.backbone, backbone_stride)
            self.head = FPNHead(self.backbone.channels, self.backbone.strides, num_keypoints,
                                output_stride, width=head_width)
        else:
            self.head = DeconvHead(channels, num_keypoints, stride, output_stride,
                                   width=head_width, direct=head_direct)
        self.head_kind = head
        self.backbone_name = backbone_name
        self.num_keypoints = num_keypoints
        self.stride = output_stride
        self.backbone_stride = backbone_stride
        self.head_width = head_width
        self.head_direct = head_direct
        self.mean, self.std = backbone_normalization(backbone_name)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized images (B, 3, H, W) -> heatmap logits (B, K, h, w), offsets (B, 2K, h, w).

        For H, W multiples of backbone_stride the head output is exactly (H/stride,
        W/stride). Otherwise the backbone rounds up (ceil(H/32) cells) and the head
        output has a few extra cells past the bottom/right edge; they are cropped so the
        output always matches heatmaps.encode's h = ceil(H / stride) grid (cell (i, j) keeps
        covering pixels [j*s, j*s + s): the crop only removes cells beyond the image).
        """
        h = math.ceil(x.shape[-2] / self.stride)
        w = math.ceil(x.shape[-1] / self.stride)
        features = self.backbone(x)  # (B, C, ceil(H/s_b), ceil(W/s_b))
        heatmaps, offsets = self.head(features)  # (B, K, >= h, >= w), (B, 2K, >= h, >= w)
        if heatmaps.shape[-2] != h or heatmaps.shape[-1] != w:
            heatmaps, offsets = heatmaps[..., :h, :w], offsets[..., :h, :w]
        return heatmaps, offsets

    def fuse_for_inference(self) -> PoseNet:
        """Fold every BatchNorm into the convolution before it, in place; returns self.

        Inference only (call .eval() and load the weights first). Unfused, batch norm took
        about a quarter of EfficientNet-Lite0's CPU time in a profile (about a tenth of
        ResNet-50's); the fused model was faster in most paired runs, but those ran on a
        loaded machine: measure before relying on it. The fused state dict no longer
        matches config()'s architecture, so save checkpoints before fusing, never after.
        """
        if self.training:
            raise RuntimeError("fuse_for_inference needs eval mode: call model.eval() first")
        fuse_conv_bn(self)
        return self

    def parameter_groups(
        self, lr: float, backbone_lr_factor: float = 1.0, weight_decay: float | None = None
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups: backbone at lr * backbone_lr_factor, head at lr.

        Args:
            lr: the head's learning rate.
            backbone_lr_factor: e.g. 0.1 to fine-tune a pretrained backbone more gently;
                1.0 trains everything at one rate (DeepLabCut).
            weight_decay: set on both groups when given (else the optimizer default).

        Returns:
            Two dicts with "params", "lr" and "name" ("backbone", "head"); together they hold
            every parameter exactly once, ready for torch.optim.AdamW(groups).
        """
        groups = [
            {
                "name": "backbone",
                "params": list(self.backbone.parameters()),
                "lr": lr * backbone_lr_factor,
            },
            {"name": "head", "params": list(self.head.parameters()), "lr": lr},
        ]
        if weight_decay is not None:
            for g in groups:
                g["weight_decay"] = weight_decay
        return groups

    def config(self) -> dict[str, Any]:
        """Plain (YAML/JSON-safe) description that rebuilds this architecture via from_config.

        mean/std are recorded too, so a run dir states its input normalization.
        """
        return {
            "backbone_name": self.backbone_name,
            "num_keypoints": self.num_keypoints,
            "output_stride": self.stride,
            "backbone_stride": self.backbone_stride,
            "head_width": self.head_width,
            "head_direct": self.head_direct,
            "head": self.head_kind,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], weights: str = "none") -> PoseNet:
        """Rebuild from `config()` (random or given backbone weights; then load_state_dict).

        The recorded mean/std, when present, override the backbone's current defaults, so
        a model is always fed the normalization it was trained with.

        Raises:
            PoselabError: unknown or missing keys.
        """
        cfg = dict(cfg)
        mean, std = cfg.pop("mean", None), cfg.pop("std", None)
        known = {
            "backbone_name", "num_keypoints", "output_stride", "backbone_stride",
            "head_width", "head_direct", "head",
        }  # fmt: skip
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise PoselabError(f"unknown PoseNet config keys {unknown}; known: {sorted(known)}")
        for key in ("backbone_name", "num_keypoints"):
            if key not in cfg:
                raise PoselabError(f"PoseNet config lacks {key!r}")
        model = cls(weights=weights, **cfg)
        if mean is not None and std is not None:
            model.mean, model.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        return model


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold each BatchNorm2d into the Conv2d/ConvTranspose2d registered just before it.

    Every backbone and head here registers a conv immediately followed by its BN (torchvision
    ResNets, EfficientNet-Lite's `_conv`/`_bn` pairs, the head's deconv + BN), so
    registration order finds the pairs; the BN becomes an Identity. Eval mode only.
    """
    names = list(module._modules)
    for conv_name, bn_name in pairwise(names):
        conv, bn = module._modules[conv_name], module._modules[bn_name]
        if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d):
            transpose = isinstance(conv, nn.ConvTranspose2d)
            module._modules[conv_name] = fuse_conv_bn_eval(conv, bn, transpose=transpose)
            module._modules[bn_name] = nn.Identity()
    for child in module.children():
        fuse_conv_bn(child)
    return module
