"""Labeling commands: extract-frames, label, extract-outliers."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import ConfigArg, _split_list


def extract_frames_cmd(
    config: Path = ConfigArg,
    videos: list[str] = typer.Option(
        None, "--videos", "-v", help="Video of the project (path, file name or stem); repeat "
        "for more (default: all videos in config.yaml's video_sets)."),
    n: int = typer.Option(None, "--n", "-n", help="New frames per video (default: config.yaml's "
                          "numframes2pick)."),
    method: str = typer.Option("kmeans", help="kmeans (visually diverse frames) or uniform "
                               "(evenly spaced)."),
    start: float = typer.Option(None, help="Fraction of the video to start at (default: "
                                "config.yaml's start)."),
    stop: float = typer.Option(None, help="Fraction of the video to stop at (default: "
                               "config.yaml's stop)."),
    crop: str = typer.Option(None, help="x1,x2,y1,y2 in pixels, recorded in config.yaml's "
                             "video_sets (default: the recorded crop, the full frame unless "
                             "changed)."),
    seed: int = typer.Option(0, help="k-means seed (same seed, same frames)."),
) -> None:
    """Pick keyframes to label from the project's videos.

    Writes them as labeled-data/<video stem>/img<index>.png. Re-running adds N
    new frames per video; existing images and labels are never touched. Bad input
    stops with a one-line error before anything is written.

    Examples:
      poselab extract-frames config.yaml
      poselab extract-frames config.yaml --n 20 --method kmeans --seed 1
      poselab extract-frames config.yaml -v mouse1 --start 0.5 --stop 1
      poselab extract-frames config.yaml -v mouse2.mp4 --crop 0,320,40,240
    """
    from poselab.io.frames import extract_frames

    result = extract_frames(config, videos or None, n, method, start, stop, crop, seed)
    for key, paths in result.frames.items():
        where = f" in {paths[0].parent}" if paths else ""
        typer.echo(f"{key}: {len(paths)} new frames{where}")


def label_cmd(
    config: Path = ConfigArg,
    folder: str = typer.Option(None, "--folder", help="Folder to open first, "
                               "labeled-data/<stem> (default: the first folder)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Bind address. Anything but loopback requires the printed "
                                  "token URL; for remote use prefer the SSH tunnel."),
    port: int = typer.Option(None, "--port", help="Port, 0-65535 (default: 8765, or a free "
                             "one when it is taken; 0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
) -> None:
    """Label frames in the browser (serves a local page).

    Prints the page's URL and serves it until Ctrl+C. Every edit is saved within a
    second to labeled-data/<stem>/CollectedData_<scorer>.h5 and .csv. The page
    also opens the project's videos: step through one and add frames to label.
    On a remote machine, run the printed `ssh -N -L ...` command on your computer
    and open the URL there. One labeler per project: a second one stops with an
    error naming the first one's URL.

    Examples:
      poselab label config.yaml
      poselab label config.yaml --folder labeled-data/mouse1 --port 8766
      poselab label config.yaml --no-browser
    """
    from poselab.labeler import serve

    serve(config, folder=folder, host=host, port=port, open_browser=not no_browser)


def extract_outliers_cmd(
    config: Path = ConfigArg,
    video: str = typer.Argument(..., help="Video of the project (path, file name or stem).",
                                show_default=False),
    predictions: Path = typer.Argument(..., help="Its predictions .h5 (from analyze).",
                                       show_default=False),
    n: int = typer.Option(None, "--n", "-n", help="Frames to extract (default: config.yaml's "
                          "numframes2pick); with fewer candidates all are taken."),
    criteria: str = typer.Option("jump,likelihood", help="Comma-separated: jump (a keypoint "
                                 "moves more than --jump-px), likelihood (below --pcutoff)."),
    jump_px: float = typer.Option(20.0, "--jump-px", help="Jump threshold in pixels."),
    pcutoff: float = typer.Option(None, help="Likelihood threshold (default: config.yaml's "
                                  "pcutoff)."),
    seed: int = typer.Option(0, help="k-means seed (same seed, same frames)."),
) -> None:
    """Extract frames with suspect predictions to correct.

    Picks up to N visually diverse frames where a keypoint jumps or has a low
    likelihood, writes them to labeled-data/<video stem>/img<index>.png and their
    predictions to machinelabels-iter<iteration>.h5, which `poselab label` shows
    for correction. Existing images and CollectedData files are never touched.

    Examples:
      poselab extract-outliers config.yaml mouse1.mp4 videos/mouse1poselab_x.h5
      poselab extract-outliers config.yaml mouse1 mouse1poselab_x.h5 --n 10
      poselab extract-outliers config.yaml mouse1 mouse1poselab_x.h5 \\
          --criteria likelihood --pcutoff 0.8
    """
    from poselab.analysis.outliers import extract_outliers

    result = extract_outliers(config, video, predictions, n, _split_list(criteria) or [],
                              jump_px, pcutoff, seed)
    for message in result.messages:
        typer.echo(message)
