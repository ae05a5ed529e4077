"""``poselab mnist ...``: the MNIST warmup's commands, a typer sub-app mounted by poselab.cli.

Each command parses options and calls the Python API in ``poselab.mnist.mnist``; torch is imported
inside the commands so that ``poselab --help`` stays instant. A ``PoselabError`` propagates to
the main CLI, which prints it as one line and exits with code 2.

Extending: a new command is a function here that calls one API function and prints either a
human summary or, with ``--json``, exactly one JSON object on stdout (progress bars go to
stderr, so the JSON stays machine-readable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poselab.cli.common import json_text

mnist_app = typer.Typer(
    help="MNIST warmup: transfer learning in miniature.\n\n"
    "Train the classic CNN on digits, then transfer its features to Fashion-MNIST\n"
    "and compare frozen and fine-tuned features with training from scratch.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

DataOpt = Annotated[Path, typer.Option("--data", help="Folder with the dataset's four "
                                       "IDX files (.gz or not).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the weights, shuffling and subsets.")]
TestLimitOpt = Annotated[int | None, typer.Option(min=1, help="Test on a class-balanced subset "
                                                  "of this many images (default: all 10,000).")]


@mnist_app.command()
def train(
    data: DataOpt,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the 60,000 images.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Run folder for checkpoint and metrics "
                                             "(default: none, nothing is written).")] = None,
    json_out: JsonOpt = False,
    download: Annotated[bool, typer.Option(help="Fetch MNIST into --data first (network).")]
    = False,
    seed: SeedOpt = 0,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per optimizer step.")] = 128,
    limit: Annotated[int | None, typer.Option(min=1, help="Train on a class-balanced subset "
                                              "of this many images (default: all 60,000).")]
    = None,
    test_limit: TestLimitOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Train the classic CNN on MNIST; test accuracy per epoch.

    With --out, the run folder gets checkpoint.pt, metrics.json, metrics.csv and
    config.yaml after every epoch; `poselab mnist transfer --from` reuses it.

    Examples:
      poselab mnist train --data data/mnist --out runs/mnist
      poselab mnist train --data data/mnist --download --out runs/mnist
      poselab mnist train --data data/mnist --limit 2000 --epochs 1 --json
    """
    from poselab.mnist.data import download as fetch
    from poselab.mnist.mnist import train_mnist  # lazy: torch loads only when a command runs

    if download:
        data = fetch("mnist", data)
    result = train_mnist(data, epochs, out, seed=seed, batch_size=batch_size, limit=limit,
                         test_limit=test_limit, device=device)
    if json_out:
        typer.echo(json_text(result))
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
    seed: SeedOpt = 0,
    test_limit: TestLimitOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Frozen, fine-tuned MNIST features vs training from scratch.

    For each number of labels, trains on a class-balanced subset of the target
    dataset (e.g. Fashion-MNIST): (a) frozen MNIST features with a new head,
    (b) the same model fine-tuned, (c) the network from random weights. Prints the
    accuracy table and writes transfer.json, transfer.csv and two plots.

    Examples:
      poselab mnist transfer --from runs/mnist --data data/fashion-mnist
      poselab mnist transfer --from runs/mnist --data data/fashion-mnist \\
          --labels 100,1000 --no-finetune --json
    """
    from poselab.mnist.data import download as fetch
    from poselab.mnist.mnist import format_table
    from poselab.mnist.mnist import transfer as run_transfer

    if download:
        data = fetch("fashion-mnist", data)
    counts = [item.strip() for item in labels.split(",") if item.strip()]
    result = run_transfer(from_run, data, counts, out=out, epochs=epochs, finetune=finetune,
                          seed=seed, test_limit=test_limit, device=device)
    if json_out:
        typer.echo(json_text(result))
        return
    typer.echo(format_table(result["table"]))
    typer.echo(f"plot: {result['plot']}\nconfusion matrix: {result['confusion_matrix']}")
