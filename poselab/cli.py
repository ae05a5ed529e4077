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


def _mount_subapps() -> None:
    from poselab.mnist_cli import mnist_app

    app.add_typer(mnist_app, name="mnist", help="MNIST transfer-learning warmup.")


try:
    _mount_subapps()
except ImportError:  # pragma: no cover - sub-app still being written
    pass


def main() -> None:
    """Console-script entry point."""
    app(prog_name="poselab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
