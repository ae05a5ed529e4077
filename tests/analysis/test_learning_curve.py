"""Learning curves: the power-law fit (power_law.py) and its inversion, the bootstrap estimate, the
conclusions in words, nested subsets on a fixed test split, and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from poselab.analysis.learning_curve import (
    default_sizes,
    learning_curve,
    nested_subsets,
    prepare_subset,
    summarize,
)
from poselab.analysis.power_law import PowerLaw, estimate_labels, fit_power_law, labels_for
from poselab.cli import app
from poselab.errors import PoselabError

runner = CliRunner()
TRUE = PowerLaw(a=40.0, b=0.7, c=2.0)
SIZES = [10, 20, 40, 80, 160]


def rows_from(law: PowerLaw, seeds: int = 3, noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"size": n, "seed": s, "test_px": float(law(n) * np.exp(rng.normal(0, noise)))}
            for n in SIZES for s in range(seeds)]


def test_fit_recovers_known_parameters():
    rows = rows_from(TRUE)
    fit = fit_power_law([r["size"] for r in rows], [r["test_px"] for r in rows])
    assert fit.a == pytest.approx(TRUE.a, rel=1e-3)
    assert fit.b == pytest.approx(TRUE.b, rel=1e-3)
    assert fit.c == pytest.approx(TRUE.c, abs=1e-3)
    # with 3% noise per run the parameters are still close
    noisy = rows_from(TRUE, noise=0.03, seed=1)
    fit = fit_power_law([r["size"] for r in noisy], [r["test_px"] for r in noisy])
    assert fit.b == pytest.approx(TRUE.b, abs=0.15)
    assert fit.c == pytest.approx(TRUE.c, abs=0.6)


def test_labels_for_inverts_the_curve():
    n = labels_for(TRUE, 3.0)
    assert TRUE(n) == pytest.approx(3.0)
    assert n == pytest.approx((40 / 1.0) ** (1 / 0.7))
    assert labels_for(TRUE, 2.0) == math.inf and labels_for(TRUE, 1.0) == math.inf
    assert labels_for(PowerLaw(a=10.0, b=1e-4, c=0.0), 5.0) == math.inf  # no overflow


def test_bootstrap_interval_covers_the_truth():
    rows = rows_from(TRUE, noise=0.05, seed=2)
    fit = fit_power_law([r["size"] for r in rows], [r["test_px"] for r in rows])
    estimate = estimate_labels(rows, fit, target=4.0, n_boot=100)
    truth = labels_for(TRUE, 4.0)  # about 103 labels
    assert estimate.low <= truth <= estimate.high
    assert estimate.low < estimate.labels < estimate.high and estimate.reachable > 0.9
    # one seed: the residuals are resampled instead, still an interval around the fit
    one = [r for r in rows if r["seed"] == 0]
    single = estimate_labels(one, fit_power_law([r["size"] for r in one],
                                                [r["test_px"] for r in one]), 4.0, n_boot=50)
    assert single.low <= single.labels <= single.high


def test_conclusions_in_words():
    steep = summarize(rows_from(TRUE), target_px=3.0, n_boot=20)
    assert not steep.flat
    assert any("twice the labels (320)" in line for line in steep.lines)
    assert any(line.startswith("target 3 px: about 194 labeled frames") for line in steep.lines)
    flat = summarize(rows_from(PowerLaw(a=5.0, b=1.0, c=3.0)), target_px=2.5, n_boot=20)
    assert flat.flat
    assert any("more labels will not help much" in line for line in flat.lines)
    assert any("below the fitted floor" in line for line in flat.lines)
    reached = summarize(rows_from(TRUE), target_px=10.0, n_boot=20)
    assert any("already reached with 160 labels" in line for line in reached.lines)
    two = summarize([r for r in rows_from(TRUE) if r["size"] <= 20])
    assert two.fit is None and any("fewer than 3 sizes" in line for line in two.lines)


def test_default_sizes():
    assert default_sizes(93) == [10, 20, 40, 80, 93]
    assert default_sizes(40) == [10, 20, 40]
    assert default_sizes(7) == [7]


def test_fit_rejects_too_few_sizes():
    with pytest.raises(PoselabError, match="3 or more sizes"):
        fit_power_law([10, 10, 20], [5.0, 5.1, 4.0])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    from poselab.demo import make_synthetic_project

    config, _, _ = make_synthetic_project(tmp_path, "lc", n_frames=30, seed=3, label_every=2)
    return config  # 15 labeled frames: 3 in the fixed test split, a pool of 12


def test_bad_input_is_one_line(project):
    def run(*args):
        out = runner.invoke(app, ["learning-curve", str(project), "--preset", "fastest_lite0",
                                  *args])
        return out.exit_code, out.output.strip().splitlines()[-1]

    code, line = run("--sizes", "4,40")
    assert code == 2 and line == ("error: --sizes 40: only 12 labeled frames are outside the "
                                  "fixed test split; use sizes up to 12")
    code, line = run("--sizes", "4,x")
    assert code == 2 and line.startswith("error: --sizes '4,x': comma-separated whole numbers")
    with pytest.raises(PoselabError, match="^--seeds 0: the number of seeds must be >= 1$"):
        learning_curve(project, seeds=0)
    with pytest.raises(PoselabError, match="--target-px -1: must be a positive"):
        learning_curve(project, target_px=-1)
    assert not (project.parent / "learning-curve" / "learning-curve.csv").exists()


def test_nested_subsets_train_on_every_frame(project, tmp_path):
    from poselab.io.labels import load_labeled_frames, load_project_labels
    from poselab.io.project import open_project
    from poselab.pose.data import image_key, make_split
    from poselab.pose.train_config import TrainConfig

    pool, test = list(range(12)), [12, 13, 14]
    subsets = nested_subsets(pool, [2, 5, 12], seed=[0, 1])
    assert [len(subsets[n]) for n in (2, 5, 12)] == [2, 5, 12]
    assert set(subsets[2]) < set(subsets[5]) < set(subsets[12])
    assert nested_subsets(pool, [5], seed=[0, 2])[5] != subsets[5]  # seeds differ
    proj = open_project(project)
    frames = load_labeled_frames(proj)
    config, cfg = prepare_subset(proj, load_project_labels(proj), frames, TrainConfig(),
                                 subsets[5], test[0], 7, tmp_path / "work")
    scratch = load_labeled_frames(open_project(config))
    split = make_split(len(scratch), cfg.train_fraction, cfg.split_seed, cfg.val_fraction)
    # training's own split: all 5 subset frames train, the fixed test frame is its test
    assert sorted(image_key(scratch.paths[i]) for i in split.train) == sorted(
        image_key(frames.paths[i]) for i in subsets[5])
    assert [image_key(scratch.paths[i]) for i in split.test] == [image_key(frames.paths[12])]
    np.testing.assert_array_equal(scratch.keypoints[split.train],
                                  frames.keypoints[subsets[5]])
    assert cfg.seed == 7 and cfg.val_fraction == 0


@pytest.mark.slow
def test_one_run_end_to_end_and_reruns_reuse_it(project):
    from poselab.pose.train_config import TrainConfig

    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=1, batch_size=8, workers=0,
                      head_width=32, precision="fp32", warmup_epochs=0, eval_train=False,
                      augment={"crop_size": None, "affine_prob": 0.0})
    out = project.parent / "curve"
    lines: list[str] = []
    result = learning_curve(project, cfg, sizes=[3], seeds=1, out=out, echo=lines.append)
    with open(out / "learning-curve.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(int(r["size"]), int(r["seed"]), int(r["epochs"])) for r in table] == [(3, 0, 1)]
    assert float(table[0]["test_px"]) > 0 and result.rows[0]["test_px"] > 0
    assert result.fit is None and (out / "learning-curve.png").stat().st_size > 1000
    assert json.loads((out / "fit.json").read_text())["fit"] is None
    assert not (out / "runs").exists()  # scratch projects and models are removed
    # a re-run with the same settings trains nothing
    lines.clear()
    learning_curve(project, cfg, sizes=[3], seeds=1, out=out, echo=lines.append)
    assert "0 training run(s) to do" in lines[0]
    assert len(lines) == 2 and "(from " in lines[1]
