"""What does a run's likelihood separate? AUROC of error signals for errors > r px, per split.

    python benchmarks/bench_likelihood.py models/<run> [--radius 5]

For every labeled keypoint of the run's splits (never choosing anything), the keypoint is
decoded from the image alone, from its mirror alone (when the run has flip pairs) and from
their average (what evaluate and analyze use), and these scores are compared as detectors of
errors > radius against the label: the peak likelihood (low = suspect), the distance between
the image's and the mirror's predictions, the lower of their two likelihoods, and the
heatmap's total mass. Then every test keypoint over the radius is listed with its error,
likelihood and image/mirror disagreement, and the frames `check-labels` flags as left/right
swaps: to tell model errors from label errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poselab.io.labels import load_labeled_frames  # noqa: E402
from poselab.pose.data import read_split  # noqa: E402
from poselab.pose.evaluation import _project_of, _rows_to_frame_pixels, eval_loader  # noqa: E402
from poselab.pose.flip import label_swaps, mirrored_maps  # noqa: E402
from poselab.pose.heatmaps import Codec, decode  # noqa: E402
from poselab.pose.metrics import auroc  # noqa: E402
from poselab.pose.predict import load_run, run_flip_permutation, run_input_scale  # noqa: E402


@torch.inference_mode()
def split_scores(model, info, frames, indices) -> dict[str, np.ndarray]:
    codec = Codec(**info["codec"])
    scale = run_input_scale(info)
    perm = run_flip_permutation(info) or list(range(len(info["bodyparts"])))
    loader = eval_loader(frames, indices, codec, model.mean, model.std, input_scale=scale)
    parts = []
    for batch in loader:
        x = batch["image"]
        heat, off = model(x)
        m_heat, m_off = mirrored_maps(model, x, perm)
        xy_avg, lik_avg = decode((heat + m_heat) / 2, (off + m_off) / 2, codec)
        xy_img, lik_img = decode(heat, off, codec)
        xy_mir, lik_mir = decode(m_heat, m_off, codec)
        mass = torch.sigmoid((heat + m_heat) / 2).flatten(2).sum(-1)
        parts.append({"xy": xy_avg.numpy(), "xy_img": xy_img.numpy(), "xy_mir": xy_mir.numpy(),
                      "lik": lik_avg.numpy(), "lik_img": lik_img.numpy(),
                      "lik_mir": lik_mir.numpy(), "mass": mass.numpy(),
                      "gt": batch["keypoints"].numpy(), "hw": batch["frame_hw"].numpy()})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    for key in ("xy", "xy_img", "xy_mir", "gt"):
        out[key] = _rows_to_frame_pixels(out[key], out["hw"], scale)
    out["err"] = np.linalg.norm(out["xy"] - out["gt"], axis=-1)
    out["disagree"] = np.linalg.norm(out["xy_img"] - out["xy_mir"], axis=-1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--radius", type=float, default=5.0)
    args = parser.parse_args()
    model, info, epoch = load_run(args.run, "auto", "cpu")
    project, _ = _project_of(args.run, info)
    frames = load_labeled_frames(project)
    split = read_split(args.run / "split.json", frames)
    print(f"{args.run}: {info['checkpoint']['rule']}, epoch {epoch + 1}; errors > "
          f"{args.radius:g} px against the labels")
    tests = None
    for name, indices in (("train", split.train), ("val", split.val), ("test", split.test)):
        if not indices:
            continue
        s = split_scores(model, info, frames, indices)
        ok = np.isfinite(s["err"])
        bad = s["err"][ok] > args.radius
        signals = {"likelihood (low)": -s["lik"][ok], "image/mirror disagreement":
                   s["disagree"][ok], "lower of the two likelihoods (low)":
                   -np.minimum(s["lik_img"], s["lik_mir"])[ok], "heatmap mass": s["mass"][ok]}
        figures = ", ".join(f"{k} {auroc(v, bad):.2f}" for k, v in signals.items())
        print(f"{name}: {int(ok.sum())} keypoints, {int(bad.sum())} over {args.radius:g} px, "
              f"mean error {s['err'][ok].mean():.2f} px; AUROC: {figures}")
        if name == "test":
            tests = (indices, s)
    if tests is not None:
        indices, s = tests
        print("test keypoints over the radius: image, bodypart, error px, likelihood, "
              "image/mirror disagreement px")
        for row, k in np.argwhere(s["err"] > args.radius):
            path = frames.paths[indices[row]]
            print(f"  {path.parent.name}/{path.name} {info['bodyparts'][k]}: "
                  f"{s['err'][row, k]:.1f}, {s['lik'][row, k]:.2f}, {s['disagree'][row, k]:.2f}")
    swaps = label_swaps(project.config_path)
    print("frames check-labels flags as left/right swaps: "
          + (", ".join(f"{p.parent.name}/{p.name} ({a}/{b})" for p, a, b in swaps) or "none"))


if __name__ == "__main__":
    main()
