"""Training commands: train, evaluate, export."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import (
    CheckpointOpt,
    ConfigArg,
    DeviceOpt,
    PrecisionOpt,
    RunArg,
    json_text,
)
from poselab.errors import PoselabError


def train_cmd(
    config: Path = ConfigArg,
    preset: str = typer.Option(None, help="Preset name in configs/ (e.g. cpu, resnet50, "
                               "dlc_resnet50, fastest_lite0) or a YAML file of training "
                               "options (default: cpu on a CPU, resnet50 on a GPU; with "
                               "--backbone, the built-in defaults)."),
    backbone: str = typer.Option(None, help="resnet18/34/50/101 or efficientnet_lite0 "
                                 "(default: the preset's, else resnet50)."),
    weights: str = typer.Option(None, help="imagenet, none, or a state-dict file "
                                "(default: the preset's, else imagenet)."),
    epochs: int = typer.Option(None, help="Training epochs (default: the preset's, else 200; "
                               "with --resume: the run's)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step, per GPU with "
                                   "torchrun (default: the preset's, else 8)."),
    device: str = typer.Option(None, help="auto, cpu, cuda or mps (default: the preset's, "
                               "else auto)."),
    train_fraction: float = typer.Option(None, "--train-fraction",
                                         help="Fraction of the labeled frames to train on; "
                                         "the rest is the test split (default: the preset's, "
                                         "else config.yaml's TrainingFraction)."),
    val_fraction: float = typer.Option(None, "--val-fraction",
                                       help="Fraction of the labeled frames held out of "
                                       "training to choose the best checkpoint (best.pt); "
                                       "the test split stays the same. Without it the final "
                                       "checkpoint is the model (default: the preset's, else "
                                       "0)."),
    seed: int = typer.Option(None, help="Seed of the split and augmentation (default: the "
                             "preset's, else 0)."),
    max_minutes: float = typer.Option(None, "--max-minutes",
                                      help="Stop cleanly (evaluate + save) after this long "
                                      "(default: no limit)."),
    assignments: list[str] = typer.Option([], "--set", help="Any training option, key=value; "
                                          "repeat (e.g. --set lr=1e-3 --set "
                                          "augment.rotation=15).", show_default=False),
    name: str = typer.Option(None, help="Run folder name under models/ (default: "
                             "<backbone>-<date>-<time>)."),
    resume: str = typer.Option(None, help="Continue a run (its folder or name); only --epochs "
                               "and --max-minutes may change."),
    ensemble: int = typer.Option(1, "--ensemble", help="Train this many models (seeds seed, "
                                 "seed+1, ...; one split) into one run, used as one: analyze "
                                 "writes their mean and a variance file, smooth uses it. A "
                                 "--max-minutes budget is shared."),
) -> None:
    """Train a pose model on the project's labeled frames.

    Options apply in this order: built-in defaults, --preset, the flags, --set.
    The run folder models/<run>/ gets the resolved options (run.yaml), the split,
    checkpoints (last.pt; best.pt, chosen on the validation split, with
    --val-fraction), metrics.csv and a learning curve. The test split never chooses
    anything. After Ctrl+C or --max-minutes, --resume continues from the last
    finished epoch.

    Examples:
      poselab train config.yaml
      poselab train config.yaml --preset fast_lite0 --max-minutes 30
      poselab train config.yaml --train-fraction 0.5 --val-fraction 0.1
      poselab train config.yaml --ensemble 3 --max-minutes 60
      poselab train config.yaml --backbone resnet18 --epochs 100 --set lr=1e-3
      poselab train config.yaml --resume resnet50-20261126-101500 --epochs 300
      torchrun --nproc_per_node 4 -m poselab train config.yaml --device cuda
    """
    from poselab.pose.train_config import default_preset, resolve_config
    from poselab.pose.training import train

    flags = {"backbone": backbone, "weights": weights, "batch_size": batch_size,
             "device": device, "train_fraction": train_fraction, "val_fraction": val_fraction,
             "seed": seed}
    if resume and (preset or assignments or any(v is not None for v in flags.values())):
        raise PoselabError("--resume continues a run with its own options; only --epochs and "
                           "--max-minutes may change")
    if not resume and preset is None and backbone is None:
        preset = default_preset(device or "auto")
        typer.echo(f"recipe: preset {preset} (the default on this machine's "
                   f"{'CPU' if preset == 'cpu' else 'GPU'}; --preset chooses another)")
    cfg = None if resume else resolve_config(preset, flags, list(assignments))
    run = train(config, cfg, name=name, resume=resume, epochs=epochs, max_minutes=max_minutes,
                ensemble=ensemble)
    typer.echo(f"run: {run}")


def evaluate_cmd(
    run: Path = RunArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: bool = typer.Option(False, "--plot", help="Also draw ground truth vs prediction "
                              "images into <run>/evaluation/."),
    device: str = DeviceOpt,
    which: str = CheckpointOpt,
    precision: str = PrecisionOpt,
    test_flip: bool = typer.Option(None, "--test-flip/--no-test-flip", help="Average each "
                                   "image with its mirror (default: when the run was trained "
                                   "to); --no-test-flip grades what analyze --no-test-flip "
                                   "gives.", show_default=False),
) -> None:
    """Pixel errors and PCK of a trained run, per bodypart.

    Reports for the train, validation (if any) and test splits the mean pixel error
    and RMSE (also over keypoints above pcutoff), PCK@5px, missing predictions and a
    per-bodypart table, for the model the run's rule selects (best on validation,
    else the final checkpoint; it says which); writes them to
    <run>/evaluation/metrics.json.

    Examples:
      poselab evaluate models/resnet50-20261126-101500
      poselab evaluate models/resnet50-20261126-101500 --plot --which last --json
    """
    from poselab.pose.evaluation import evaluate, format_evaluation

    result = evaluate(run, plot=plot, device=device, which=which, precision=precision,
                      test_flip=test_flip)
    if as_json:
        typer.echo(json_text({**result, "train_mean_px_error": result["train"]["mean_px_error"],
                               "test_mean_px_error": result["test"]["mean_px_error"]}))
    else:
        typer.echo(format_evaluation(result))
        if plot:
            typer.echo(f"images: {Path(run) / 'evaluation'}")


def export_cmd(
    run: Path = RunArg,
    fmt: str = typer.Option("torchscript", "--format", help="torchscript (model.pt) or onnx "
                            "(model.onnx; needs the onnx, onnxscript and onnxruntime "
                            "packages)."),
    dest: Path = typer.Option(None, "--dest", help="Folder that receives export/ (default: "
                              "the run dir)."),
    which: str = CheckpointOpt,
    precision: str = typer.Option("fp32", "--precision", help="What the exported network "
                                  "computes in: fp32, fp16, or bf16 (torchscript only); "
                                  "auto is fp32. Match poselab analyze --precision."),
) -> None:
    """Export a run to TorchScript or ONNX for deployment.

    Writes the network (model.pt or model.onnx) and preprocessing.json (how to
    prepare frames and decode the outputs) into <dest or run>/export/. Every
    export is checked against PyTorch in the same precision before it is saved;
    progress goes to stderr (a line every ~30 s while the export runs).

    Examples:
      poselab export models/resnet50-20261126-101500
      poselab export models/resnet50-20261126-101500 --format onnx --dest deploy
      poselab export models/resnet50-20261126-101500 --which last
      poselab export models/resnet50-20261126-101500 --precision bf16
    """
    from poselab.analysis.export import export_model

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    for path in export_model(run, fmt, dest, which, precision, echo=progress):
        typer.echo(f"wrote {path}")
