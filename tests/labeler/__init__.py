"""Tests of the browser labeling tool (poselab/labeler)."""
