"""Commands that say how far trajectories can be trusted: calibrate, smooth, report."""

from __future__ import annotations

from pathlib import Path

import typer


def calibrate_cmd(
    run: Path = typer.Argument(..., help="A run dir (models/<run>) trained without a "
                               "validation split.", show_default=False),
    folds: int = typer.Option(3, help="Fold models to train; each trains on (folds - 1) / "
                              "folds of the training frames and predicts the rest."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Time budget of each fold "
                                      "model (default: the run's own)."),
    epochs: int = typer.Option(None, help="Epochs of each fold model (default: the run's)."),
) -> None:
    """Calibrate a run's likelihoods by cross-fitting on its training frames.

    A run with a validation split is calibrated when training ends; this is for runs
    without one. Trains FOLDS models with the run's options into <run>/crossfit/,
    each predicting the training frames it did not see, fits the map from likelihood
    to P(within r px) on those predictions and saves it as <run>/calibration.json
    (evaluate, analyze and export apply it). The test split is not used. Takes
    FOLDS trainings; an interrupted job resumes where it stopped.

    Examples:
      poselab calibrate models/efficientnet_lite0-20261129-101500
      poselab calibrate models/efficientnet_lite0-20261129-101500 --folds 2 --max-minutes 10
    """
    from poselab.pose.crossfit import crossfit_calibration

    fitted, raw_ece = crossfit_calibration(run, folds, max_minutes=max_minutes, epochs=epochs)
    typer.echo(f"likelihood calibrated ({fitted.method}, {fitted.source}); raw ECE on the "
               f"held-out predictions {raw_ece:.3f}")
    typer.echo(f"wrote {Path(run) / 'calibration.json'}")


def smooth_cmd(
    predictions: list[Path] = typer.Argument(..., help="Predictions .h5 file(s).",
                                             show_default=False),
    process_noise: float = typer.Option(None, "--process-noise", help="Process noise q in "
                                        "px^2/frame^3 for every keypoint (default: chosen "
                                        "per keypoint by maximum likelihood)."),
    observation: str = typer.Option("auto", help="Observation noise from: auto (ensemble "
                                    "variance and likelihood when a _variance.h5 is beside "
                                    "the file, else likelihood), likelihood, variance, both."),
    radius_px: float = typer.Option(5.0, "--radius-px", help="A likelihood p means within "
                                    "this many px of the truth with probability p."),
    outlier_px: float = typer.Option(50.0, "--outlier-px", help="Spread (px) of a prediction "
                                     "that is not within --radius-px."),
    iterations: int = typer.Option(2, help="Outlier re-weighting rounds after the first "
                                   "smoothing (0: plain Kalman smoothing)."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside each "
                              "input)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin."),
) -> None:
    """Kalman-smooth trajectories (constant velocity, forward and backward).

    Writes <stem>_smoothed.h5 in the same layout (beside each input unless --dest)
    and its posterior variance <stem>_smoothed_variance.h5; the input is not
    touched. Low-likelihood points and points far from the smoothed track
    count little, ensemble disagreement (a <stem>_variance.h5 beside the
    input) counts too, NaN frames are bridged, and frames before the first
    and after the last detection stay empty.

    Examples:
      poselab smooth videos/mouse1poselab_x.h5
      poselab smooth videos/*poselab_x.h5 --csv --dest smoothed
      poselab smooth mouse1poselab_x.h5 --process-noise 0.5 --observation likelihood
    """
    from poselab.analysis.smoothing import smooth_predictions

    for path in predictions:
        out = smooth_predictions(path, dest, csv, process_noise, observation, radius_px,
                                 outlier_px, iterations, echo=typer.echo)
        typer.echo(f"wrote {out}")


def report_cmd(
    predictions: list[Path] = typer.Argument(..., help="Predictions .h5 file(s).",
                                             show_default=False),
    video: Path = typer.Option(None, "--video", help="The analyzed video: adds thumbnails "
                               "of the worst frames (one predictions file only)."),
    config: Path = typer.Option(None, "--config", help="Project config.yaml: pcutoff and "
                                "skeleton (default: the run's, found through the analysis "
                                "metadata)."),
    pcutoff: float = typer.Option(None, help="Likelihood below which a point is unsure "
                                  "(default: the config's, else 0.6)."),
    jump_px: float = typer.Option(20.0, "--jump-px", help="A move between consecutive "
                                  "frames longer than this is a jump."),
    dest: Path = typer.Option(None, "--dest", help="Output folder (default: beside each "
                              "input)."),
) -> None:
    """Write a quality report (one self-contained HTML page) per predictions file.

    Writes <stem>_report.html: per bodypart a likelihood histogram, the fraction of
    frames below pcutoff, a timeline of low-likelihood and jump events, skeleton
    segment lengths over time, the worst frames with their predictions drawn
    (with --video) and a one-line verdict. The page makes no network request.

    Examples:
      poselab report videos/mouse1poselab_x.h5 --video videos/mouse1.mp4
      poselab report videos/*poselab_x.h5 --config config.yaml
    """
    from poselab.analysis.report import write_report
    from poselab.errors import PoselabError

    if video is not None and len(predictions) > 1:
        raise PoselabError("--video goes with one predictions file; got "
                           f"{len(predictions)}")
    for path in predictions:
        out = write_report(path, video=video, config=config, pcutoff=pcutoff,
                           jump_px=jump_px, dest=dest)
        typer.echo(f"wrote {out}")
