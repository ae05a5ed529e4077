"""`poselab convert`: to and from SLEAP, NWB (ndx-pose), COCO and Lightning Pose."""

from __future__ import annotations

from pathlib import Path

import typer


def convert_cmd(
    src: Path = typer.Argument(..., help="Predictions .h5/.csv, a project (config.yaml or "
                               "its folder), a .slp, a .nwb, a COCO .json, or a Lightning "
                               "Pose data folder.", show_default=False),
    to: str = typer.Option(..., "--to", help="slp, nwb, coco, lightning-pose, or dlc (into "
                           "poselab/DeepLabCut files).", show_default=False),
    out: Path = typer.Option(None, "--out", help="Output file, folder of .h5 files or new "
                             "project folder (default: beside SRC, named after it)."),
    video: Path = typer.Option(None, "--video", help="The analyzed video, for predictions "
                               "whose metadata does not name it (default: from the "
                               "metadata)."),
    config: Path = typer.Option(None, "--config", help="Project config.yaml whose skeleton "
                                "goes with exported predictions (default: the run's)."),
    images: Path = typer.Option(None, "--images", help="Folder of a COCO file's images "
                                "(default: the JSON's folder)."),
    csv: bool = typer.Option(False, "--csv", help="Also write the .csv twin of imported "
                             "predictions."),
) -> None:
    """Convert to or from SLEAP, NWB, COCO keypoints and Lightning Pose.

    Predictions go to SLEAP (.slp, predicted instances) or NWB (ndx-pose
    PoseEstimation); a project's labels go to SLEAP, COCO keypoints JSON or
    Lightning Pose's data layout. --to dlc reads those formats back into
    poselab/DeepLabCut files: predictions .h5 per video, or a new project with
    the images for labels. Round trips are exact where both formats hold the
    values.

    Examples:
      poselab convert videos/mouse1poselab_x.h5 --to slp
      poselab convert videos/mouse1poselab_x.h5 --to nwb --out mouse1.nwb
      poselab convert config.yaml --to coco --out labels.json
      poselab convert config.yaml --to lightning-pose --out lp-data
      poselab convert predictions.slp --to dlc --out videos/
      poselab convert lp-data --to dlc --out MyProject
    """
    from poselab.io.conversion import convert

    for path in convert(src, to, out, video=video, config=config, images=images, csv=csv):
        typer.echo(f"wrote {path}")
