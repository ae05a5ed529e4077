"""The `poselab` command line: a thin typer shell over the Python API.

Each command parses its options and calls ONE API function. Heavy imports (torch, cv2,
pandas) happen inside the commands so `poselab --help` is instant. A `PoselabError` becomes
a one-line `error: ...` on stderr and exit code 2 (`poselab --debug ...` shows the
traceback).

Adding a command: write the API function in its module, then a function here that calls it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from poselab.errors import PoselabError


class _Group(TyperGroup):
    """Turns user errors into one line + exit code 2 instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PoselabError as exc:
            if ctx.params.get("debug") or os.environ.get("POSELAB_DEBUG"):
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="Animal pose estimation: projects, keyframes, labeling, training, video analysis. "
    "Reads and writes DeepLabCut projects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigArg = typer.Argument(..., help="The project's config.yaml (or its folder).")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """poselab: animal pose estimation, DeepLabCut-compatible."""


def _split_list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@app.command("new")
def new_cmd(
    name: str = typer.Argument(..., help="Project (task) name, e.g. openfield."),
    experimenter: str = typer.Option(..., "--experimenter", "-e", help="Annotator (scorer)."),
    videos: list[Path] = typer.Option(..., "--videos", "-v", help="Video file(s); repeat."),
    bodyparts: str = typer.Option(None, help="Comma-separated bodyparts, e.g. snout,tailbase."),
    copy_videos: bool = typer.Option(False, "--copy-videos", help="Copy instead of symlink."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the project."),
) -> None:
    """Create a project folder <NAME>-<experimenter>-<date>/ with config.yaml.

    Example: poselab new openfield -e alice -v mouse1.mp4 -v mouse2.mp4 --bodyparts snout,tail
    """
    from poselab.project import create_project

    config = create_project(name, experimenter, list(videos), _split_list(bodyparts),
                            copy_videos, directory)
    typer.echo(f"created {config}")


@app.command("add-videos")
def add_videos_cmd(
    config: Path = ConfigArg,
    videos: list[Path] = typer.Argument(..., help="Video file(s) to add."),
    copy_videos: bool = typer.Option(False, "--copy-videos", help="Copy instead of symlink."),
) -> None:
    """Add videos to a project (videos/ and labeled-data/<stem>/)."""
    from poselab.project import add_videos

    for path in add_videos(config, list(videos), copy_videos):
        typer.echo(f"added {path}")


@app.command("info")
def info_cmd(
    config: Path = ConfigArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Bodyparts, videos (frames, fps, size) and labeled frames of a project."""
    from poselab.info import format_info, project_info

    info = project_info(config)
    typer.echo(json.dumps(info, indent=2) if as_json else format_info(info))


@app.command("check-labels")
def check_labels_cmd(config: Path = ConfigArg) -> None:
    """Draw every labeled frame with its keypoints into labeled-data/<stem>_labeled/."""
    from poselab.plots import check_labels

    written = check_labels(config)
    folders = sorted({str(p.parent) for p in written})
    typer.echo(f"drew {len(written)} labeled frames into: " + ", ".join(folders))


@app.command("synthetic-video")
def synthetic_video_cmd(
    path: Path = typer.Argument(..., help="Output video (.mp4 or .avi)."),
    frames: int = typer.Option(300, help="Number of frames."),
    size: str = typer.Option("320x240", help="WIDTHxHEIGHT."),
    seed: int = typer.Option(0, help="Random seed (same seed, same video)."),
) -> None:
    """Render a synthetic animal video and its ground truth (<stem>_groundtruth.h5)."""
    from poselab.demo import write_synthetic_video

    width, height = _parse_size(size)
    video, truth = write_synthetic_video(path, frames, (width, height), seed)
    typer.echo(f"wrote {video} and {truth}")


def _parse_size(size: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise PoselabError(f"--size '{size}': expected WIDTHxHEIGHT, e.g. 320x240") from None
    return w, h


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("poselab-demo"), "--out", help="Folder for the demo."),
) -> None:
    """Run the workflow on a synthetic video: make a video, create a project, show info."""
    from poselab.demo import run_demo

    run_demo(out, echo=typer.echo)


@app.command("train")
def train_cmd(
    config: Path = ConfigArg,
    preset: str = typer.Option(None, help="Preset in configs/ (dlc_resnet50, fast_lite0, "
                               "...) or a YAML file of training options."),
    backbone: str = typer.Option(None, help="resnet18/34/50/101 or efficientnet_lite0 "
                                 "(default: resnet50)."),
    weights: str = typer.Option(None, help="imagenet, none, or a state-dict file "
                                "(default: imagenet)."),
    epochs: int = typer.Option(None, help="Training epochs (default: 200)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step (default: 8)."),
    device: str = typer.Option(None, help="auto, cpu, cuda or mps (default: auto)."),
    train_fraction: float = typer.Option(None, "--train-fraction",
                                         help="(default: config.yaml TrainingFraction)"),
    seed: int = typer.Option(None, help="Seed of the split and augmentation (default: 0)."),
    max_minutes: float = typer.Option(None, "--max-minutes",
                                      help="Stop cleanly (evaluate + save) after this long."),
    assignments: list[str] = typer.Option([], "--set", help="Any option, key=value "
                                          "(e.g. --set lr=1e-3 --set augment.rotation=15)."),
    name: str = typer.Option(None, help="Run folder name under models/."),
    resume: str = typer.Option(None, help="Continue a run (its folder or name)."),
) -> None:
    """Train a pose model on the project's labeled frames (run dir under models/).

    Examples:
      poselab train config.yaml --preset fast_lite0 --max-minutes 30
      poselab train config.yaml --backbone resnet50 --epochs 200 --device cuda
      poselab train config.yaml --resume resnet50-20261126-101500
      torchrun --nproc_per_node 4 -m poselab train config.yaml --device cuda
    """
    from poselab.train import train
    from poselab.train_config import resolve_config

    flags = {"backbone": backbone, "weights": weights, "batch_size": batch_size,
             "device": device, "train_fraction": train_fraction, "seed": seed}
    if resume and (preset or assignments or any(v is not None for v in flags.values())):
        raise PoselabError("--resume continues a run with its own options; only --epochs and "
                           "--max-minutes may change")
    cfg = None if resume else resolve_config(preset, flags, list(assignments))
    run = train(config, cfg, name=name, resume=resume, epochs=epochs, max_minutes=max_minutes)
    typer.echo(f"run: {run}")


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="A run dir (models/<run>)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: bool = typer.Option(False, "--plot", help="Draw ground truth vs prediction images."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    which: str = typer.Option("best", help="Checkpoint: best or last."),
) -> None:
    """Pixel errors (mean, RMSE, with pcutoff), PCK@5px and a per-bodypart table."""
    from poselab.evaluate import evaluate, format_evaluation

    result = evaluate(run, plot=plot, device=device, which=which)
    if as_json:
        typer.echo(json.dumps({**result, "train_mean_px_error": result["train"]["mean_px_error"],
                               "test_mean_px_error": result["test"]["mean_px_error"]}))
    else:
        typer.echo(format_evaluation(result))
        if plot:
            typer.echo(f"images: {Path(run) / 'evaluation'}")


@app.command("label")
def label_cmd(
    config: Path = ConfigArg,
    folder: str = typer.Option(None, "--folder", help="Folder to open first: labeled-data/<stem>."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Bind address. Anything but loopback requires the printed "
                                  "token URL; for remote use prefer the SSH tunnel."),
    port: int = typer.Option(None, "--port", help="Port (default 8765, or a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
) -> None:
    """Label frames in the browser: serves the labeling page and prints its URL.

    Every edit is saved to labeled-data/<stem>/CollectedData_<scorer>.h5 and .csv within a
    second. On a remote machine, run the printed `ssh -N -L ...` command on your computer and
    open the URL there.
    """
    from poselab.labeler import serve

    serve(config, folder=folder, host=host, port=port, open_browser=not no_browser)


@app.command("extract-frames")
def extract_frames_cmd(
    config: Path = ConfigArg,
    videos: list[str] = typer.Option(
        None, "--videos", "-v", help="Video of the project (path, file name or stem); repeat. "
        "Default: all videos in config video_sets."),
    n: int = typer.Option(None, "--n", "-n", help="New frames per video (default: config "
                          "numframes2pick)."),
    method: str = typer.Option("kmeans", help="kmeans (diverse frames) or uniform (evenly "
                               "spaced)."),
    start: float = typer.Option(None, help="Fraction of the video to start at (default: "
                                "config start)."),
    stop: float = typer.Option(None, help="Fraction of the video to stop at (default: config "
                               "stop)."),
    crop: str = typer.Option(None, help="x1,x2,y1,y2 in pixels, recorded in config video_sets "
                             "(default: the recorded crop)."),
    seed: int = typer.Option(0, help="k-means seed (same seed, same frames)."),
) -> None:
    """Pick keyframes to label into labeled-data/<video stem>/img<index>.png.

    Re-running adds N new frames per video; existing images and labels are never touched.
    Example: poselab extract-frames config.yaml --n 20 --method kmeans
    """
    from poselab.frames import extract_frames

    result = extract_frames(config, videos or None, n, method, start, stop, crop, seed)
    for key, paths in result.frames.items():
        where = f" in {paths[0].parent}" if paths else ""
        typer.echo(f"{key}: {len(paths)} new frames{where}")


@app.command("analyze")
def analyze_cmd(
    run: Path = typer.Argument(..., help="A run dir (models/<run>)."),
    videos: list[Path] = typer.Argument(..., help="Video files and/or folders of videos."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside each video)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Frames per forward pass."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin of each .h5."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-analyze analyzed videos."),
) -> None:
    """Predict keypoints on every frame: <video stem><scorer>.h5 (+ _meta.json) per video.

    Videos already analyzed are skipped unless --overwrite. Undecodable frames become NaN rows.
    Example: poselab analyze models/resnet50-20261126 videos/ --dest results --csv
    """
    from poselab.analyze import analyze_videos

    for path in analyze_videos(run, videos, dest=dest, batch_size=batch_size, device=device,
                               csv=csv, overwrite=overwrite):
        typer.echo(str(path))


@app.command("filter")
def filter_cmd(
    predictions: list[Path] = typer.Argument(..., help="Predictions .h5 file(s)."),
    method: str = typer.Option("median", help="median (removes jumps) or savgol (smooths)."),
    window: int = typer.Option(5, help="Filter length in frames (odd, >= 3)."),
    polyorder: int = typer.Option(3, help="Savitzky-Golay polynomial order (< window)."),
    pcutoff: float = typer.Option(None, help="Likelihood below which points are missing "
                                  "(default: the config's pcutoff, else 0.6)."),
    config: Path = typer.Option(None, "--config", help="Project config.yaml (for pcutoff)."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside input)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin."),
) -> None:
    """Filter predictions into <stem>_filtered.h5; low-likelihood points and long gaps stay
    missing, the first and last frames are not pulled toward 0.

    Example: poselab filter videos/mouse1DLC_x.h5 --method savgol --window 7
    """
    from poselab.postprocess import filter_predictions

    cutoff = pcutoff if pcutoff is not None else _config_pcutoff(config)
    for path in predictions:
        out = filter_predictions(path, method, window, polyorder, cutoff, dest, csv)
        typer.echo(f"wrote {out}")


@app.command("labeled-video")
def labeled_video_cmd(
    video: Path = typer.Argument(..., help="The analyzed video."),
    predictions: Path = typer.Argument(..., help="Its predictions .h5."),
    config: Path = typer.Option(None, "--config", help="config.yaml: colors, skeleton, dotsize."),
    pcutoff: float = typer.Option(None, help="Hide keypoints below this likelihood "
                                  "(default: the config's pcutoff, else 0.6)."),
    trail: int = typer.Option(0, help="Draw each keypoint's path over this many frames."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside predictions)."),
) -> None:
    """Draw the predicted keypoints on every frame: <video stem><scorer>_labeled.mp4.

    Example: poselab labeled-video mouse1.mp4 mouse1DLC_x.h5 --config config.yaml --trail 10
    """
    from poselab.video_output import make_labeled_video

    cutoff = pcutoff if pcutoff is not None else _config_pcutoff(config)
    typer.echo(f"wrote {make_labeled_video(video, predictions, dest, cutoff, config, trail)}")


@app.command("plot-trajectories")
def plot_trajectories_cmd(
    predictions: Path = typer.Argument(..., help="Predictions .h5."),
    config: Path = typer.Option(None, "--config", help="config.yaml (colormap, pcutoff)."),
    pcutoff: float = typer.Option(None, help="Omit positions below this likelihood "
                                  "(default: the config's pcutoff, else 0.6)."),
    dest: Path = typer.Option(None, "--dest", help="Folder for plot-poses/ (default: beside it)."),
) -> None:
    """PNG plots: trajectories, x/y and likelihood over time, frame-to-frame displacement."""
    from poselab.trajectory_plots import plot_trajectories

    cutoff = pcutoff if pcutoff is not None else _config_pcutoff(config)
    written = plot_trajectories(predictions, dest, cutoff, config)
    typer.echo(f"wrote {len(written)} plots into {written[0].parent}")


def _config_pcutoff(config: Path | None) -> float:
    if config is None:
        return 0.6
    from poselab.project import open_project

    return open_project(config).pcutoff


@app.command("extract-outliers")
def extract_outliers_cmd(
    config: Path = ConfigArg,
    video: str = typer.Argument(..., help="Video of the project (path, file name or stem)."),
    predictions: Path = typer.Argument(..., help="Its predictions .h5 (from analyze)."),
    n: int = typer.Option(None, "--n", "-n", help="Frames to extract (default: config "
                          "numframes2pick); fewer candidates: all are taken."),
    criteria: str = typer.Option("jump,likelihood", help="Comma-separated: jump (a keypoint "
                                 "moves more than --jump-px), likelihood (below --pcutoff)."),
    jump_px: float = typer.Option(20.0, "--jump-px", help="Jump threshold in pixels."),
    pcutoff: float = typer.Option(None, help="Likelihood threshold (default: config pcutoff)."),
    seed: int = typer.Option(0, help="k-means seed (same seed, same frames)."),
) -> None:
    """Extract outlier frames to correct: labeled-data/<video stem>/img<index>.png plus their
    predictions in machinelabels-iter<iteration>.h5 (shown by `poselab label`).

    Existing images and CollectedData files are never touched.
    Example: poselab extract-outliers config.yaml mouse1.mp4 mouse1DLC_x.h5 --n 10
    """
    from poselab.outliers import extract_outliers

    result = extract_outliers(config, video, predictions, n, _split_list(criteria) or [],
                              jump_px, pcutoff, seed)
    for message in result.messages:
        typer.echo(message)


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="A run dir (models/<run>)."),
    fmt: str = typer.Option("torchscript", "--format", help="torchscript or onnx."),
    dest: Path = typer.Option(None, "--dest", help="Folder for export/ (default: the run dir)."),
    which: str = typer.Option("best", "--which", help="Checkpoint: best or last."),
) -> None:
    """Export the network (model.pt or model.onnx) and preprocessing.json (how to prepare
    frames and decode outputs) into <dest or run>/export/, checked against PyTorch first.

    Example: poselab export models/resnet50-20261126 --format onnx --dest deploy
    """
    from poselab.export import export_model

    for path in export_model(run, fmt, dest, which):
        typer.echo(f"wrote {path}")


def _mount_subapps() -> None:
    from poselab.mnist_cli import mnist_app  # imports torch lazily, inside its commands

    app.add_typer(mnist_app, name="mnist", help="MNIST transfer-learning warmup.")


_mount_subapps()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="poselab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
