"""Analysis commands: analyze, filter, labeled-video, plot-trajectories."""

from __future__ import annotations

from pathlib import Path

import typer

from poselab.cli.common import DeviceOpt, PrecisionOpt, RunArg


def analyze_cmd(
    run: Path = RunArg,
    videos: list[Path] = typer.Argument(..., help="Video files and/or folders of videos.",
                                        show_default=False),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside each video)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Frames per forward pass."),
    device: str = DeviceOpt,
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin of each .h5."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-analyze videos that "
                                   "already have predictions (default: skip them)."),
    report: bool = typer.Option(False, "--report", help="Also write each video's quality "
                                "report, <stem>_report.html (see poselab report)."),
    precision: str = PrecisionOpt,
    scorer: str = typer.Option(None, "--scorer", help="Scorer of the output files (default: "
                               "poselab_<backbone>_<run>); a DeepLabCut shuffle's scorer "
                               "lets DeepLabCut's own tools find them."),
    test_flip: bool = typer.Option(None, "--test-flip/--no-test-flip", help="Average each "
                                   "frame with its mirror image (default: when the run was "
                                   "trained to). --no-test-flip is about twice as fast and "
                                   "a little less accurate.", show_default=False),
) -> None:
    """Predict keypoints on every frame of one or more videos.

    Writes <video stem><scorer>.h5 in DeepLabCut's layout (one row per frame) and
    <video stem><scorer>_meta.json (with DeepLabCut's _meta.pickle) per video, and
    prints the .h5 paths. Videos already analyzed are skipped unless --overwrite;
    an undecodable frame gets x, y NaN and likelihood 0. The model computes in
    fp32 unless --precision says otherwise (recorded in the metadata).

    Examples:
      poselab analyze models/resnet50-20261126-101500 videos/
      poselab analyze models/resnet50-20261126-101500 mouse1.mp4 mouse2.mp4 --csv
      poselab analyze models/resnet50-20261126-101500 videos/ --report
      poselab analyze models/resnet50-20261126-101500 videos/ --dest results \\
          --device cuda --batch-size 32
    """
    from poselab.analysis.analyze import analyze_videos

    for path in analyze_videos(run, videos, dest=dest, batch_size=batch_size, device=device,
                               csv=csv, overwrite=overwrite, report=report,
                               precision=precision, scorer=scorer, test_flip=test_flip):
        typer.echo(str(path))


def filter_cmd(
    predictions: list[Path] = typer.Argument(..., help="Predictions .h5 file(s).",
                                             show_default=False),
    method: str = typer.Option("median", help="median (removes jumps) or savgol (smooths "
                               "jitter)."),
    window: int = typer.Option(5, help="Filter length in frames (odd, >= 3)."),
    polyorder: int = typer.Option(3, help="Savitzky-Golay polynomial order (< window); "
                                  "ignored by median."),
    pcutoff: float = typer.Option(None, help="Likelihood below which points are missing "
                                  "(default: the --config's pcutoff, else 0.6)."),
    config: Path = typer.Option(None, "--config", help="Project config.yaml, for its pcutoff."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside each "
                              "input)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin."),
    mask: bool = typer.Option(False, "--mask-below-pcutoff", help="Write NaN x, y for "
                              "points below pcutoff that no short-gap interpolation covers "
                              "(default: every row has coordinates, as in DeepLabCut)."),
) -> None:
    """Smooth predictions or remove jumps (median, savgol).

    Writes <stem>_filtered.h5 (beside each input unless --dest); the input is
    not touched. Points below pcutoff do not steer the filter: short gaps are
    interpolated from their confident neighbours, longer ones keep the filtered
    raw predictions, so every row has x and y as in DeepLabCut's filtered files
    (--mask-below-pcutoff writes NaN there instead). The likelihood column is
    kept; the first and last frames are not pulled toward 0.

    Examples:
      poselab filter videos/mouse1poselab_x.h5
      poselab filter videos/mouse1poselab_x.h5 --config config.yaml --csv
      poselab filter videos/*.h5 --method savgol --window 7 --polyorder 3
      poselab filter videos/mouse1poselab_x.h5 --mask-below-pcutoff
    """
    from poselab.analysis.postprocess import filter_predictions
    from poselab.io.project import resolve_pcutoff

    cutoff = resolve_pcutoff(pcutoff, config)
    for path in predictions:
        out = filter_predictions(path, method, window, polyorder, cutoff, dest, csv,
                                 mask_below_pcutoff=mask)
        typer.echo(f"wrote {out}")


def labeled_video_cmd(
    video: Path = typer.Argument(..., help="The analyzed video.", show_default=False),
    predictions: Path = typer.Argument(..., help="Its predictions .h5.", show_default=False),
    config: Path = typer.Option(None, "--config", help="Project config.yaml: colormap, "
                                "skeleton, dotsize, pcutoff."),
    pcutoff: float = typer.Option(None, help="Hide keypoints below this likelihood "
                                  "(default: the --config's pcutoff, else 0.6)."),
    trail: int = typer.Option(0, help="Draw each keypoint's path over this many previous "
                              "frames (0: none)."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside the "
                              "predictions)."),
) -> None:
    """Draw the predicted keypoints on a copy of the video.

    Writes <video stem><scorer>_labeled.mp4, with the config's colors and skeleton
    when --config is given.

    Examples:
      poselab labeled-video videos/mouse1.mp4 videos/mouse1poselab_x.h5
      poselab labeled-video mouse1.mp4 mouse1poselab_x_filtered.h5 \\
          --config config.yaml --trail 10
    """
    from poselab.viz.video_output import make_labeled_video

    typer.echo(f"wrote {make_labeled_video(video, predictions, dest, pcutoff, config, trail)}")


def plot_trajectories_cmd(
    predictions: Path = typer.Argument(..., help="Predictions .h5.", show_default=False),
    config: Path = typer.Option(None, "--config", help="Project config.yaml: colormap, "
                                "pcutoff."),
    pcutoff: float = typer.Option(None, help="Omit positions below this likelihood "
                                  "(default: the --config's pcutoff, else 0.6)."),
    dest: Path = typer.Option(None, "--dest", help="Folder that receives plot-poses/ "
                              "(default: the predictions' folder)."),
) -> None:
    """Plot trajectories and likelihood over time (PNG).

    Writes plot-poses/<stem>/: the trajectories, x and y over time, the likelihood
    and a histogram of frame-to-frame displacement.

    Example:
      poselab plot-trajectories videos/mouse1poselab_x.h5 --config config.yaml
    """
    from poselab.viz.trajectory_plots import plot_trajectories

    written = plot_trajectories(predictions, dest, pcutoff, config)
    typer.echo(f"wrote {len(written)} plots into {written[0].parent}")
