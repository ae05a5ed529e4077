"""Pose models: backbones by name (backbones.py), heads (heads.py), PoseNet (posenet.py).

Importing this package imports torch and torchvision; keep it out of `poselab --help`'s
import path. Extending: see each module's docstring (a backbone is a builder in
backbones.BACKBONES plus a test).
"""

from __future__ import annotations

from poselab.pose.models.backbones import BACKBONES, backbone_normalization, build_backbone
from poselab.pose.models.heads import DeconvHead
from poselab.pose.models.posenet import PoseNet

__all__ = ["BACKBONES", "DeconvHead", "PoseNet", "backbone_normalization", "build_backbone"]
