"""Real-time latency of `poselab live` on the openfield video played at 30, 60 and 100 frames/s.

For each model (`--run NAME=RUN_DIR`, e.g. the fastest preset and the default model) and each
rate, this starts `poselab live RUN --source VIDEO --fps RATE --record ...` as its own process
(the user's path: calibration, playback thread, one-slot buffer, JSON lines), reads the JSON
lines from its stdout as they come, and reports per-frame end-to-end latency (capture
timestamp to published pose, as measured by poselab, and again on arrival at this reader),
p50/p95/p99, frames dropped, frames the player delivered late, and the runtime chosen with
its calibration figures. Targets (issue 19), 2 CPU cores, fastest preset, 640x480 input:
p99 <= 15 ms and no frame dropped at 60 frames/s.

`--forward` also measures forward prediction (fastest model, 60 frames/s): the model's own
offline predictions of every frame (batch Predictor, the same weights) interpolated to each
pose's publication time serve as the reference; the error of the measured (stale) pose and of
the forward-predicted pose against it are reported. The model needs some training for this to
mean anything (an untrained model's "trajectory" is noise).

`--dlclive-python VENV/bin/python` runs DeepLabCut-Live's own `benchmark()` in that
interpreter (a separate venv with deeplabcut-live installed) on the same video with a DeepLabCut
3.0 resnet_50 model in its exported layout, built with random weights by DeepLabCut-Live's
own model code (latency does not depend on the weights; DeepLabCut itself is not installed to
export a trained one). DeepLabCut-Live's benchmark feeds frames back to back (no playback
clock), so its figures are per-frame processing times; the drop share at a rate follows from
them.

Without --run, untrained runs of both models are built in a temporary folder.

    python benchmarks/bench_live.py --run fastest=models/fastest_lite0 --run default=models/resnet50
        [--rates 30,60,100] [--seconds 20] [--runtime auto | --runtime default=onnx]
        [--threads 0] [--forward]
        [--dlclive-python /tmp/dlclive-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "openfield-Pranav-2018-10-30" / "videos" / "m3v1mp4.mp4"
BODYPARTS = ["snout", "leftear", "rightear", "tailbase"]
UNTRAINED = {  # name -> PoseNet options + input_scale, as the presets build them
    "fastest": dict(backbone_name="efficientnet_lite0", head_width=128, input_scale=0.5),
    "default": dict(backbone_name="resnet50"),
}


def make_untrained_run(root: Path, name: str) -> Path:
    import torch
    import yaml

    from poselab.pose.engine import save_checkpoint
    from poselab.pose.heatmaps import Codec
    from poselab.pose.models.posenet import PoseNet

    options = dict(UNTRAINED[name])
    scale = options.pop("input_scale", 1.0)
    torch.manual_seed(0)
    model = PoseNet(num_keypoints=len(BODYPARTS), weights="none", **options)
    run = root / name
    run.mkdir(parents=True)
    info = {"train": {"precision": "auto", "input_scale": scale}, "model": model.config(),
            "codec": vars(Codec()), "bodyparts": BODYPARTS, "scorer": "bench",
            "mean": list(model.mean), "std": list(model.std), "pcutoff": 0.6, "skeleton": []}
    (run / "run.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    save_checkpoint(run / "last.pt", model=model.state_dict(), epoch=0)
    return run


def pct(values, q) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def play(run: Path, video: Path, rate: float, seconds: float, runtime: str, out: Path,
         forward: bool = False, threads: int = 0) -> dict:
    """One `poselab live` process; per-pose figures from its stdout, totals from its meta."""
    record = out / f"{run.name}-{rate:g}{'-fwd' if forward else ''}.h5"
    cmd = [sys.executable, "-m", "poselab", "live", str(run), "--source", str(video),
           "--fps", f"{rate:g}", "--runtime", runtime, "--record", str(record),
           "--duration", f"{seconds:g}", "--threads", str(threads)] + (
               ["--forward"] if forward else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1)
    poses = []
    for line in proc.stdout:
        arrived = time.time()
        msg = json.loads(line)
        msg["arrived_ms"] = (arrived - msg["timestamp"]) * 1000
        poses.append(msg)
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"poselab live failed ({proc.returncode}):\n{err}")
    meta = json.loads(record.with_name(f"{record.stem}_meta.json").read_text())["live"]
    lat = [p["latency_ms"] for p in poses]
    arr = [p["arrived_ms"] for p in poses]
    return {
        "model": run.name, "rate": rate, "runtime": f"{meta['runtime']}:{meta['threads']}",
        "calibration_ms": meta["calibration_ms"], "frames": meta["frames_received"],
        "published": meta["frames_processed"], "dropped": meta["frames_dropped"],
        "late": meta["source_late"],
        "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else None,
        "reader_p50_ms": pct(arr, 50), "reader_p99_ms": pct(arr, 99),
        "poses": poses if forward else None, "stderr": err.strip().splitlines()[-3:],
    }


def forward_errors(run: Path, video: Path, result: dict) -> dict:
    """Errors of the measured and forward-predicted poses against the model's own offline
    poses interpolated to each publication time (pixels, keypoints above pcutoff)."""
    import torch

    from poselab.io.video import VideoReader
    from poselab.pose.predict import Predictor

    torch.set_num_threads(1)  # as live chose here: 2 threads on a busy 2-core machine crawl
    predictor = Predictor.from_dir(run, device="cpu", batch_size=8)
    pcutoff = float(predictor.info.get("pcutoff", 0.6))
    last = max(p["frame"] for p in result["poses"]) + 2
    xys, batch = [], []
    with VideoReader(video) as reader:  # in batches: 20 s of 640x480 frames would be 1 GB
        for _, frame in reader.frames(range(last)):
            batch.append(frame)
            if len(batch) == 64:
                xys.append(predictor.predict_frames(np.stack(batch)))
                batch = []
    if batch:
        xys.append(predictor.predict_frames(np.stack(batch)))
    xy = np.concatenate([a for a, _ in xys])  # (N, K, 2)
    lik = np.concatenate([b for _, b in xys])  # (N, K)
    measured_err, forward_err, ahead = [], [], []
    for p in result["poses"]:
        at = p["frame"] + p["ahead_ms"] / 1000 * result["rate"]  # in frames of the playback
        i, w = int(np.floor(at)), at - np.floor(at)
        if i + 1 >= len(xy):
            continue
        truth = (1 - w) * xy[i] + w * xy[i + 1]
        ok = (lik[i] >= pcutoff) & (lik[i + 1] >= pcutoff)
        for k, bp in enumerate(predictor.bodyparts):
            m, f = p["measured"][bp], p["pose"][bp]
            if ok[k] and m[0] is not None and f[0] is not None and m[2] >= pcutoff:
                measured_err.append(np.hypot(m[0] - truth[k, 0], m[1] - truth[k, 1]))
                forward_err.append(np.hypot(f[0] - truth[k, 0], f[1] - truth[k, 1]))
        ahead.append(p["ahead_ms"])
    return {"points": len(measured_err), "ahead_ms_median": pct(ahead, 50),
            "measured_err_px_median": pct(measured_err, 50),
            "measured_err_px_mean": float(np.mean(measured_err)) if measured_err else None,
            "forward_err_px_median": pct(forward_err, 50),
            "forward_err_px_mean": float(np.mean(forward_err)) if forward_err else None}


DLCLIVE_SCRIPT = r'''
import copy, json, sys
import numpy as np, torch
from dlclive.benchmark import benchmark
from dlclive.pose_estimation_pytorch.models import PoseModel
model_path, video, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
K = 4
head = {"type": "HeatmapHead",
        "predictor": {"type": "HeatmapPredictor", "apply_sigmoid": False, "clip_scores": True,
                      "location_refinement": True, "locref_std": 7.2801},
        "heatmap_config": {"channels": [2048, K], "kernel_size": [3], "strides": [2]},
        "locref_config": {"channels": [2048, 2 * K], "kernel_size": [3], "strides": [2]}}
cfg = {"method": "bu", "net_type": "resnet_50",
       "model": {"backbone": {"type": "ResNet", "model_name": "resnet50_gn", "output_stride": 16,
                              "freeze_bn_stats": False, "freeze_bn_weights": False},
                 "backbone_output_channels": 2048, "heads": {"bodypart": head}},
       "data": {"inference": {"normalize_images": True}},
       "metadata": {"project_path": "", "pose_config_path": "",
                    "bodyparts": ["snout", "leftear", "rightear", "tailbase"],
                    "unique_bodyparts": [], "individuals": ["animal"], "with_identity": None}}
torch.manual_seed(0)
model = PoseModel.build(copy.deepcopy(cfg["model"]))
torch.save({"config": cfg, "pose": model.state_dict()}, model_path)
times = benchmark(model_path, "pytorch", video, device="cpu", n_frames=n, display=False)[0]
t = np.asarray(times[1:]) * 1000  # the first call loads the model
import dlclive
print(json.dumps({"version": dlclive.VERSION, "frames": len(t),
                  "p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)),
                  "p99_ms": float(np.percentile(t, 99))}))
'''


def dlclive(python: str, video: Path, frames: int, out: Path) -> dict:
    script = out / "dlclive_bench.py"
    script.write_text(DLCLIVE_SCRIPT)
    proc = subprocess.run([python, str(script), str(out / "dlc_resnet50.pt"), str(video),
                           str(frames)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="NAME=RUN_DIR")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--rates", default="30,60,100")
    parser.add_argument("--seconds", type=float, default=20.0, help="playback per rate")
    parser.add_argument("--runtime", action="append", default=[], metavar="[NAME=]RUNTIME",
                        help="runtime for every model, or for one (default: auto)")
    parser.add_argument("--threads", type=int, default=0, help="0: calibrated")
    parser.add_argument("--forward", action="store_true", help="measure forward prediction")
    parser.add_argument("--dlclive-python", help="python of a venv with deeplabcut-live")
    parser.add_argument("--dlclive-frames", type=int, default=30)
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: video not found")
    out = Path(tempfile.mkdtemp(prefix="bench-live-"))
    runs = {}
    for item in args.run:
        name, _, path = item.partition("=")
        runs[name] = Path(path)
    if not runs:
        runs = {name: make_untrained_run(out / "runs", name) for name in UNTRAINED}
        print("no --run given: untrained runs (latency does not depend on the weights)")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f} at start; video {args.video.name}; {args.seconds:g} s per rate")
    rates = [float(r) for r in args.rates.split(",") if r.strip()]  # "": none
    chosen = {"": "auto"}
    for item in args.runtime:
        name, sep, value = item.rpartition("=")
        chosen[name if sep else ""] = value
    results = []
    header = (f"{'model':10} {'rate':>5} {'runtime':11} {'frames':>6} {'pub':>5} {'drop':>5} "
              f"{'late':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'reader p99':>10}")
    print(header)
    for name, run in runs.items():
        for rate in rates:
            r = play(run, args.video, rate, args.seconds, chosen.get(name, chosen[""]), out,
                     threads=args.threads)
            r["name"] = name
            results.append(r)
            print(f"{name:10} {rate:5g} {r['runtime']:11} {r['frames']:6d} {r['published']:5d} "
                  f"{r['dropped']:5d} {r['late']:4d} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} "
                  f"{r['p99_ms']:7.1f} {r['max_ms']:7.1f} {r['reader_p99_ms']:10.1f}  "
                  f"calibration p90 ms {r['calibration_ms']}", flush=True)
    fwd = None
    if args.forward:
        name = next(iter(runs))
        r = play(runs[name], args.video, 60, args.seconds, chosen.get(name, chosen[""]), out,
                 forward=True, threads=args.threads)
        fwd = {"model": name, "rate": 60, "p99_ms": r["p99_ms"], "dropped": r["dropped"],
               **forward_errors(runs[name], args.video, r)}
        if not fwd["points"]:
            print(f"forward prediction ({name}): no keypoint above pcutoff in the offline "
                  "reference (an untrained model?); nothing to measure")
        else:
            print(f"forward prediction ({name}, 60 frames/s, {fwd['points']} keypoints): "
                  f"predicted {fwd['ahead_ms_median']:.1f} ms ahead (median); error vs the "
                  f"offline pose at publication: measured {fwd['measured_err_px_median']:.2f} "
                  f"px median ({fwd['measured_err_px_mean']:.2f} mean), forward "
                  f"{fwd['forward_err_px_median']:.2f} px median "
                  f"({fwd['forward_err_px_mean']:.2f} mean)")
    dlc = None
    if args.dlclive_python:
        dlc = dlclive(args.dlclive_python, args.video, args.dlclive_frames, out)
        if "error" in dlc:
            print(f"deeplabcut-live: could not run ({dlc['error']})")
        else:
            drops = {f"{r:g}": max(0.0, 1 - 1000 / dlc["p50_ms"] / r) for r in rates}
            print(f"deeplabcut-live {dlc['version']} benchmark, resnet_50 (DeepLabCut 3.0 "
                  f"layout), {dlc['frames']} frames back to back: p50 {dlc['p50_ms']:.1f} ms, "
                  f"p95 {dlc['p95_ms']:.1f} ms, p99 {dlc['p99_ms']:.1f} ms per frame; share "
                  f"that would be dropped at " + ", ".join(f"{k}: {v:.0%}"
                                                          for k, v in drops.items()))
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for r in results:
        r.pop("poses", None)
        r["run"] = str(runs[r["name"]])
    print(json.dumps({"bench": "live", "video": str(args.video), "seconds": args.seconds,
                      "results": results, "forward": fwd, "deeplabcut_live": dlc,
                      "load_end": load}))


if __name__ == "__main__":
    main()
