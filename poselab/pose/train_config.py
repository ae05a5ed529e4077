"""Training configuration: a passive dataclass, presets in configs/, and `--set` overrides.

A preset is a commented YAML file in the repository's `configs/` folder (installed as the
package `poselab.configs`). Loading is `yaml.safe_load` (a config from a colleague cannot run
code) and rejects unknown keys with the nearest valid one, so a typo never silently falls
back to a default.

Adding an option: add a field with a default and a comment to `TrainConfig` (or to
`poselab.pose.data.AugmentConfig` for augmentation), then use it in training.py.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from poselab.errors import ConfigError
from poselab.validate import check_options


@dataclass
class TrainConfig:
    """Everything that defines a training run (with the project and its split)."""

    backbone: str = "resnet50"  # resnet18/34/50/101, efficientnet_lite0
    weights: str = "imagenet"  # imagenet | none | path to a state dict
    backbone_stride: int = 32  # 32: plain backbone + 2 deconvs; 16: dilated last stage (DLC)
    output_stride: int = 8  # heatmap stride, as DeepLabCut
    head_width: int = 256  # channels of the deconvolution layers
    head_direct: bool = False  # DeepLabCut's head: deconvolve straight to the K maps
    # deconv: upsample the last backbone stage (DeepLabCut); fpn: fuse the stride-8/16/32
    # stages top-down (finer detail for the heatmaps; head_width is the pyramid's width)
    head: str = "deconv"
    epochs: int = 200
    batch_size: int = 8
    lr: float = 5e-4  # AdamW, as DeepLabCut
    backbone_lr_factor: float = 1.0  # backbone lr = lr * factor (fine-tuning)
    weight_decay: float = 1e-4
    lr_schedule: str = "step"  # step (drops below, DeepLabCut's) | cosine (to lr_final_factor)
    lr_drops: list[float] = field(default_factory=lambda: [0.45, 0.6])  # fractions of epochs
    lr_drop_factors: list[float] = field(default_factory=lambda: [0.2, 0.1])  # 5e-4->1e-4->1e-5
    lr_final_factor: float = 0.01  # cosine: the last step's lr = lr * this
    warmup_epochs: float = 0  # linear warm-up from lr/10
    # At least this many optimizer steps, whatever the dataset size (epochs are raised):
    # 45 frames at batch 8 make 6 steps an epoch. 0: epochs as given.
    min_steps: int = 0
    ema_decay: float = 0.0  # > 0: evaluate and save an exponential moving average of weights
    train_fraction: float | None = None  # None: config.yaml TrainingFraction[0]
    # Fraction of ALL labeled frames held out of training to choose the best checkpoint
    # (best.pt); drawn from the training part, so the test split is the same with or
    # without it. 0: no validation split, the final checkpoint is the model.
    val_fraction: float = 0.0
    seed: int = 0  # initialisation, augmentation and batch order (and the split, unless:)
    split_seed: int | None = None  # the train/val/test split's seed; None: `seed`
    # The network sees every image resized by this factor (DeepLabCut's global_scale), in
    # training, evaluation, analysis and export: 0.5 is ~4x fewer FLOPs per frame. Labels,
    # metrics and predictions stay in original image pixels. crop_size, sigma and
    # locref_radius are in network-input pixels, i.e. after this resize.
    input_scale: float = 1.0
    sigma: float = 8.0  # Gaussian target sigma, input pixels
    locref_std: float = 7.2801  # offset normalisation (DeepLabCut's value)
    locref_radius: float = 17.0  # offsets are trained within this radius, pixels
    locref_weight: float = 0.05
    # bce: per-cell BCE averaged over the map (DeepLabCut); balanced: plus the BCE averaged
    # over each keypoint's Gaussian, so peaks weigh the same on any map size (heatmaps.py)
    heatmap_loss: str = "bce"
    mask_unlabeled: bool = True  # DeepLabCut trains unlabeled keypoints as absent instead
    # The likelihood is calibrated to mean P(visible and within this many pixels of the
    # label) on the validation split after training (pose/calibration.py); none keeps raw
    # likelihoods. Needs a validation split (val_fraction > 0).
    calibration_radius: float = 5.0
    calibrate: str = "auto"  # auto | platt | isotonic | none
    # Average the maps of each image and its mirror at test time (evaluation, analysis),
    # left/right channels swapped (pairs: config.yaml flip_pairs or the names); meant for
    # models trained with augment.hflip_prob > 0. About twice the inference time.
    test_flip: bool = False
    # With flips asked for (augment.hflip_prob > 0 or test_flip) but a bodypart that looks
    # left/right without a pair (flip_pairs in config.yaml, or names like leftear/rightear):
    # True trains without flips and says so; False stops with an error. True also turns
    # flips off when a mirror would move keypoints against each other by about half a frame
    # or more (two views side by side: pose.flip.mirror_mismatch).
    flip_if_paired: bool = False
    augment: dict[str, Any] = field(default_factory=dict)  # poselab.pose.data.AugmentConfig fields
    workers: int = 2  # DataLoader worker processes
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 where fast, else fp32) | fp32 | bf16 | fp16
    channels_last: bool = True
    eval_every: int = 1  # evaluate the validation (and test) splits every N epochs
    eval_train: bool = True  # also report the train-split pixel error each evaluation
    # A time budget: after the first epochs the number of epochs is planned to fit it (at
    # most `epochs`), with the lr schedule placed on that plan; it still stops cleanly if
    # epochs slow down.
    max_minutes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Options from a mapping: unknown keys, wrong types and bad values are one-line
        ConfigErrors naming `source` (nothing is written before this passes)."""
        from poselab.pose.augment import AugmentConfig

        options = check_options(cls, data, source, "training option")
        cfg = cls(**options)
        cfg.validate(source)
        AugmentConfig.from_dict(cfg.augment, f"{source}: augment")  # checked now, used later
        return cfg

    def validate(self, source: str = "config") -> None:
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.backbone_stride in (16, 32), "backbone_stride must be 16 or 32"),
            (self.output_stride in (4, 8, 16), "output_stride must be 4, 8 or 16"),
            (self.output_stride <= self.backbone_stride, "output_stride must be <= backbone"),
            (self.train_fraction is None or 0 < self.train_fraction < 1,
             "train_fraction must be in (0, 1)"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.precision in ("auto", "fp32", "bf16", "fp16"),
             "precision must be auto, fp32, bf16 or fp16"),
            (len(self.lr_drops) == len(self.lr_drop_factors),
             "lr_drops and lr_drop_factors must have the same length"),
            (self.max_minutes is None or self.max_minutes > 0, "max_minutes must be > 0"),
            (self.lr_schedule in ("step", "cosine"), "lr_schedule must be step or cosine"),
            (0 <= self.lr_final_factor <= 1, "lr_final_factor must be in [0, 1]"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.min_steps >= 0, "min_steps must be >= 0"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.heatmap_loss in ("bce", "balanced"), "heatmap_loss must be bce or balanced"),
            (self.head in ("deconv", "fpn"), "head must be deconv or fpn"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.calibration_radius > 0, "calibration_radius must be > 0"),
            (self.calibrate in ("auto", "platt", "isotonic", "none"),
             "calibrate must be auto, platt, isotonic or none"),
            (self.workers >= 0, "workers must be >= 0"),
            (0.1 <= self.input_scale <= 2.0, "input_scale must be in [0.1, 2]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{source}: {message}")


def default_preset(device: str = "auto") -> str:
    """The recipe `poselab train CONFIG` uses without --preset: `cpu` (EfficientNet-Lite0
    under a time budget, weights shipped offline) when training runs on a CPU, `resnet50` on
    a GPU."""
    from poselab.pose.engine import resolve_device

    return "cpu" if resolve_device(device).type == "cpu" else "resnet50"


def preset_dir():
    """The folder of shipped presets: the installed package `poselab.configs`, or the
    repository's configs/ when the `poselab` package is imported from a source tree that
    shadows the installed one (pytest run from a clone after `pip install .`)."""
    try:
        return resources.files("poselab.configs")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "configs"


def preset_names() -> list[str]:
    """Names of the presets shipped in configs/ (file names without .yaml)."""
    return sorted(
        p.name[:-5] for p in preset_dir().iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("mnist")
    )


def load_yaml(path_or_text: str | Path, source: str) -> dict[str, Any]:
    """yaml.safe_load a file, as a mapping, with a one-line error naming the source."""
    try:
        text = Path(path_or_text).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError(f"{source}{line}: malformed YAML ({problem})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of training options")
    return data


def load_preset(name_or_path: str) -> dict[str, Any]:
    """The options of a preset name (see `preset_names`) or of a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_yaml(path, str(path))
    resource = preset_dir() / f"{name_or_path}.yaml"
    if not resource.is_file():
        names = preset_names()
        near = difflib.get_close_matches(name_or_path, names, n=1, cutoff=0.5)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise ConfigError(f"--preset {name_or_path}: no such preset{hint}; have {names}")
    with resources.as_file(resource) as p:
        return load_yaml(p, f"preset {name_or_path}")


def apply_overrides(options: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `--set key=value` strings; values are YAML (`lr=1e-3`, `augment.rotation=10`)."""
    options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in options.items()}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
        target = options
        *parents, leaf = key.strip().split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: '{parent}' is not a group of options")
        target[leaf] = value
    return options


def resolve_config(
    preset: str | None = None, overrides: dict[str, Any] | None = None,
    assignments: list[str] | None = None,
) -> TrainConfig:
    """Defaults <- preset <- explicit options (CLI flags) <- `--set` assignments."""
    options = load_preset(preset) if preset else {}
    options.update({k: v for k, v in (overrides or {}).items() if v is not None})
    options = apply_overrides(options, assignments or [])
    source = f"preset {preset}" if preset else "training options"
    return TrainConfig.from_dict(options, source)
