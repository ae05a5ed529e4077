"""Active-learning commands: suggest (which frames to label next), learning-curve (how many)."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import ConfigArg, DeviceOpt, _split_list
from poselab.errors import PoselabError


def suggest_cmd(
    config: Path = ConfigArg,
    run: Path = typer.Argument(..., help="A trained run of this project (models/<run>); an "
                               "ensemble run ranks by its members' disagreement.",
                               show_default=False),
    n: int = typer.Option(20, "--n", "-n", help="Frames to suggest, over all videos."),
    videos: list[str] = typer.Option(None, "--videos", help="Only these videos of the project "
                                     "(path, file name or stem); repeat the option (default: "
                                     "all).", show_default=False, metavar="VIDEO"),
    candidates: int = typer.Option(1000, "--candidates", help="Frames scored per video, "
                                   "evenly spread over those not extracted yet."),
    batch_size: int = typer.Option(8, "--batch-size", help="Frames per forward pass."),
    device: str = DeviceOpt,
) -> None:
    """Suggest the frames most worth labeling next, from a trained model.

    Scores frames of the project's videos by how unsure the model is (an
    ensemble's disagreement, else the likelihood), keeps them unlike each other
    and unlike the frames already extracted, and writes the N best to
    labeled-data/<video stem>/img<index>.png exactly as extract-frames does,
    with the model's predictions in machinelabels-iter<iteration>.h5 to correct
    in `poselab label`, which lists them in its suggestions. Then label, train,
    and suggest again.

    Examples:
      poselab suggest config.yaml models/cpu-20261126-101500
      poselab suggest config.yaml models/cpu-ensemble-20261126-101500 --n 40
      poselab suggest config.yaml models/cpu-20261126-101500 --videos mouse2.mp4
    """
    from poselab.analysis.suggest import suggest_frames

    result = suggest_frames(config, run, n=n, videos=videos or None, candidates=candidates,
                            device=device, batch_size=batch_size)
    for s in result.suggestions:
        where = s.path if s.path is not None else f"{s.video} frame {s.index} (not written)"
        typer.echo(f"{where}  score {s.score:.3g}: {s.reason}")
    for message in result.messages:
        typer.echo(message)


def _parse_sizes(text: str | None) -> list[int] | None:
    parts = _split_list(text)
    if parts is None:
        return None
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise PoselabError(f"--sizes {text!r}: comma-separated whole numbers, e.g. "
                           "10,20,40") from None


def learning_curve_cmd(
    config: Path = ConfigArg,
    sizes: str = typer.Option(None, "--sizes", help="Numbers of labeled frames to train on, "
                              "comma-separated (default: 10,20,40,... and all frames outside "
                              "the test split)."),
    seeds: int = typer.Option(3, "--seeds", help="Runs per size (different subsets and "
                              "training seeds)."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Time budget of each "
                                      "training run (default: the preset's, e.g. 30 for "
                                      "cpu; without one, its epochs)."),
    target_px: float = typer.Option(None, "--target-px", help="Estimate the labeled frames "
                                    "needed to reach this mean test error (default: none)."),
    preset: str = typer.Option(None, help="Training preset or YAML file, as for train "
                               "(default: cpu on a CPU, resnet50 on a GPU)."),
    assignments: list[str] = typer.Option([], "--set", help="Any training option, key=value; "
                                          "repeat.", show_default=False, metavar="KEY=VALUE"),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Share of the labeled "
                                        "frames in the fixed test split."),
    out: Path = typer.Option(None, "--out", help="Folder for the CSV, PNG and fit "
                             "(default: <project>/learning-curve)."),
    keep_runs: bool = typer.Option(False, "--keep-runs", help="Keep every run's model "
                                   "under <out>/runs."),
) -> None:
    """Measure how test error falls with more labels, and how many are enough.

    Trains on nested subsets of the labeled frames (each larger subset contains
    the smaller) with one fixed test split that chooses nothing, --seeds times
    per size, fits error = a * n^-b + c, and prints the labels needed for
    --target-px with a bootstrap interval, or says that more labels will not
    help much when the curve has flattened. Writes learning-curve.csv,
    learning-curve.png and fit.json; a re-run with the same settings reuses the
    runs already in the CSV.

    Examples:
      poselab learning-curve config.yaml --max-minutes 10 --target-px 3
      poselab learning-curve config.yaml --sizes 10,20,40,80 --seeds 2
      poselab learning-curve config.yaml --preset fastest_lite0 --max-minutes 5
    """
    from poselab.analysis.learning_curve import learning_curve
    from poselab.pose.train_config import default_preset, resolve_config

    size_list = _parse_sizes(sizes)
    if preset is None:
        preset = default_preset("auto")
        typer.echo(f"recipe: preset {preset} (--preset chooses another)")
    cfg = resolve_config(preset, None, list(assignments))
    result = learning_curve(config, cfg, sizes=size_list, seeds=seeds, max_minutes=max_minutes,
                            target_px=target_px, out=out, test_fraction=test_fraction,
                            keep_runs=keep_runs, echo=typer.echo)
    for line in result.lines:
        typer.echo(line)
    typer.echo(f"table: {result.csv}\nplot: {result.png}")
