"""Project commands: demo, new, add-videos, info, check-labels, synthetic-video."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import ConfigArg, _parse_size, _split_list, json_text


def demo_cmd(
    out: Path = typer.Option(Path("poselab-demo"), "--out", help="Folder for the demo."),
    epochs: int = typer.Option(None, help="Training epochs (default: the demo preset's 80)."),
) -> None:
    """Run the whole workflow on a synthetic video, offline.

    Renders a video with known keypoints, creates a project, extracts keyframes,
    labels them from the ground truth (standing in for you), trains, evaluates,
    analyzes the video, filters, draws a labeled video and trajectory plots, then
    prints where everything is. Takes a few minutes on a CPU; re-running continues
    where it stopped.

    Examples:
      poselab demo
      poselab demo --out /tmp/demo --epochs 20
    """
    from poselab.demo import run_demo

    run_demo(out, echo=typer.echo, epochs=epochs)


def new_cmd(
    name: str = typer.Argument(..., help="Project (task) name, e.g. openfield.",
                               show_default=False),
    experimenter: str = typer.Option(..., "--experimenter", "-e",
                                     help="Annotator, the project's scorer."),
    videos: list[Path] = typer.Option(..., "--videos", "-v", help="Video file; repeat for "
                                      "more."),
    bodyparts: str = typer.Option(None, help="Comma-separated bodyparts, e.g. snout,tailbase "
                                  "(default: DeepLabCut's placeholders, to edit in "
                                  "config.yaml)."),
    copy_videos: bool = typer.Option(False, "--copy-videos",
                                     help="Copy the videos into videos/ (default: symlink)."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to create the project."),
) -> None:
    """Create a project: config.yaml, videos/, labeled-data/.

    The folder is <NAME>-<experimenter>-<date>/ and config.yaml uses DeepLabCut's
    keys. Every video is checked before anything is written.

    Examples:
      poselab new openfield -e alice -v mouse1.mp4 -v mouse2.mp4
      poselab new openfield -e alice -v mouse1.mp4 --bodyparts snout,tailbase
      poselab new openfield -e alice -v /data/mouse1.mp4 --copy-videos --dir ~/pj
    """
    from poselab.io.project import create_project

    config = create_project(name, experimenter, list(videos), _split_list(bodyparts),
                            copy_videos, directory)
    typer.echo(f"created {config}")


def add_videos_cmd(
    config: Path = ConfigArg,
    videos: list[Path] = typer.Argument(..., help="Video file(s) to add.", show_default=False),
    copy_videos: bool = typer.Option(False, "--copy-videos",
                                     help="Copy the videos into videos/ (default: symlink)."),
    rename: bool = typer.Option(False, "--rename", help="Add a video whose name is taken "
                                "as <stem>-1.<ext> (the next free name) instead of stopping."),
) -> None:
    """Add videos to an existing project.

    Each video is linked (or copied) into videos/ and gets a labeled-data/<stem>/
    folder and an entry in config.yaml's video_sets. Nothing in videos/ is ever
    overwritten: a name that is taken stops with an error (or, with --rename, the
    video gets the next free name).

    Example:
      poselab add-videos openfield-alice-2026-11-26/config.yaml mouse3.mp4
    """
    from poselab.io.project import add_videos

    for path in add_videos(config, list(videos), copy_videos, rename):
        typer.echo(f"added {path}")


def info_cmd(
    config: Path = ConfigArg,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a project's bodyparts, videos and labeled frames.

    Lists each video with its frame count, fps and size, and each labeled-data
    folder with its labeled frames.
    """
    from poselab.io.info import format_info, project_info

    info = project_info(config)
    typer.echo(json_text(info, indent=2) if as_json else format_info(info))


def check_labels_cmd(config: Path = ConfigArg) -> None:
    """Draw every labeled frame and list likely left/right label swaps.

    Writes the images into labeled-data/<stem>_labeled/ in the config's colormap,
    so wrong labels are easy to spot. Then lists the frames where a left/right pair
    (leftear/rightear, or config.yaml flip_pairs) lies on the other side of the body
    than in nearly every other frame: most likely labeled the wrong way round.
    """
    from poselab.pose.flip import label_swaps
    from poselab.viz.plots import check_labels

    written = check_labels(config)
    folders = sorted({str(p.parent) for p in written})
    typer.echo(f"drew {len(written)} labeled frames into: " + ", ".join(folders))
    swaps = label_swaps(config)
    for path, left, right in swaps:
        typer.echo(f"  {path.parent.name}/{path.name}: {left} and {right} look swapped")
    typer.echo(f"{len(swaps)} frame(s) with {'likely' if swaps else 'no'} left/right swaps"
               + (": check them in poselab label" if swaps else ""))


def synthetic_video_cmd(
    path: Path = typer.Argument(..., help="Output video (.mp4 or .avi).", show_default=False),
    frames: int = typer.Option(300, help="Number of frames."),
    size: str = typer.Option("320x240", help="WIDTHxHEIGHT in pixels."),
    seed: int = typer.Option(0, help="Random seed (same seed, same video)."),
) -> None:
    """Render a synthetic animal video with its ground truth.

    The ground truth goes beside the video as <stem>_groundtruth.h5, in the layout
    of poselab's predictions.

    Example:
      poselab synthetic-video mouse.mp4 --frames 300 --size 320x240 --seed 0
    """
    from poselab.demo import write_synthetic_video

    width, height = _parse_size(size)
    video, truth = write_synthetic_video(path, frames, (width, height), seed)
    typer.echo(f"wrote {video} and {truth}")
