"""Analyze videos: one predictions table per video, in DeepLabCut's layout, never partial.

`analyze_video(predictor, video)` streams a video through a `Predictor`: a background thread
decodes frames and stacks them into batches (a bounded queue, so memory does not grow with
video length) while the model runs. It writes `<stem><scorer>.h5` (one row per frame; an
undecodable frame has x, y NaN and likelihood 0, never a blank .csv row, which
`read_csv(header=[0, 1, 2], index_col=0)` would take for index names) and
`<stem><scorer>_meta.json` (the facts DeepLabCut keeps in `_meta.pickle`), plus that
`_meta.pickle` in DeepLabCut's layout for its own tools (written only: poselab never loads
a pickle).
`analyze_videos(run, videos, executor=...)` spreads videos over any
concurrent.futures.Executor (a process pool, Dask's `client.get_executor()`).

Extending: a new per-video output (e.g. a labeled video) is a function of the written .h5,
not a new branch here; new metadata goes into `_metadata` with a test in test_analyze.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import queue
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write, atomic_write_text, ensure_dir
from poselab.pose.predict import (
    DEFAULT_PRECISION,
    Predictor,
    check_precision,
    precision_name,
    read_run_info,
    run_scorer,
)
from poselab.progress import progress_bar

_QUEUE_BATCHES = 3  # decoded batches waiting for the model: bounds memory, keeps it busy
_DONE = object()  # end-of-video marker on the queue


class AnalysisError(PoselabError):
    """Some videos failed; `written` holds the outputs of those that did not."""

    def __init__(self, message: str, written: list[Path]):
        super().__init__(message)
        self.written = written


def output_paths(video: str | os.PathLike, scorer: str, dest: str | os.PathLike | None = None
                 ) -> tuple[Path, Path]:
    """(`<stem><scorer>.h5`, `<stem><scorer>_meta.json`) in `dest` (default: the video's folder)."""
    video = Path(video)
    folder = Path(dest) if dest is not None else video.parent
    return folder / f"{video.stem}{scorer}.h5", folder / f"{video.stem}{scorer}_meta.json"


def _done(h5: Path, csv: bool) -> bool:
    return h5.is_file() and (not csv or h5.with_suffix(".csv").is_file())


def _batches(reader, batch_size: int, out: queue.Queue, stop: threading.Event) -> None:
    """Producer thread: put (indices (B,), RGB frames (B, H, W, 3)) batches, then _DONE."""

    def put(item) -> bool:
        while not stop.is_set():  # a timeout loop, so a stopped consumer never hangs us
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        indices, frames = [], []
        for i, frame in reader.frames():
            indices.append(i)
            # BGR -> RGB here, in the decoding thread, off the model's critical path.
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if len(frames) == batch_size:
                if not put((np.asarray(indices), np.stack(frames))):
                    return
                indices, frames = [], []
        if frames and not put((np.asarray(indices), np.stack(frames))):
            return
        put(_DONE)
    except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
        put(exc)


def analyze_video(
    predictor: Predictor,
    video: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    csv: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    crop: str | Sequence[int] | None = None,
) -> Path:
    """Predict keypoints on every frame of a video and write the predictions table.

    Args:
        predictor: the model (`Predictor.from_dir(run)`).
        video: the video file (only read).
        dest: output folder (created if needed; default: the video's folder).
        csv: also write the .csv twin.
        overwrite: re-analyze even if the .h5 exists (else the video is skipped).
        progress: tqdm bar with frames/s; None shows it only on a terminal.
        crop: "x1,x2,y1,y2" to analyze a region; coordinates stay in full-frame pixels.

    Returns:
        The .h5 path (written now, or already there).

    Raises:
        VideoError: missing or unreadable video.
    """
    from poselab.io.predictions import (
        predictions_frame,
        variance_frame,
        write_predictions,
        write_variance,
    )
    from poselab.io.video import VideoReader

    video = Path(video)
    h5, meta_path = output_paths(video, predictor.scorer, dest)
    if _done(h5, csv) and not overwrite:
        return h5
    h5.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    k = len(predictor.bodyparts)
    with VideoReader(video, crop=crop) as reader:
        offset = (reader.crop[0], reader.crop[2]) if reader.crop else (0, 0)
        results: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # small: K x 3 per frame
        ensemble = hasattr(predictor, "predict_rgb_with_variance")
        variances: list[tuple[np.ndarray, np.ndarray]] = []
        batches: queue.Queue = queue.Queue(maxsize=_QUEUE_BATCHES)
        stop = threading.Event()
        thread = threading.Thread(target=_batches, args=(reader, predictor.batch_size, batches,
                                                         stop), daemon=True)
        bar = progress_bar(total=reader.n_frames or None, unit="frame", desc=video.name,
                           leave=False, progress=progress)
        thread.start()
        try:
            while (item := batches.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                indices, frames = item
                if ensemble:  # the members' spread goes to the variance sidecar
                    xy, lik, var = predictor.predict_rgb_with_variance(frames, offset)
                    variances.append((indices, var))
                else:
                    xy, lik = predictor.predict_rgb(frames, offset)  # (B, K, 2), (B, K)
                results.append((indices, xy, lik))
                bar.update(len(indices))
        finally:
            stop.set()
            thread.join()
            bar.close()
        decoded = sum(len(r[0]) for r in results)
        last = int(results[-1][0][-1]) + 1 if results else 0
        true_count = reader.count_known if reader.count_known is not None else last
        # Never silently shorter: as many rows as the container declares or the true count.
        n_rows = max(reader.n_frames, true_count, last)
        xy_all = np.full((n_rows, k, 2), np.nan, np.float32)
        lik_all = np.zeros((n_rows, k), np.float32)  # undecodable: certainly no keypoint seen
        for indices, xy, lik in results:
            xy_all[indices], lik_all[indices] = xy, lik
        seconds = time.perf_counter() - start
        meta = _metadata(predictor, reader, video, decoded, true_count, n_rows, seconds)
        if meta["missing_frames"]:
            print(f"warning: {video}: {meta['missing_frames']} of {n_rows} frames could not be "
                  f"decoded; their x, y are NaN, likelihood 0 "
                  f"({reader.report() or 'see the metadata'})",
                  file=sys.stderr)
    # The metadata goes first: the .h5, written last and atomically, marks a finished video.
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    dlc = pickle.dumps(dlc_metadata(meta, getattr(predictor, "info", {})), protocol=4)
    atomic_write(dlc_meta_path(h5), lambda tmp: Path(tmp).write_bytes(dlc))
    if ensemble:  # the sidecar before the .h5 too: a finished .h5 has its variance beside it
        var_all = np.full((n_rows, k, 2), np.nan, np.float32)
        for indices, var in variances:
            var_all[indices] = var
        write_variance(variance_frame(var_all, predictor.bodyparts, predictor.scorer), h5)
    df = predictions_frame(xy_all, lik_all, predictor.bodyparts, predictor.scorer)
    write_predictions(df, h5, csv=csv)
    return h5


def _metadata(predictor: Predictor, reader, video: Path, decoded: int, true_count: int,
              n_rows: int, seconds: float) -> dict:
    from poselab import __version__

    return {
        "video": str(video.resolve()), "fps": reader.fps, "width": reader.width,
        "height": reader.height, "n_frames": reader.n_frames, "rows": n_rows,
        "frames_decoded": decoded, "true_frame_count": true_count,
        "missing_frames": n_rows - decoded, "decode_errors": list(reader.decode_errors),
        "crop": list(reader.crop) if reader.crop else None,
        "run": str(predictor.run.resolve()), "checkpoint_epoch": predictor.epoch,
        "scorer": predictor.scorer, "bodyparts": predictor.bodyparts,
        "device": str(predictor.device), "batch_size": predictor.batch_size,
        "input_scale": predictor.input_scale,  # the network saw frames resized by this
        "autocast_dtype": str(predictor.dtype).removeprefix("torch.") if predictor.dtype
        else "float32",
        # what the model computed in, and the setting that chose it on this device
        "precision": precision_name(predictor.dtype),
        "precision_requested": getattr(predictor, "precision", None),
        "test_flip": _flips(predictor),  # averaged with the mirrored frame
        "seconds": round(seconds, 3), "frames_per_second": round(decoded / max(seconds, 1e-9), 2),
        "poselab_version": __version__, "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def dlc_meta_path(h5: str | os.PathLike) -> Path:
    """DeepLabCut's `<stem><scorer>_meta.pickle` beside a predictions .h5."""
    h5 = Path(h5)
    return h5.with_name(f"{h5.stem}_meta.pickle")


def dlc_metadata(meta: dict, info: dict) -> dict:
    """The `_meta.pickle` content DeepLabCut's create_labeled_video, filterpredictions and
    extract_outlier_frames read: {"data": {...}} with its key names, from poselab's metadata
    and the run's run.yaml. Plain Python values only, so any pickle reader loads it."""
    width, height = int(meta["width"]), int(meta["height"])
    crop = meta.get("crop")
    seconds = float(meta.get("seconds") or 0.0)
    stop = dt.datetime.fromisoformat(meta["date"]).timestamp()
    train = info.get("train") or {}
    return {"data": {
        "start": stop - seconds, "stop": stop, "run_duration": seconds,
        "Scorer": meta["scorer"], "fps": float(meta["fps"] or 0.0),
        "batch_size": int(meta["batch_size"]),
        "frame_dimensions": (height, width),  # (rows, columns) as DeepLabCut writes it
        "nframes": int(meta["rows"]),
        "iteration (active-learning)": 0,
        "training set fraction": float(train.get("train_fraction") or 0.0),
        "cropping": crop is not None,
        "cropping_parameters": [int(v) for v in crop] if crop else [0, width, 0, height],
        "poselab": {"run": meta["run"], "precision": meta.get("precision"),
                    "missing_frames": int(meta["missing_frames"]),
                    "version": meta["poselab_version"]},
    }}


def expand_videos(videos: Iterable[str | os.PathLike]) -> list[Path]:
    """Video files, with each folder replaced by its video files (sorted, by extension).

    Raises:
        PoselabError: a path does not exist, or a folder holds no video.
    """
    from poselab.io.project import VIDEO_EXTENSIONS

    out: list[Path] = []
    for v in map(Path, videos):
        if v.is_dir():
            found = sorted(p for p in v.iterdir()
                           if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise PoselabError(f"{v}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
            out.extend(found)
        elif v.is_file():
            out.append(v)
        else:
            raise PoselabError(f"{v}: video not found")
    return out


def _flips(predictor) -> bool:
    members = getattr(predictor, "members", [predictor])
    return all(getattr(m, "flip_perm", None) is not None for m in members)


@lru_cache(maxsize=1)
def _worker_predictor(run: str, device: str, batch_size: int, stamp: int,
                      precision: str = DEFAULT_PRECISION,
                      test_flip: bool | None = None) -> Predictor:
    """The model, loaded once per worker process (`stamp`: a retrained run reloads)."""
    return Predictor.from_dir(run, device=device, batch_size=batch_size, precision=precision,
                              test_flip=test_flip)


def analyze_one(run: str, video: str, dest: str | None, batch_size: int, device: str,
                csv: bool, overwrite: bool, precision: str = DEFAULT_PRECISION,
                scorer: str | None = None, test_flip: bool | None = None) -> Path:
    """One video in a worker process (picklable: plain arguments, module level)."""
    scorer = scorer or run_scorer(run, read_run_info(run))
    h5, _ = output_paths(video, scorer, dest)
    if _done(h5, csv) and not overwrite:
        return h5  # no model load for a skipped video
    stamp = max((p.stat().st_mtime_ns for p in Path(run).glob("*.pt")), default=0)
    predictor = _worker_predictor(run, device, batch_size, stamp, precision, test_flip)
    if getattr(predictor, "scorer", scorer) != scorer:  # --scorer
        predictor.scorer = scorer
    return analyze_video(predictor, video, dest, csv, overwrite, progress=False)


def check_scorer(scorer: str) -> str:
    """A scorer name for output files: non-empty, no path separator."""
    if not scorer or any(c in scorer for c in "/\\") or scorer.strip() != scorer:
        raise PoselabError(f"--scorer {scorer!r}: a file-name part without '/' or '\\' "
                           "or surrounding spaces")
    return scorer


def analyze_videos(
    run: str | os.PathLike,
    videos: Iterable[str | os.PathLike],
    dest: str | os.PathLike | None = None,
    executor: Executor | None = None,
    batch_size: int = 8,
    device: str = "auto",
    csv: bool = False,
    overwrite: bool = False,
    report: bool = False,
    precision: str = DEFAULT_PRECISION,
    scorer: str | None = None,
    test_flip: bool | None = None,
) -> list[Path]:
    """Analyze many videos with one run, in this process or spread over an executor.

    Args:
        run: the run dir.
        videos: video files and/or folders (their video files, sorted).
        dest: output folder (default: beside each video).
        executor: None runs here, one video after another; any concurrent.futures.Executor
            (ProcessPoolExecutor with a "spawn" or "forkserver" context, Dask's
            `client.get_executor(pure=False)`) gets one task per video, each worker process
            loading the model once (set OMP_NUM_THREADS to cores / workers).
        batch_size, device: as `Predictor.from_dir` (device as seen by each worker).
        csv, overwrite: as `analyze_video`.
        report: also write each video's quality report `<stem>_report.html`
            (poselab.analysis.report, with the run's pcutoff and skeleton).
        precision: fp32 (default: the same numbers on every machine), bf16, fp16 (CUDA) or
            auto (bf16/fp16 where the device is fast at it); recorded in the metadata.
        scorer: the scorer of the output files (default poselab_<backbone>_<run>), e.g. a
            DeepLabCut shuffle's `DLC_Resnet50_<Task><date>shuffle1_snapshot_200`, the name
            by which DeepLabCut's own tools find predictions beside a video.
        test_flip: None (default) averages each frame with its mirror when the run was
            trained to; False does not (about twice as fast; recorded in the metadata).

    Returns:
        The .h5 paths, in the order of `videos`.

    Raises:
        PoselabError: not a run, a missing path (before any work); AnalysisError after all
            videos were tried, naming each one that failed (`.written` has the others).
    """
    run = str(Path(run))
    info = read_run_info(run)  # fail fast on a folder that is not a run
    check_precision(precision)
    scorer = check_scorer(scorer) if scorer is not None else run_scorer(run, info)
    paths = expand_videos(videos)
    if dest is not None:
        dest = ensure_dir(dest)  # a file given as --dest is one line, before any work
    # Absolute paths for the workers: a remote or spawned worker's working directory is not
    # ours (os.path.abspath, not resolve: a symlinked video keeps its name, hence its outputs').
    dest_s = os.path.abspath(dest) if dest is not None else None
    args = [(os.path.abspath(run), os.path.abspath(v), dest_s, batch_size, device, csv,
             overwrite, precision, scorer, test_flip) for v in paths]
    written: list[Path | None] = [None] * len(paths)
    failures: list[str] = []

    def failed(video: Path, exc: BaseException) -> None:
        what = str(exc) if isinstance(exc, PoselabError) else f"{type(exc).__name__}: {exc}"
        failures.append(what if str(video) in what else f"{video}: {what}")
        print(f"error: {failures[-1]}", file=sys.stderr)

    if executor is None:
        predictor = None
        for i, video in enumerate(paths):
            try:
                h5, _ = output_paths(video, scorer, dest)
                if _done(h5, csv) and not overwrite:
                    written[i] = h5
                    continue
                predictor = predictor or Predictor.from_dir(run, device, batch_size,
                                                            precision=precision,
                                                            test_flip=test_flip)
                if getattr(predictor, "scorer", scorer) != scorer:  # --scorer
                    predictor.scorer = scorer
                written[i] = analyze_video(predictor, video, dest, csv, overwrite)
            except Exception as exc:  # noqa: BLE001 - reported; the other videos go on
                failed(video, exc)
    else:
        futures = [executor.submit(analyze_one, *a) for a in args]
        for i, (video, future) in enumerate(zip(paths, futures, strict=True)):
            try:
                written[i] = Path(future.result())
            except Exception as exc:  # noqa: BLE001
                failed(video, exc)
    if report:
        from poselab.analysis.report import write_report

        for video, h5 in zip(paths, written, strict=True):
            try:
                if h5 is not None:
                    write_report(h5, video=video)
            except Exception as exc:  # noqa: BLE001 - reported; the other videos go on
                failed(video, exc)
    done = [p for p in written if p is not None]
    if failures:
        raise AnalysisError(f"{len(failures)} of {len(paths)} video(s) failed: "
                            + "; ".join(failures), done)
    return done
