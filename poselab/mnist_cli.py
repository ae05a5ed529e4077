"""``poselab mnist ...``: the MNIST warmup's commands, a typer sub-app mounted by poselab.cli.

Each command parses options and calls the Python API in ``poselab.mnist``; torch is imported
inside the commands so that ``poselab --help`` stays instant. A ``PoselabError`` propagates to
the main CLI, which prints it as one line and exits with code 2.

Extending: a new command is a function here that calls one API function and prints either a
human summary or, with ``--json``, exactly one JSON object on stdout (progress bars go to
stderr, so the JSON stays machine-readable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

mnist_app = typer.Typer(
    help="MNIST warmup: train the classic CNN on digits, then transfer its features to "
    "Fashion-MNIST (transfer learning in miniature).",
    no_args_is_help=True,
)

DataOpt = Annotated[Path, typer.Option("--data", help="Folder with the four IDX files "
                                       "(train-images-idx3-ubyte.gz ...).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
TestLimitOpt = Annotated[int | None, typer.Option(min=1, help="Test on a class-balanced subset "
                                                  "of this many images (quick look).")]


@mnist_app.command()
def train(
    data: DataOpt,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the 60,000 images.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Run folder for checkpoint and metrics.")] = None,
    json_out: JsonOpt = False,
    download: Annotated[bool, typer.Option(help="Fetch MNIST into --data first (network).")]
    = False,
    seed: int = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on a class-balanced subset "
                                              "of this many images (quick look).")] = None,
    test_limit: TestLimitOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Train the classic CNN on MNIST and report test accuracy per epoch."""
    from poselab.mnist import train_mnist  # lazy: torch loads only when a command runs
    from poselab.mnist_data import download as fetch

    if download:
        data = fetch("mnist", data)
    result = train_mnist(data, epochs, out, seed=seed, batch_size=batch_size, limit=limit,
                         test_limit=test_limit, device=device)
    if json_out:
        typer.echo(json.dumps(result))
        return
    for row in result["epochs"]:
        typer.echo(f"epoch {row['epoch']}: test accuracy {row['test_accuracy']:.2%}, "
                   f"train loss {row['train_loss']:.4f}, {row['seconds']:.1f} s")
    where = f"; run in {result['run']}" if result["run"] else ""
    typer.echo(f"test accuracy {result['test_accuracy']:.2%} in {result['seconds']:.0f} s{where}")


@mnist_app.command()
def transfer(
    from_run: Annotated[Path, typer.Option("--from", help="Run folder of `mnist train`.")],
    data: DataOpt,
    labels: Annotated[str, typer.Option(help="Comma-separated label counts; 'all' is the "
                                        "whole training split.")] = "100,1000,10000,all",
    out: Annotated[Path | None, typer.Option(help="Output folder (default: RUN/transfer).")]
    = None,
    json_out: JsonOpt = False,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over each label subset.")] = 3,
    finetune: Annotated[bool, typer.Option(help="Also fine-tune all layers.")] = True,
    download: Annotated[bool, typer.Option(help="Fetch Fashion-MNIST into --data first.")]
    = False,
    seed: int = 0,
    test_limit: TestLimitOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Frozen / fine-tuned MNIST features vs from scratch, for each number of labels."""
    from poselab.mnist import format_table
    from poselab.mnist import transfer as run_transfer
    from poselab.mnist_data import download as fetch

    if download:
        data = fetch("fashion-mnist", data)
    counts = [item.strip() for item in labels.split(",") if item.strip()]
    result = run_transfer(from_run, data, counts, out=out, epochs=epochs, finetune=finetune,
                          seed=seed, test_limit=test_limit, device=device)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(format_table(result["table"]))
    typer.echo(f"plot: {result['plot']}\nconfusion matrix: {result['confusion_matrix']}")
