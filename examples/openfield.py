"""The real workflow on DeepLabCut's openfield example, with the Python API.

DeepLabCut ships this project (one mouse in an open field, 116 frames labeled by Pranav,
a 2,330-frame 640x480 video). The script copies it (the original is never modified), then:
registers the video, trains a preset on a seeded 50% train / 50% test split (the split
DeepLabCut's own benchmark uses), evaluates, analyzes the whole video, filters the
predictions, draws a labeled video and trajectory plots, extracts outlier frames for
correction, and prints what it reached. Each step is one API call; the comments give the
equivalent `poselab` command.

    python examples/openfield.py PATH/TO/openfield-Pranav-2018-10-30 --out openfield-run
        [--preset fast_lite0] [--minutes 20]

Re-running with the same --out continues an interrupted training and reuses finished
steps. The results this reached are in the README (section "The openfield example").
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import poselab
from poselab.io.project import open_project


def copy_project(src: Path, dest: Path) -> Path:
    """A writable copy of a DeepLabCut project; returns its config.yaml."""
    if not (src / "config.yaml").is_file():
        raise SystemExit(f"{src}: no config.yaml (expected a DeepLabCut project folder)")
    if not dest.exists():
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*_labeled"))
        for p in [dest, *dest.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    return dest / "config.yaml"


def register_videos(config: Path) -> list[Path]:
    """DeepLabCut's example lists a placeholder instead of its video: list the real ones."""
    project = open_project(config)
    for key in [k for k in project.cfg["video_sets"] if "AUTOMATICALLY UPDATED" in str(k)]:
        del project.cfg["video_sets"][key]
    project.save()
    videos = sorted((project.root / "videos").glob("*.mp4"))
    listed = {Path(v.path).resolve() for v in open_project(config).videos}
    new = [v for v in videos if v.resolve() not in listed]
    if new:
        poselab.add_videos(config, new)  # poselab add-videos config.yaml VIDEO
    return videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="the openfield-Pranav-2018-10-30 folder")
    parser.add_argument("--out", type=Path, default=Path("openfield-run"))
    parser.add_argument("--preset", default="fast_lite0", help="training preset (configs/)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    args = parser.parse_args()

    config = copy_project(args.project, args.out / "openfield")
    (video,) = register_videos(config)
    print(poselab.format_info(poselab.project_info(config)))  # poselab info config.yaml

    # poselab train config.yaml --preset fast_lite0 --train-fraction 0.5 --max-minutes 20
    run = config.parent / "models" / args.preset
    if (run / "last.pt").is_file():
        run = poselab.train(config, resume=run)  # poselab train ... --resume fast_lite0
    else:
        cfg = poselab.resolve_config(args.preset, {"train_fraction": 0.5, "seed": 0,
                                                   "max_minutes": args.minutes})
        run = poselab.train(config, cfg, name=args.preset)

    result = poselab.evaluate(run, plot=True)  # poselab evaluate models/fast_lite0 --plot
    print(poselab.format_evaluation(result))

    # poselab analyze models/fast_lite0 videos/m3v1mp4.mp4 --dest analysis
    dest = args.out / "analysis"
    (predictions,) = poselab.analyze_videos(run, [video], dest=dest)
    meta = poselab.read_meta(predictions)
    # poselab filter PREDICTIONS.h5 --method median --config config.yaml
    pcutoff = poselab.open_project(config).pcutoff
    filtered = poselab.filter_predictions(predictions, method="median", window=5,
                                          pcutoff=pcutoff)
    # poselab labeled-video VIDEO FILTERED.h5 --config config.yaml --trail 10
    started = time.monotonic()
    labeled = poselab.make_labeled_video(video, filtered, dest=dest, config=config, trail=10)
    drawing = time.monotonic() - started
    plots = poselab.plot_trajectories(filtered, dest=dest, config=config)
    # poselab extract-outliers config.yaml VIDEO PREDICTIONS.h5 --n 10
    outliers = poselab.extract_outliers(config, video, predictions, n=10)

    test = result["test"]
    summary = {
        "preset": args.preset, "run": str(run),
        "test_mean_px_error": round(test["mean_px_error"], 2),
        "test_rmse_px": round(test["rmse"], 2), "test_pck5": round(test["pck5"], 3),
        "train_mean_px_error": round(result["train"]["mean_px_error"], 2),
        "analysis_frames_per_s": meta["frames_per_second"], "analysis_seconds": meta["seconds"],
        "frames": meta["rows"], "missing_frames": meta["missing_frames"],
        "labeled_video_seconds": round(drawing, 1),
    }
    print("\nwhere everything is:")
    for label, path in [("project", config), ("trained model", run),
                        ("evaluation images", run / "evaluation"), ("predictions", predictions),
                        ("filtered", filtered), ("labeled video", labeled),
                        ("plots", plots[0].parent),
                        ("outlier frames", config.parent / "labeled-data" / video.stem)]:
        print(f"  {label + ':':19s}{path}")
    print(f"  ({len(outliers.frames)} outlier frames to correct with `poselab label "
          f"{config}`)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
