"""Training options: presets, --set overrides, unknown keys rejected with a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from poselab.errors import ConfigError
from poselab.pose.train_config import (
    TrainConfig,
    apply_overrides,
    load_preset,
    preset_names,
    resolve_config,
)


def test_presets_load_and_validate():
    names = preset_names()
    assert {"dlc_resnet50", "fast_lite0"} <= set(names)
    for name in names:
        cfg = resolve_config(name)
        assert isinstance(cfg, TrainConfig)
    dlc = resolve_config("dlc_resnet50")
    assert (dlc.backbone, dlc.backbone_stride, dlc.batch_size, dlc.lr) == ("resnet50", 16, 8,
                                                                           5e-4)
    assert resolve_config("fast_lite0").backbone == "efficientnet_lite0"
    fastest, fast = resolve_config("fastest_lite0"), resolve_config("fast_lite0")
    assert "fastest_lite0" in names and fastest.input_scale == 0.5 and fast.input_scale == 1.0
    # the crop is in network pixels: half of fast_lite0's keeps the same field of view
    assert [2 * c for c in fastest.augment["crop_size"]] == fast.augment["crop_size"]


def test_precedence_preset_flags_set():
    cfg = resolve_config("fast_lite0", {"epochs": 7, "seed": None}, ["lr=0.002",
                                                                     "augment.rotation=12"])
    assert cfg.epochs == 7 and cfg.lr == 0.002 and cfg.augment["rotation"] == 12


def test_unknown_keys_and_bad_values(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown training option 'epoch' "
                                          r"\(did you mean 'epochs'\?\)"):
        resolve_config(None, {}, ["epoch=3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["lr"])
    with pytest.raises(ConfigError, match="no such preset"):
        load_preset("fast_lite")
    bad = tmp_path / "mine.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="mine.yaml.*malformed YAML"):
        load_preset(str(bad))
    with pytest.raises(ConfigError, match="backbone_stride must be 16 or 32"):
        TrainConfig.from_dict({"backbone_stride": 8})


def test_yaml_cannot_run_code(tmp_path: Path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("epochs: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_preset(str(evil))


def test_input_scale_validated_and_old_runs_default_to_one():
    assert TrainConfig().input_scale == 1.0
    assert resolve_config(None, {}, ["input_scale=0.5"]).input_scale == 0.5
    for bad in (0.05, 2.5, 0):
        with pytest.raises(ConfigError, match=r"input_scale must be in \[0.1, 2\]"):
            TrainConfig.from_dict({"input_scale": bad})
    # run.yaml written before the option existed: no input_scale key
    old_train = {k: v for k, v in TrainConfig().to_dict().items() if k != "input_scale"}
    assert TrainConfig.from_dict(old_train, "run.yaml").input_scale == 1.0
