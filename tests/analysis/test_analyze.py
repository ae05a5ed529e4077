"""Video analysis: DeepLabCut layout, parity with evaluation, skip/overwrite, damaged videos,
the executor path (process pool) and the CLI. One tiny model trained once for the module."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from poselab.analysis.analyze import AnalysisError, analyze_video, analyze_videos
from poselab.cli import app
from poselab.demo import make_synthetic_project, write_synthetic_video
from poselab.errors import PoselabError
from poselab.io.predictions import predictions_arrays
from poselab.io.synthetic import SYNTHETIC_BODYPARTS
from poselab.io.video import VideoReader
from poselab.pose.predict import Predictor
from poselab.pose.train_config import TrainConfig
from poselab.pose.training import train

N_FRAMES = 48


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A 96x64 synthetic video, 16 frames labeled from its ground truth, a resnet18 trained
    for a few seconds (random init: it is a plumbing model, not an accurate one)."""
    root = tmp_path_factory.mktemp("analyze")
    config, video, truth = make_synthetic_project(root, "an", n_frames=N_FRAMES, seed=2,
                                                  label_every=3)
    cfg = TrainConfig(backbone="resnet18", weights="none", epochs=3, batch_size=8, workers=0,
                      head_width=32, precision="fp32", train_fraction=0.75, warmup_epochs=0,
                      lr=2e-3, augment={"crop_size": None, "affine_prob": 0.0})
    run = train(config, cfg, name="tiny")
    return {"root": root, "video": video, "truth": truth, "run": run, "config": config}


@pytest.fixture(scope="module")
def analyzed(trained: dict) -> Path:
    """The synthetic video analyzed once through the batch API (sequential)."""
    (h5,) = analyze_videos(trained["run"], [trained["video"]], dest=trained["root"] / "out",
                           device="cpu")
    return h5


def _read(h5: Path) -> pd.DataFrame:
    return pd.read_hdf(h5, "df_with_missing")


def test_layout_rows_and_metadata(trained: dict, analyzed: Path):
    h5 = analyzed
    assert h5 == trained["root"] / "out" / "mouseposelab_resnet18_tiny.h5"
    df = _read(h5)
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert df.shape == (N_FRAMES, 3 * len(SYNTHETIC_BODYPARTS))
    assert list(df.index) == list(range(N_FRAMES))
    assert set(df.dtypes) == {np.dtype("float64")}
    assert list(df.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
    assert df.columns.get_level_values("scorer")[0] == "poselab_resnet18_tiny"
    assert df.notna().all().all()  # a clean video: every frame predicted
    meta = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())
    assert meta["n_frames"] == meta["rows"] == meta["frames_decoded"] == N_FRAMES
    assert meta["decode_errors"] == [] and meta["missing_frames"] == 0
    assert (meta["width"], meta["height"]) == (96, 64)
    assert meta["bodyparts"] == list(SYNTHETIC_BODYPARTS) and meta["frames_per_second"] > 0
    assert not list(h5.parent.glob(".*tmp*"))  # no temp files left behind


def test_precision_default_fp32_recorded_and_chosen(trained: dict, analyzed: Path,
                                                     tmp_path: Path):
    """Inference computes in fp32 whatever the run trained in or the machine offers, unless
    --precision says otherwise; the metadata records what was used."""
    meta = json.loads(analyzed.with_name(analyzed.stem + "_meta.json").read_text())
    assert (meta["precision"], meta["precision_requested"]) == ("fp32", "fp32")
    assert Predictor.from_dir(trained["run"], device="cpu").dtype is None
    assert Predictor.from_dir(trained["run"], device="cpu", precision="bf16").dtype == \
        torch.bfloat16
    (h5,) = analyze_videos(trained["run"], [trained["video"]], dest=tmp_path, device="cpu",
                           precision="bf16")
    meta = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())
    assert (meta["precision"], meta["autocast_dtype"]) == ("bf16", "bfloat16")
    xy16, _, _ = predictions_arrays(_read(h5))
    xy32, _, _ = predictions_arrays(_read(analyzed))
    assert xy16.shape == xy32.shape and not np.array_equal(xy16, xy32)  # computed otherwise
    with pytest.raises(PoselabError, match="--precision 'fp8': choose one of fp32"):
        analyze_videos(trained["run"], [trained["video"]], dest=tmp_path, precision="fp8")
    result = CliRunner().invoke(app, ["analyze", str(trained["run"]), str(trained["video"]),
                                      "--precision", "fp8", "--dest", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--precision 'fp8'" in result.output
    assert not (tmp_path / "x").exists()


def test_deeplabcut_meta_pickle_beside_the_predictions(trained: dict, analyzed: Path):
    """DeepLabCut's tools read `<video><scorer>_meta.pickle`; poselab writes it (plain Python
    values, DeepLabCut's keys) and never reads it. Loaded here only to check it."""
    import pickle

    path = analyzed.with_name(analyzed.stem + "_meta.pickle")
    data = pickle.loads(path.read_bytes())["data"]
    meta = json.loads(analyzed.with_name(analyzed.stem + "_meta.json").read_text())
    assert data["Scorer"] == meta["scorer"] == "poselab_resnet18_tiny"
    assert data["nframes"] == N_FRAMES and data["frame_dimensions"] == (64, 96)
    assert data["fps"] == pytest.approx(meta["fps"]) and data["batch_size"] == 8
    assert data["cropping"] is False and data["cropping_parameters"] == [0, 96, 0, 64]
    # Epoch seconds (~1.8e9) carry ~2e-7 s of float rounding, so compare to the millisecond.
    assert data["run_duration"] >= 0 and data["stop"] - data["start"] == pytest.approx(
        data["run_duration"], abs=1e-3)
    assert {"iteration (active-learning)", "training set fraction"} <= set(data)
    assert data["poselab"]["precision"] == "fp32"


def test_test_flip_can_be_turned_off_for_speed(trained: dict, analyzed: Path, tmp_path: Path):
    """A run trained with test-time flips averages each frame with its mirror unless
    --no-test-flip; then it gives exactly what the same weights give without flips."""
    import yaml

    from poselab.pose.evaluation import evaluate

    run = trained["run"].with_name("tiny-flip")
    shutil.copytree(trained["run"], run, dirs_exist_ok=True)
    info = yaml.safe_load((run / "run.yaml").read_text())
    info["train"]["test_flip"], info["flip_pairs"] = True, [["leftear", "rightear"]]
    (run / "run.yaml").write_text(yaml.safe_dump(info))
    (flipped,) = analyze_videos(run, [trained["video"]], dest=tmp_path / "a", device="cpu")
    (plain,) = analyze_videos(run, [trained["video"]], dest=tmp_path / "b", device="cpu",
                              test_flip=False)
    meta = json.loads(flipped.with_name(flipped.stem + "_meta.json").read_text())
    assert meta["test_flip"] is True
    meta = json.loads(plain.with_name(plain.stem + "_meta.json").read_text())
    assert meta["test_flip"] is False
    base = _read(analyzed).to_numpy()
    np.testing.assert_allclose(_read(plain).to_numpy(), base, atol=1e-4)
    assert not np.allclose(_read(flipped).to_numpy(), base, atol=1e-3)
    on, off = evaluate(run), evaluate(run, test_flip=False)
    assert on["test_flip"] is True and off["test_flip"] is False
    assert off["test"]["mean_px_error"] == pytest.approx(
        evaluate(trained["run"])["test"]["mean_px_error"], abs=1e-3)
    result = CliRunner().invoke(app, ["analyze", str(run), str(trained["video"]), "--dest",
                                      str(tmp_path / "c"), "--no-test-flip", "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_scorer_option_names_the_files_as_deeplabcut_looks_for_them(trained: dict,
                                                                     tmp_path: Path):
    """DeepLabCut's tools find `<video><scorer>.h5` by their shuffle's scorer."""
    import pickle

    dlc = "DLC_Resnet50_anOct30shuffle1_snapshot_200"
    (h5,) = analyze_videos(trained["run"], [trained["video"]], dest=tmp_path, device="cpu",
                           scorer=dlc)
    assert h5 == tmp_path / f"mouse{dlc}.h5"
    assert _read(h5).columns.get_level_values("scorer")[0] == dlc
    assert pickle.loads((tmp_path / f"mouse{dlc}_meta.pickle").read_bytes())["data"][
        "Scorer"] == dlc
    for bad in ("", "a/b", " x"):
        with pytest.raises(PoselabError, match="--scorer"):
            analyze_videos(trained["run"], [trained["video"]], dest=tmp_path, scorer=bad)


def test_predictions_match_evaluation_path(trained: dict, analyzed: Path):
    """Predictor on decoded video frames == the evaluation code on the labeled PNGs."""
    from poselab.io.labels import load_labeled_frames
    from poselab.io.project import open_project
    from poselab.pose.data import read_split
    from poselab.pose.evaluation import eval_loader, predict_loader
    from poselab.pose.heatmaps import Codec
    from poselab.pose.predict import load_run

    model, info, _ = load_run(trained["run"])
    frames = load_labeled_frames(open_project(trained["config"]))
    test_idx = read_split(trained["run"] / "split.json", frames).test
    loader = eval_loader(frames, test_idx, Codec(**info["codec"]), model.mean, model.std)
    ref = predict_loader(model, loader, Codec(**info["codec"]), torch.device("cpu"), None)
    numbers = [int(Path(frames.paths[i]).stem.removeprefix("img")) for i in ref["index"]]
    with VideoReader(trained["video"]) as reader:
        video_frames = np.stack([f for _, f in reader.frames(numbers)])  # BGR (N, H, W, 3)
    for fuse in (False, True):  # fused batch norms agree within float rounding
        predictor = Predictor.from_dir(trained["run"], device="cpu", batch_size=3, fuse=fuse)
        xy, lik = predictor.predict_frames(video_frames)
        np.testing.assert_allclose(xy, ref["xy"], atol=1e-3 if fuse else 1e-5)
        np.testing.assert_allclose(lik, ref["likelihood"], atol=1e-4 if fuse else 1e-6)
    # The analyzed table holds the same numbers at those frame indices.
    table_xy, _, _ = predictions_arrays(_read(analyzed))
    np.testing.assert_allclose(table_xy[numbers], xy, atol=1e-4)
    # A crop moves the input, not the frame of reference: coordinates stay full-frame.
    shifted, _ = predictor.predict_frames(video_frames[:, 8:, 16:], offset=(16, 8))
    cropped = analyze_video(predictor, trained["video"], dest=analyzed.parent / "crop",
                            progress=False, crop="16,96,8,64")
    np.testing.assert_allclose(predictions_arrays(_read(cropped))[0][numbers], shifted,
                               atol=1e-4)
    meta = json.loads(cropped.with_name(cropped.stem + "_meta.json").read_text())
    assert meta["crop"] == [16, 96, 8, 64] and meta["width"] == 96  # the full frame's size
    # Honest accuracy check for a seconds-long random-init model: better than a frame-center
    # guess on held-out frames (the slow accuracy test lives in test_training.py).
    truth_xy, _, _ = predictions_arrays(pd.read_hdf(trained["truth"]))
    err = np.linalg.norm(xy - truth_xy[numbers], axis=-1)
    center = np.linalg.norm(np.array([48, 32]) - truth_xy[numbers], axis=-1)
    assert np.median(err) < np.median(center), (np.median(err), np.median(center))


def test_skip_overwrite_and_interrupt(trained: dict, tmp_path: Path, monkeypatch):
    predictor = Predictor.from_dir(trained["run"], device="cpu")
    calls = {"n": 0}
    real = predictor.predict_rgb

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(predictor, "predict_rgb", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyze_video(predictor, trained["video"], dest=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # an interrupted run leaves nothing behind
    monkeypatch.setattr(predictor, "predict_rgb", real)
    h5 = tmp_path / "mouseposelab_resnet18_tiny.h5"
    h5.write_bytes(b"sentinel")  # an analyzed video: a re-run must not touch it
    assert analyze_video(predictor, trained["video"], dest=tmp_path, progress=False) == h5
    assert h5.read_bytes() == b"sentinel"
    analyze_video(predictor, trained["video"], dest=tmp_path, overwrite=True, csv=True,
                  progress=False)
    assert len(_read(h5)) == N_FRAMES
    csv = pd.read_csv(h5.with_suffix(".csv"), header=[0, 1, 2], index_col=0)
    np.testing.assert_allclose(csv.to_numpy(), _read(h5).to_numpy(), rtol=1e-6)


def test_streaming_is_bounded_and_rows_stay_aligned(trained: dict, tmp_path: Path,
                                                    monkeypatch):
    """The decoding thread runs at most a few batches ahead of a slow model (memory does not
    grow with video length), and row i holds frame i's prediction."""
    import poselab.analysis.analyze as analyze_module

    produced, consumed, ahead = {"n": 0}, [0], []
    real_frames = VideoReader.frames

    def counting(self, indices=None):
        for item in real_frames(self, indices):
            produced["n"] += 1
            yield item

    def slow_model(frames, offset):  # x = the frame's mean brightness, a per-frame signature
        consumed[0] += len(frames)
        ahead.append(produced["n"] - consumed[0])  # decoded, not yet through the model
        time.sleep(0.02)
        xy = np.repeat(frames.mean(axis=(1, 2, 3))[:, None, None], 2, axis=2)
        return xy.repeat(len(SYNTHETIC_BODYPARTS), 1).astype(np.float32), np.ones(
            (len(frames), len(SYNTHETIC_BODYPARTS)), np.float32)

    monkeypatch.setattr(VideoReader, "frames", counting)
    fake = SimpleNamespace(scorer="fake", bodyparts=list(SYNTHETIC_BODYPARTS), batch_size=4,
                           predict_rgb=slow_model, run=trained["run"], epoch=0, device="cpu",
                           dtype=None, input_scale=1.0)
    h5 = analyze_video(fake, trained["video"], dest=tmp_path, progress=False)
    # decoding overlaps the model (runs ahead), but only by the bounded queue
    assert 4 <= max(ahead) <= (analyze_module._QUEUE_BATCHES + 2) * 4 < N_FRAMES
    monkeypatch.setattr(VideoReader, "frames", real_frames)
    with VideoReader(trained["video"]) as reader:
        means = [f.mean() for _, f in reader]
    np.testing.assert_allclose(_read(h5)["fake"].iloc[:, 0], means, rtol=1e-5)


def test_truncated_video_gives_nan_rows_never_a_short_table(trained: dict, tmp_path: Path,
                                                            capsys):
    cut = tmp_path / "cut.avi"
    data = trained["video"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    predictor = Predictor.from_dir(trained["run"], device="cpu")
    h5 = analyze_video(predictor, cut, progress=False)
    df = _read(h5)
    meta = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())
    assert len(df) == N_FRAMES == meta["n_frames"]  # the container's count, not the decoded
    decoded = meta["frames_decoded"]
    assert 0 < decoded < N_FRAMES and meta["true_frame_count"] == decoded
    assert meta["missing_frames"] == N_FRAMES - decoded
    assert df.iloc[:decoded].notna().all().all()
    xy, lik, _ = predictions_arrays(df)
    assert np.isnan(xy[decoded:]).all() and (lik[decoded:] == 0).all()  # missing, not blank
    assert "could not be decoded" in capsys.readouterr().err
    assert cut.read_bytes() == data[: len(data) // 2]  # the input is never modified


def test_undecodable_first_frame_keeps_every_csv_row(trained: dict, tmp_path: Path,
                                                    monkeypatch):
    """Frame 0 undecodable: its row is x, y NaN and likelihood 0, never `0,,,,...`, which
    read_csv(header=[0, 1, 2], index_col=0) (DeepLabCut, keypoint-moseq) takes for index
    names and drops. The outlier search and the report still count it as missing."""
    from poselab.analysis.outliers import find_candidates
    from poselab.analysis.report import quality_summary

    frames = VideoReader.frames

    def lose_frame_0(self, *args, **kwargs):
        for i, frame in frames(self, *args, **kwargs):
            if i == 0:
                self.decode_errors = sorted({0, *self.decode_errors})
                continue
            yield i, frame

    monkeypatch.setattr(VideoReader, "frames", lose_frame_0)
    predictor = Predictor.from_dir(trained["run"], device="cpu")
    h5 = analyze_video(predictor, trained["video"], dest=tmp_path, csv=True, progress=False)
    table = pd.read_csv(h5.with_suffix(".csv"), header=[0, 1, 2], index_col=0)
    assert list(table.index) == list(range(N_FRAMES))  # frame 0 is a data row
    assert table.index.names == [None] and table.columns.nlevels == 3
    row0 = h5.with_suffix(".csv").read_text().splitlines()[3].split(",")
    assert row0[0] == "0" and row0[3] == "0.0"  # index, x, y, likelihood 0: not blank
    xy, lik, bodyparts = predictions_arrays(table)
    assert np.isnan(xy[0]).all() and (lik[0] == 0).all()
    assert np.isfinite(xy[1:]).all() and (lik[1:] > 0).all()
    assert json.loads(h5.with_name(h5.stem + "_meta.json").read_text())["missing_frames"] == 1
    candidates = find_candidates(xy, lik, ["likelihood"], 20.0, pcutoff=1.01)
    assert list(candidates) == list(range(1, N_FRAMES))  # frame 0: nothing to correct
    summary = quality_summary(xy, lik, bodyparts, pcutoff=0.0)
    assert all(part["missing"] == 1 and part["unsure"] == 1
               for part in summary["bodyparts"].values())


def test_every_command_accepts_the_rows_of_a_video_that_ends_early(trained: dict,
                                                                    tmp_path: Path):
    """One frame-count contract: analyze pads a truncated video to its declared count with NaN
    rows, and labeled-video, filter, plot-trajectories and extract-outliers all accept that
    file (labeled-video used to refuse it: 'decoding ended after 21 frames')."""
    from poselab.analysis.outliers import extract_outliers
    from poselab.analysis.postprocess import filter_predictions
    from poselab.io.project import create_project
    from poselab.viz.trajectory_plots import plot_trajectories
    from poselab.viz.video_output import make_labeled_video

    cut = tmp_path / "cut.avi"
    data = trained["video"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    predictor = Predictor.from_dir(trained["run"], device="cpu")
    h5 = analyze_video(predictor, cut, progress=False)
    decoded = json.loads(h5.with_name(h5.stem + "_meta.json").read_text())["frames_decoded"]
    assert len(_read(h5)) == N_FRAMES > decoded
    labeled = make_labeled_video(cut, h5)
    with VideoReader(labeled) as reader:
        assert reader.count_frames() == N_FRAMES  # one frame per row; lost ones drawn as such
    filtered = filter_predictions(h5)
    assert len(_read(filtered)) == N_FRAMES
    assert plot_trajectories(filtered)  # writes its figures without complaint
    config = create_project("cut", "gt", [cut], bodyparts=list(SYNTHETIC_BODYPARTS),
                            working_dir=tmp_path / "p")
    result = extract_outliers(config, cut, h5, n=5, criteria=["likelihood"], pcutoff=1.0,
                              progress=False)
    assert result.frames and all(int(f.stem[3:]) < decoded for f in result.frames)
    # a table of another length is still refused, with the counts named
    short = tmp_path / "short.h5"
    from poselab.io.predictions import write_predictions
    write_predictions(_read(h5).iloc[:decoded - 3], short)
    with pytest.raises(PoselabError, match=f"{decoded - 3} prediction rows but .* has "
                                            f"{decoded} decodable frames"):
        make_labeled_video(cut, short)


def test_process_pool_matches_sequential(trained: dict, analyzed: Path, tmp_path: Path,
                                         monkeypatch):
    second, _ = write_synthetic_video(tmp_path / "videos" / "other.avi", 20, (96, 64), seed=5)
    shutil.copy(trained["video"], tmp_path / "videos" / "mouse.avi")
    folder = tmp_path / "videos"
    seq = analyze_videos(trained["run"], [folder], dest=analyzed.parent, device="cpu")
    assert seq == [analyzed, analyzed.with_name("otherposelab_resnet18_tiny.h5")]  # sorted
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two spawned workers on two cores
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        par = analyze_videos(trained["run"], [second, folder / "mouse.avi"],
                             dest=tmp_path / "par", executor=pool, device="cpu")
    assert [p.name for p in par] == [seq[1].name, seq[0].name]  # input order
    for a, b in zip(par, reversed(seq), strict=True):
        pd.testing.assert_frame_equal(_read(a), _read(b), check_exact=False, atol=1e-4)


@pytest.mark.slow
def test_worker_elsewhere_gets_absolute_paths(trained: dict, analyzed: Path, tmp_path: Path,
                                              monkeypatch):
    """Relative run, video and --dest paths work on a worker whose working directory is not
    ours (a Dask worker started elsewhere used to fail with "not a poselab run")."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(trained["root"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = os.path.relpath(trained["run"])
    video = os.path.relpath(trained["video"])
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=os.chdir, initargs=(str(elsewhere),)) as pool:
        assert pool.submit(os.getcwd).result() == str(elsewhere)
        (h5,) = analyze_videos(run, [video], dest="relative-out", executor=pool, device="cpu")
    assert h5 == trained["root"] / "relative-out" / analyzed.name
    assert not list(elsewhere.iterdir())  # nothing landed in the worker's directory
    pd.testing.assert_frame_equal(_read(h5), _read(analyzed), check_exact=False, atol=1e-4)


def test_cli_analyze_and_bad_input(trained: dict, tmp_path: Path):
    """One bad video is named (exit 2) without losing the others' results."""
    runner = CliRunner()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(4000))
    dest = tmp_path / "out"
    args = ["analyze", str(trained["run"]), str(garbage), str(trained["video"]), "--dest",
            str(dest), "--csv", "--batch-size", "5", "--device", "cpu"]
    bad = runner.invoke(app, args)
    assert bad.exit_code == 2 and "1 of 2 video(s) failed" in bad.output, bad.output
    assert "garbage.mp4" in bad.output and "Traceback" not in bad.output
    h5 = dest / "mouseposelab_resnet18_tiny.h5"
    assert len(_read(h5)) == N_FRAMES and h5.with_suffix(".csv").is_file()
    with pytest.raises(AnalysisError, match="garbage.mp4") as info:  # the same in Python
        analyze_videos(trained["run"], [garbage, trained["video"]], dest=dest, csv=True)
    assert info.value.written == [h5]
    out = runner.invoke(app, ["analyze", str(trained["run"]), str(trained["video"]),
                              "--dest", str(dest), "--csv"])  # analyzed: skipped
    assert out.exit_code == 0 and out.output.strip() == str(h5), out.output
    for args, message in [
        ([str(trained["run"]), str(tmp_path / "missing.avi")], "missing.avi: video not found"),
        ([str(tmp_path), str(trained["video"])], "not a poselab run"),
        ([str(trained["run"]), str(dest)], "no video files"),  # outputs only
    ]:
        bad = runner.invoke(app, ["analyze", *args, "--dest", str(dest)])
        assert bad.exit_code == 2, bad.output
        assert message in bad.output and "Traceback" not in bad.output
    with pytest.raises(PoselabError, match="batch size"):
        Predictor.from_dir(trained["run"], device="cpu", batch_size=0)
