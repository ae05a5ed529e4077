"""suggest_frames / `poselab suggest`: uncertainty ranking, diversity, extract-frames naming
and pixels, machine labels and suggestions, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from poselab.analysis.suggest import frame_features, pick_diverse, score_frames, suggest_frames
from poselab.cli import app
from poselab.errors import PoselabError
from poselab.io.frames import extract_frames
from poselab.io.labels import read_machine_labels
from poselab.io.project import create_project
from poselab.io.suggestions import read_suggestions
from poselab.io.video import VideoReader
from poselab.pose.heatmaps import Codec
from poselab.pose.predict import EnsemblePredictor

BODYPARTS = ["snout", "tailbase"]
N_FRAMES = 60
# frames marked by a bright corner square, in three stretches farther apart than the picks'
# minimum gap (length / 2n = 10 frames for n = 3)
HARD = set(range(12, 18)) | set(range(30, 36)) | set(range(50, 56))
runner = CliRunner()


def write_marked_video(path: Path, static: bool = False) -> Path:
    """64x48 MJPG: a bright bar at column i % 60 (frames all differ), and on HARD frames a
    white square in the top-left corner. `static`: every frame the same."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        frame = np.full((48, 64, 3), 40, np.uint8)
        if not static:
            frame[:, 2 + i % 60: 5 + i % 60] = 200
            if i in HARD:
                frame[:10, :10] = 255
        writer.write(frame)
    writer.release()
    return path


def is_hard(frames_rgb: np.ndarray) -> np.ndarray:
    return frames_rgb[:, :8, :8].mean(axis=(1, 2, 3)) > 200


class SyntheticModel:
    """A stand-in for a trained model with Predictor's interface: both keypoints at the bar,
    shifted by `shift` px on hard frames (an ensemble of these disagrees there only); the
    likelihood is `hard_likelihood` on hard frames, 0.95 elsewhere."""

    def __init__(self, shift: float = 0.0, hard_likelihood: float = 0.95,
                 bodyparts: list[str] = BODYPARTS) -> None:
        self.shift, self.hard_likelihood = shift, hard_likelihood
        self.bodyparts, self.batch_size, self.run = list(bodyparts), 4, Path("synthetic")
        self.info = {"model": {"backbone_name": "synthetic"}, "bodyparts": self.bodyparts}
        self.epoch, self.device, self.dtype, self.precision = 0, "cpu", None, "fp32"
        self.input_scale, self.codec, self.scorer = 1.0, Codec(), "poselab_synthetic"

    def predict_rgb(self, frames_rgb: np.ndarray, offset=(0, 0)):
        bar = frames_rgb[:, 20, :, 0].astype(float).argmax(axis=1) + 1.0  # (B,)
        hard = is_hard(frames_rgb)
        xy = np.zeros((len(frames_rgb), len(self.bodyparts), 2), np.float32)
        xy[..., 0] = (bar + np.where(hard, self.shift, 0.0))[:, None]
        xy[..., 1] = 24.0
        lik = np.where(hard, self.hard_likelihood, 0.95)[:, None].repeat(len(self.bodyparts), 1)
        return xy, lik.astype(np.float32)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    video = write_marked_video(tmp_path / "mouse1.avi")
    return create_project("al", "alice", [video], BODYPARTS, working_dir=tmp_path)


def folder(config: Path) -> Path:
    return config.parent / "labeled-data" / "mouse1"


def test_ranking_prefers_frames_where_an_ensemble_disagrees(project):
    ensemble = EnsemblePredictor([SyntheticModel(s) for s in (0.0, 6.0, -6.0)], "synthetic")
    with VideoReader(project.parent / "videos" / "mouse1.avi") as reader:
        frames = np.stack([f for _, f in reader])
    scores = score_frames(ensemble, frames)
    assert scores.kind == "ensemble"
    hard = np.array([i in HARD for i in range(N_FRAMES)])
    assert scores.score[hard].min() > 4.0 > scores.score[~hard].max() + 3.9  # px of spread
    result = suggest_frames(project, ensemble, n=3, progress=False)
    picked = [s.index for s in result.suggestions]
    assert len(picked) == 3 and set(picked) <= HARD, picked
    assert all("ensemble disagreement" in s.reason for s in result.suggestions)
    # picks of one video are spread in time: one per stretch
    assert np.diff(sorted(picked)).min() >= 10
    # the machine labels are the ensemble's mean predictions, for correction in the labeler
    ml = read_machine_labels(folder(project) / "machinelabels-iter0.h5")
    names = [s.path.name for s in result.suggestions]
    assert sorted(ml.index.get_level_values(2)) == sorted(names)
    rows = ml.loc[[("labeled-data", "mouse1", s.path.name) for s in result.suggestions]]
    mean_x = scores.xy[picked, 0, 0]  # the mean of +6, 0, -6 shifts: the bar itself
    np.testing.assert_allclose(rows.xs("x", axis=1, level="coords").iloc[:, 0], mean_x,
                               atol=1e-4)
    # the labeler lists them, most worth labeling first
    listed = read_suggestions(folder(project))
    assert [e["image"] for e in listed] == names
    assert {e["source"] for e in listed} == {"suggest"}
    assert listed[0]["score"] == pytest.approx(result.suggestions[0].score)


def test_single_model_names_and_pixels_match_extract_frames(project, tmp_path):
    # a second project on the same video: extract-frames writes every frame there
    (tmp_path / "other").mkdir()
    twin = create_project("al", "alice", [project.parent / "videos" / "mouse1.avi"], BODYPARTS,
                          working_dir=tmp_path / "other")
    extract_frames(twin, n=N_FRAMES, method="uniform", progress=False)
    model = SyntheticModel(hard_likelihood=0.2)
    result = suggest_frames(project, model, n=4, progress=False)
    assert len(result.suggestions) == 4
    assert all("likelihood" in s.reason for s in result.suggestions)
    assert sum(s.index in HARD for s in result.suggestions) >= 3  # the unsure ones first
    with VideoReader(project.parent / "videos" / "mouse1.avi") as reader:
        for s in result.suggestions:
            reference = folder(twin) / s.path.name  # same name as extract-frames gives
            assert reference.is_file(), s.path.name
            mine = cv2.imread(str(s.path), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(mine, cv2.imread(str(reference), cv2.IMREAD_UNCHANGED))
            np.testing.assert_array_equal(mine, reader.read(s.index))
    # a second call never suggests a frame already extracted, nor overwrites one
    before = {p: p.read_bytes() for p in folder(project).glob("img*.png")}
    again = suggest_frames(project, model, n=4, progress=False)
    assert not {s.index for s in again.suggestions} & {s.index for s in result.suggestions}
    assert all(p.read_bytes() == b for p, b in before.items())
    assert len(read_machine_labels(folder(project) / "machinelabels-iter0.h5")) == 8


def test_diversity_never_returns_two_identical_frames():
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 256, size=(4, 48, 64, 3), dtype=np.uint8)
    frames = distinct[np.arange(40) % 4]  # 40 candidates, 4 distinct images
    features = frame_features(frames)
    score = rng.uniform(0.1, 1.0, size=40)
    picks = pick_diverse(score, features, n=10)
    assert len(picks) == 4
    assert len({features[p].tobytes() for p in picks}) == 4
    # a candidate identical to a frame already extracted is never picked
    covered = frame_features(distinct[:1])
    picks = pick_diverse(score, features, n=10, covered=covered)
    assert len(picks) == 3 and all(p % 4 != 0 for p in picks)
    # the most uncertain candidates come first, even where the others are more novel
    score = np.r_[np.full(5, 0.9), np.full(15, 0.1)]
    features = frame_features(rng.integers(0, 256, size=(20, 48, 64, 3), dtype=np.uint8))
    covered = features[:5] ^ np.uint8(1)  # the unsure ones are much like labeled frames
    assert set(pick_diverse(score, features, n=2, covered=covered)) <= set(range(5))
    # of two equally unsure frames, the one unlike the first pick comes next
    near = np.stack([distinct[0], distinct[0], distinct[1]])
    near[1, 0, 0] = near[1, 0, 0] ^ 255  # one pixel differs: distinct, but alike
    picks = pick_diverse(np.array([1.0, 0.9, 0.9]), frame_features(near), n=2)
    assert picks == [0, 2]


def test_a_static_video_gives_one_frame(tmp_path):
    video = write_marked_video(tmp_path / "still.avi", static=True)
    config = create_project("st", "alice", [video], BODYPARTS, working_dir=tmp_path)
    result = suggest_frames(config, SyntheticModel(), n=5, progress=False)
    assert len(result.suggestions) == 1
    assert any("only 1 new frames" in m for m in result.messages)


def test_bad_input_is_one_line_and_writes_nothing(project, tmp_path):
    def run(*args):
        out = runner.invoke(app, ["suggest", str(project), *args])
        return out.exit_code, out.output.strip()

    (tmp_path / "notarun").mkdir()
    code, text = run(str(tmp_path / "notarun"))
    assert code == 2 and text.startswith("error: ") and "not a poselab run" in text
    assert "\n" not in text
    code, text = run(str(tmp_path / "notarun"), "--n", "0")
    assert code == 2 and text == "error: --n 0: must be a positive integer"
    code, text = run(str(tmp_path / "notarun"), "--videos", "nosuch.mp4")
    assert code == 2 and "nosuch.mp4: not a video of this project" in text
    with pytest.raises(PoselabError, match="bodyparts"):
        suggest_frames(project, SyntheticModel(bodyparts=["nose", "tail"]), n=2,
                       progress=False)
    assert not folder(project).exists() or not any(folder(project).iterdir())


@pytest.mark.slow
def test_cli_with_a_trained_run(tmp_path):
    """The real Predictor path: a tiny model trained for a few seconds, then the command."""
    from poselab.demo import make_synthetic_project
    from poselab.pose.train_config import TrainConfig
    from poselab.pose.training import train

    config, _, _ = make_synthetic_project(tmp_path, "cli", n_frames=24, seed=1, label_every=4)
    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=1, batch_size=8, workers=0,
                      head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                      eval_train=False, augment={"crop_size": None, "affine_prob": 0.0})
    run = train(config, cfg, name="tiny", progress=False)
    labeled = config.parent / "labeled-data" / "mouse"
    before = sorted(p.name for p in labeled.glob("img*.png"))
    out = runner.invoke(app, ["suggest", str(config), str(run), "--n", "3", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith(str(labeled))]
    assert len(lines) == 3 and all("suggestion" in line for line in lines)
    after = sorted(p.name for p in labeled.glob("img*.png"))
    assert len(after) == len(before) + 3
    assert len(read_machine_labels(labeled / "machinelabels-iter0.h5")) == 3
    assert len(read_suggestions(labeled)) == 3
    shutil.rmtree(run)
