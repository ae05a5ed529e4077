"""Run the ensemble-kalman-smoother package (EKS) on poselab prediction files, in EKS's venv.

Called by bench_smoothing.py with a Python that has `ensemble-kalman-smoother` installed
(it pins jax and opencv-contrib, so it lives apart from poselab's environment):

    /tmp/eks-venv/bin/python benchmarks/_eks_runner.py OUT.npy MEMBER1.csv MEMBER2.csv ...

Takes the members as DeepLabCut CSVs (what EKS reads), runs `fit_eks_singlecam` with its
defaults (smoothing parameter optimised per keypoint, ensemble median and
confidence-weighted variance), saves the smoothed x, y as float64 (N, K, 2) to OUT.npy and
prints the seconds EKS took and its smoothing parameters.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    out, members = Path(sys.argv[1]), sys.argv[2:]
    from eks.singlecam_smoother import fit_eks_singlecam

    bodyparts = list(dict.fromkeys(pd.read_csv(members[0], header=[0, 1, 2], index_col=0,
                                               nrows=1).columns.get_level_values(1)))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        smoothed, params, _, _ = fit_eks_singlecam(list(members),
                                                   str(Path(tmp) / "eks" / "out.csv"))
        seconds = time.monotonic() - start
    scorer = smoothed.columns.get_level_values(0)[0]
    xy = np.stack([np.stack([smoothed[(scorer, b, c)].to_numpy(float) for c in ("x", "y")],
                            axis=-1) for b in bodyparts], axis=1)
    np.save(out, xy)
    print(f"{seconds:.1f} s, smoothing parameters {np.round(np.asarray(params), 3).tolist()}")


if __name__ == "__main__":
    main()
