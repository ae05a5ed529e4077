"""A seeded suite of labeled synthetic datasets, written as DeepLabCut projects, for robustness.

Each variant in VARIANTS is a dataset unlike DeepLabCut's openfield example (4 keypoints,
a dark mouse on a bright floor, 640x480): many keypoints with thin parts, two views of one
animal in a frame, a small animal in a large frame, few labels, missing labels, low
contrast, a light animal on a dark floor, motion blur. The animal (synthetic_animal.py)
walks, bends, turns its head, trots and waves its tail over a textured floor (bedding,
tiles, a rubber mat, plastic) with a soft shadow, sensor noise, slight defocus and
per-frame exposure changes, so a model has to learn appearance, not a colour threshold.

`make_suite_project(variant, root, seed)` renders a long track, picks frames spread over
it, and writes a project in DeepLabCut's layout: config.yaml (with skeleton and
flip_pairs), videos/<variant>.mp4 (the labeled frames in order), labeled-data/<variant>/
img<NNNN>.png with CollectedData_synthetic.h5/.csv, plus the exact ground truth of every
frame (ground-truth.h5/.csv, keypoints left unlabeled on purpose included) and
synthetic.json (the variant, seed and which keypoints are unlabeled). The same (variant,
seed, n_frames) gives the same bytes.

Adding a variant: add a Variant to VARIANTS (a one-line description, size, frame count,
keypoints, look, floor) and a case in tests/io/test_synthetic_suite.py if it adds an
option.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from poselab.errors import PoselabError
from poselab.io.fileio import atomic_write_text
from poselab.io.labels import empty_labels, read_labels, write_labels
from poselab.io.project import create_project, open_project
from poselab.io.synthetic_animal import (
    Look,
    draw_side,
    draw_top,
    fur_texture,
    pose_at,
    side_body,
    top_body,
    walk,
)

SCORER = "synthetic"
GROUND_TRUTH = "ground-truth"  # <project>/ground-truth.h5 and .csv
METADATA = "synthetic.json"
PROJECT_DATE = dt.date(2024, 1, 1)  # fixed, so the same call gives the same project path
_STRIDE = 15  # track steps between picked frames: consecutive labeled frames differ a lot

# keypoint sets: (name in the dataset, view, part of synthetic_animal)
_FULL = [(p, "top", p) for p in ["snout", "lefteye", "righteye", "leftear", "rightear",
                                  "neck", "midback", "hips", "tailbase", "tail1", "tail2",
                                  "tail3", "tailtip", "leftfrontpaw", "rightfrontpaw",
                                  "lefthindpaw", "righthindpaw"]]
_MEDIUM = [(p, "top", "tail2" if p == "tailmid" else p) for p in [
    "snout", "leftear", "rightear", "neck", "midback", "tailbase", "tailmid", "tailtip",
    "leftfrontpaw", "rightfrontpaw", "lefthindpaw", "righthindpaw"]]
_TWO_VIEWS = ([(f"{p}_top", "top", p) for p in [
    "snout", "leftear", "rightear", "leftfrontpaw", "rightfrontpaw", "lefthindpaw",
    "righthindpaw", "tailbase", "tailtip"]]
    + [(f"{p}_side", "side", p) for p in [
        "snout", "eye", "ear", "frontpaw", "hindpaw", "tailbase", "tailmid", "tailtip"]])
_CHAIN = ["snout", "neck", "midback", "hips", "tailbase", "tail1", "tail2", "tailmid", "tail3",
          "tailtip"]  # the spine and tail, snout to tip, as a skeleton chain

_AGOUTI = Look(fur=(70, 98, 128), pink=(150, 140, 226), tail=(118, 126, 186), eye=(20, 20, 24))
_BLACK = Look(fur=(40, 42, 46), pink=(135, 125, 205), tail=(88, 94, 122), eye=(8, 8, 10))
_GREY = Look(fur=(72, 76, 82), pink=(140, 132, 215), tail=(110, 116, 150), eye=(14, 14, 16))
_ALBINO = Look(fur=(226, 230, 236), pink=(165, 160, 240), tail=(176, 182, 226),
               eye=(60, 40, 170), texture=0.45, shadow=0.45)
_FAINT = Look(fur=(114, 117, 121), pink=(124, 122, 146), tail=(108, 110, 126),
              eye=(84, 86, 90), texture=0.6, shadow=0.12)


@dataclass(frozen=True)
class Variant:
    """One dataset of the suite; `scale` is the animal scale s as a fraction of min(w, h)."""

    description: str
    size: tuple[int, int]  # (width, height)
    frames: int
    parts: list[tuple[str, str, str]]
    look: Look
    floor: tuple[str, tuple[float, float, float]]  # (style, BGR colour); see _floor
    scale: float = 0.05
    noise: float = 3.0  # sensor noise std, grey levels
    hidden: float = 0.0  # fraction of keypoints left unlabeled (ground truth keeps them)
    speed: float = 1.0  # walking speed factor
    exposure: float = 0.0  # motion blur: exposure in track steps (0: a sharp frame)
    views: str = "top"  # "top", or "top+side": a corridor with a mirror side view


VARIANTS: dict[str, Variant] = {
    "many_keypoints": Variant(
        "17 keypoints (eyes, ears, spine, 4 paws, 5 tail points) of a walking agouti mouse "
        "on wood-chip bedding, 400x320", (400, 320), 100, _FULL, _AGOUTI,
        ("bedding", (150, 182, 205))),
    "two_views": Variant(
        "a grey mouse in a corridor seen from above and in a side mirror, 17 keypoints named "
        "per view, 396x406", (396, 406), 90, _TWO_VIEWS, _GREY, ("plastic", (198, 202, 204)),
        scale=0.042, views="top+side"),
    "small_in_large": Variant(
        "a small black mouse (~7% of the frame's width) on a tiled floor, 1280x1024",
        (1280, 1024), 60, _MEDIUM, _BLACK, ("tiles", (172, 164, 156)), scale=0.02,
        noise=2.5),
    "few_labels": Variant(
        "40 labeled frames of a black mouse on a green rubber mat, 352x288", (352, 288), 40,
        _MEDIUM, _BLACK, ("mat", (118, 150, 128)), scale=0.06),
    "missing_labels": Variant(
        "10% of keypoints unlabeled at random (agouti mouse on dark bedding), 384x384",
        (384, 384), 100, _MEDIUM, _AGOUTI, ("bedding", (120, 150, 172)), hidden=0.1),
    "low_contrast": Variant(
        "a grey mouse barely darker than its grey floor, noisy, 448x336", (448, 336), 80,
        _MEDIUM, _FAINT, ("plastic", (140, 144, 148)), scale=0.055, noise=4.0),
    "light_on_dark": Variant(
        "a white mouse with red eyes on a black rubber floor, 368x368", (368, 368), 80,
        _MEDIUM, _ALBINO, ("mat", (36, 38, 42)), noise=4.0),
    "motion_blur": Variant(
        "a fast-running agouti mouse, strong motion blur (~13 px smears), 480x360",
        (480, 360), 80, _MEDIUM, _AGOUTI, ("plastic", (176, 192, 184)), speed=3.0,
        exposure=1.6),
}
SUITE_VARIANTS: dict[str, str] = {name: v.description for name, v in VARIANTS.items()}


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise PoselabError(f"unknown synthetic variant {name!r}; have {', '.join(VARIANTS)}")
    return VARIANTS[name]


# ----------------------------------------------------------------------------- scenery
def _floor(size: tuple[int, int], style: str, colour, rng: np.random.Generator) -> np.ndarray:
    """A textured floor, float32 (H, W, 3) BGR: shading, mottle, grain and a style.

    Styles: bedding (wood chips), tiles (grout lines, tiles of slightly different shade),
    mat (rubber dimples and dust), plastic (scratches).
    """
    w, h = size
    base = np.asarray(colour, np.float32)
    broad = cv2.resize(rng.normal(size=(4, 5)).astype(np.float32), (w, h), cv2.INTER_CUBIC)
    mottle = cv2.GaussianBlur(rng.normal(size=(h, w)).astype(np.float32), (0, 0), 3.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    vignette = 1.0 - 0.2 * (((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 4.0)
    shade = vignette * (1.0 + 0.05 * broad + 0.5 * mottle)
    if style == "mat":
        period = max(4.0, 0.03 * min(w, h))
        shade *= 1.0 + 0.07 * np.cos(2 * np.pi * xx / period) * np.cos(2 * np.pi * yy / period)
    if style == "tiles":
        period = int(0.16 * min(w, h))
        gains = rng.uniform(0.95, 1.05, size=(h // period + 1, w // period + 1))
        shade *= gains[(yy // period).astype(int), (xx // period).astype(int)]
        grout = (np.minimum(xx % period, yy % period) < 2).astype(np.float32)
        shade *= 1.0 - 0.25 * cv2.GaussianBlur(grout, (0, 0), 0.7)
    img = base * shade[..., None]
    n = int(w * h / (90 if style == "bedding" else 1500))
    for _ in range(n):  # chips of bedding, or scratches and dust
        p = rng.uniform([0, 0], [w, h])
        tone = rng.uniform(0.72, 1.2) * rng.uniform(0.97, 1.03, size=3)
        col = tuple(float(v) for v in base * tone)
        if style == "bedding":
            axes = rng.uniform([1.5, 0.7], [4.5, 2.0])
            ax = tuple(int(a * 16) for a in axes)
            cv2.ellipse(img, tuple(int(v * 16) for v in p), ax, float(rng.uniform(0, 180)), 0,
                        360, col, -1, cv2.LINE_AA, 4)
        else:
            q = p + rng.normal(scale=3.0, size=2)
            cv2.line(img, tuple(int(v * 16) for v in p), tuple(int(v * 16) for v in q), col, 1,
                     cv2.LINE_AA, 4)
    img += rng.normal(scale=2.0, size=img.shape).astype(np.float32)
    return img


def _mirror_background(size, colour, rng, panel: int, gap: int, floor_x: float) -> np.ndarray:
    """Corridor floor (left panel), the mirror frame, and a side wall with a floor strip."""
    w, h = size
    img = _floor(size, "plastic", colour, rng)
    img[:, :4] *= 0.55  # corridor walls
    img[:, panel - 4:panel] *= 0.55
    img[:, panel:panel + gap] = (34, 34, 38)
    wall = _floor((w - panel - gap, h), "plastic", tuple(0.82 * c for c in colour), rng)
    strip = wall[:, int(floor_x) - panel - gap:]
    strip *= 0.8  # the floor seen edge-on, in shade
    img[:, panel + gap:] = 0.92 * wall  # a mirror loses some light
    return img


# ----------------------------------------------------------------------------- dataset
class SuiteDataset:
    """A variant's frames rendered on demand, with exact keypoints.

    Attributes:
        variant: the variant's name.
        bodyparts: keypoint names, in column order.
        keypoints: ground truth, float64 (N, K, 2), pixel centres at integers.
        hidden: bool (N, K), True where the labels leave the keypoint out (NaN): at random
            (the variant's `hidden` fraction) or because it is outside the frame or its view.
        outside: bool (N, K), True where a keypoint is outside the frame or its view's panel.
        times: the track step of each frame, int (N,).
    """

    def __init__(self, variant: str, seed: int = 0, n_frames: int | None = None) -> None:
        spec = _variant(variant)
        n = spec.frames if n_frames is None else int(n_frames)
        if n < 1:
            raise PoselabError(f"n_frames must be at least 1, got {n_frames}")
        self.variant, self.spec, self.seed = variant, spec, int(seed)
        self.size = spec.size
        w, h = spec.size
        self.s = spec.scale * min(w, h)
        self.bodyparts = [name for name, _, _ in spec.parts]
        # each variant draws its own numbers: the same seed gives unrelated tracks and floors
        self._key = zlib.crc32(variant.encode())
        rng = np.random.default_rng([self.seed, self._key, 1])
        self._tex = fur_texture(np.random.default_rng([self.seed, self._key, 2]))
        if spec.views == "top+side":
            self._panel, gap = int(0.49 * w), 8
            self._floor_x = self._panel + gap + 0.72 * (w - self._panel - gap)
            self.background = _mirror_background(spec.size, spec.floor[1], rng, self._panel,
                                                 gap, self._floor_x)
            box = np.array([0.5 * self._panel - 0.6 * self.s, 3.4 * self.s,
                            0.5 * self._panel + 0.6 * self.s, h - 3.4 * self.s])
        else:
            self.background = _floor(spec.size, *spec.floor, rng)
            m = 3.6 * self.s
            box = np.array([m, m, w - m, h - m])
        def stream(k: int) -> np.random.Generator:
            return np.random.default_rng([self.seed, self._key, k])

        # a blurred variant keeps running (no pauses): every frame is smeared
        self._track = walk(_STRIDE * (n + 2), box, self.s, stream(3), spec.speed,
                           0.6 if spec.exposure else -1.0, spec.views == "top+side")
        self.times, self.keypoints = self._pick(n, stream(4))
        self.hidden = self._hide(stream(5))

    def _points(self, t: float) -> np.ndarray:
        """Keypoints at step t, float64 (K, 2)."""
        body = top_body(pose_at(self._track, t), self.s)
        side = side_body(body, self._floor_x).points if self.spec.views == "top+side" else {}
        views = {"top": body.points, "side": side}
        return np.array([views[view][part] for _, view, part in self.spec.parts])

    def _inside(self, kp: np.ndarray) -> np.ndarray:
        """Per keypoint, bool (K,): at least 2 px inside the frame and inside its view's panel."""
        w, h = self.size
        x0 = np.zeros(len(kp)) + 2
        x1 = np.full(len(kp), w - 3.0)
        if self.spec.views == "top+side":
            top = np.array([view == "top" for _, view, _ in self.spec.parts])
            x1[top] = self._panel - 6
            x0[~top] = self._panel + 10
        return (kp[:, 0] >= x0) & (kp[:, 0] <= x1) & (kp[:, 1] >= 2) & (kp[:, 1] <= h - 3)

    def _pick(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One frame per stride of the track, at a random step whose keypoints all fit.

        When no step of a stride fits (rare: the tail near a wall), the step with the most
        keypoints inside is taken and the others are left unlabeled (`self.outside`), as a
        labeler would; the ground truth keeps them.
        """
        times, kps, outside = [], [], []
        for i in range(n):
            start = _STRIDE * (i + 1)
            best = None
            for k in rng.permutation(_STRIDE):
                kp = self._points(start + int(k))
                inside = self._inside(kp)
                if best is None or inside.sum() > best[2].sum():
                    best = (start + int(k), kp, inside)
                if inside.all():
                    break
            times.append(best[0])
            kps.append(best[1])
            outside.append(~best[2])
        self.outside = np.stack(outside)  # bool (N, K)
        return np.array(times), np.stack(kps)

    def _hide(self, rng: np.random.Generator) -> np.ndarray:
        n, k, _ = self.keypoints.shape
        hidden = np.zeros(n * k, bool)
        count = int(round(self.spec.hidden * n * k))
        hidden[rng.choice(n * k, size=count, replace=False)] = True
        hidden = hidden.reshape(n, k) | self.outside
        for i in np.nonzero(hidden.all(axis=1))[0]:  # every frame keeps at least one label
            hidden[i, np.argmin(self.outside[i])] = False
        return hidden

    def __len__(self) -> int:
        return len(self.times)

    @property
    def labels(self) -> np.ndarray:
        """The keypoints as labeled: float64 (N, K, 2) with NaN where hidden."""
        out = self.keypoints.copy()
        out[self.hidden] = np.nan
        return out

    def _draw(self, img: np.ndarray, t: float) -> None:
        body = top_body(pose_at(self._track, t), self.s)
        if self.spec.views == "top+side":
            side = img.copy()
            draw_side(side, side_body(body, self._floor_x), self.spec.look, self._tex)
            draw_top(img, body, self.spec.look, self._tex)
            img[:, self._panel:] = side[:, self._panel:]  # each view stays in its panel
        else:
            draw_top(img, body, self.spec.look, self._tex)

    def image(self, i: int) -> np.ndarray:
        """Frame i, uint8 (H, W, 3) BGR."""
        t = float(self.times[i])
        spec = self.spec
        if spec.exposure > 0:  # average sub-frames over the exposure, centred on t
            subs = np.linspace(-spec.exposure / 2, spec.exposure / 2, 12)
            img = np.zeros_like(self.background)
            for dt_ in subs:
                frame = self.background.copy()
                self._draw(frame, t + dt_)
                img += frame / len(subs)
        else:
            img = self.background.copy()
            self._draw(img, t)
        rng = np.random.default_rng([self.seed, self._key, 6, i])
        img = cv2.GaussianBlur(img, (0, 0), 0.6)  # lens softness
        img *= rng.uniform(0.93, 1.07) * rng.uniform(0.97, 1.03, size=3).astype(np.float32)
        img += rng.normal(scale=spec.noise, size=img.shape).astype(np.float32)
        return np.clip(np.round(img), 0, 255).astype(np.uint8)

    @property
    def skeleton(self) -> list[list[str]]:
        """Spine chain, ears to the snout, paws to the nearest spine point, per view."""
        pairs = []
        for view in ("top", "side"):
            names = {part: name for name, v, part in self.spec.parts if v == view}
            chain = [names[p] for p in _CHAIN if p in names]
            pairs += [[a, b] for a, b in zip(chain, chain[1:], strict=False)]
            for part, anchors in (("leftear", ["snout"]), ("rightear", ["snout"]),
                                  ("ear", ["snout"]), ("eye", ["snout"]),
                                  ("lefteye", ["snout"]), ("righteye", ["snout"]),
                                  ("leftfrontpaw", ["neck", "midback", "snout"]),
                                  ("rightfrontpaw", ["neck", "midback", "snout"]),
                                  ("frontpaw", ["snout"]), ("hindpaw", ["tailbase"]),
                                  ("lefthindpaw", ["hips", "midback", "tailbase"]),
                                  ("righthindpaw", ["hips", "midback", "tailbase"])):
                anchor = next((names[a] for a in anchors if a in names), None)
                if part in names and anchor is not None:
                    pairs.append([names[part], anchor])
        return pairs

    @property
    def flip_pairs(self) -> list[list[str]]:
        """Left/right keypoint pairs a horizontal flip swaps."""
        names = set(self.bodyparts)
        pairs = []
        for name in self.bodyparts:
            if "left" in name and name.replace("left", "right") in names:
                pairs.append([name, name.replace("left", "right")])
        return pairs


# ----------------------------------------------------------------------------- project
def _table(ds: SuiteDataset, values: np.ndarray, scorer: str) -> pd.DataFrame:
    images = [f"img{i:04d}.png" for i in range(len(ds))]
    df = empty_labels(scorer, ds.bodyparts, ds.variant, images)
    df.iloc[:, :] = values.reshape(len(ds), -1)  # columns: (bodypart, x), (bodypart, y), ...
    return df


def _render_files(ds: SuiteDataset, folder: Path) -> Path:
    """Write every frame as a PNG into folder and, in order, into folder/<variant>.mp4."""
    video = folder / f"{ds.variant}.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, ds.size)
    try:
        if not writer.isOpened():
            raise PoselabError(f"{video}: cv2.VideoWriter cannot open an mp4v writer")
        for i in range(len(ds)):
            img = ds.image(i)
            if not cv2.imwrite(str(folder / f"img{i:04d}.png"), img):
                raise PoselabError(f"{folder}: cannot write img{i:04d}.png")
            writer.write(img)
    finally:
        writer.release()
    return video


def make_suite_project(variant: str, root: str | os.PathLike, seed: int = 0,
                       n_frames: int | None = None) -> Path:
    """Render a variant of the suite and write it as a labeled DeepLabCut-layout project.

    Args:
        variant: a name in SUITE_VARIANTS.
        root: folder to create the project in (`<variant>-synthetic-2024-01-01/`).
        seed: random seed; the same (variant, seed, n_frames) gives the same files.
        n_frames: labeled frames (default: the variant's).

    Returns:
        Path of the project's config.yaml.

    Raises:
        PoselabError: unknown variant, n_frames < 1, or the project folder exists. Nothing
            is left behind on failure.
    """
    ds = SuiteDataset(variant, seed, n_frames)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    project_dir = root / f"{variant}-{SCORER}-{PROJECT_DATE.isoformat()}"
    if project_dir.exists():
        raise PoselabError(f"{project_dir}: already exists; open its config.yaml instead")
    with tempfile.TemporaryDirectory(prefix=f".{variant}-", dir=root) as tmp:
        video = _render_files(ds, Path(tmp))
        config = create_project(variant, SCORER, [video], ds.bodyparts, copy_videos=True,
                                working_dir=root, date=PROJECT_DATE)
        try:
            _fill_project(config, ds, Path(tmp))
        except BaseException:
            shutil.rmtree(config.parent, ignore_errors=True)
            raise
    return config


def _fill_project(config: Path, ds: SuiteDataset, rendered: Path) -> None:
    project = open_project(config)
    folder = project.labeled_data_dir / ds.variant
    for i in range(len(ds)):
        name = f"img{i:04d}.png"
        shutil.move(rendered / name, folder / name)
    write_labels(_table(ds, ds.labels, SCORER), project.label_file(folder))
    write_labels(_table(ds, ds.keypoints, "truth"), project.root / GROUND_TRUTH)
    meta = {"variant": ds.variant, "description": ds.spec.description, "seed": ds.seed,
            "n_frames": len(ds), "size": list(ds.size), "animal_scale_px": ds.s,
            "bodyparts": ds.bodyparts, "hidden_keypoints": int(ds.hidden.sum()),
            "hidden": [[f"img{i:04d}.png", ds.bodyparts[k]] for i, k in zip(
                *np.nonzero(ds.hidden), strict=True)],
            "track_steps": ds.times.tolist()}
    atomic_write_text(project.root / METADATA, json.dumps(meta, indent=1) + "\n")
    cfg = project.cfg
    cfg["skeleton"] = ds.skeleton
    cfg["flip_pairs"] = ds.flip_pairs
    cfg["TrainingFraction"] = [0.7]
    cfg["dotsize"] = max(2, int(round(0.2 * ds.s)))
    project.save()


def load_ground_truth(config_path: str | os.PathLike) -> pd.DataFrame:
    """The exact keypoints of every labeled frame of a suite project (unlabeled ones too).

    Returns:
        A canonical labels table (scorer "truth"), same index and bodyparts as the labels.

    Raises:
        PoselabError: the project has no ground-truth file (not made by this module).
    """
    root = Path(config_path)
    root = root if root.is_dir() else root.parent
    path = root / f"{GROUND_TRUTH}.h5"
    if not path.is_file():
        raise PoselabError(f"{root}: no {GROUND_TRUTH}.h5; not a synthetic suite project")
    return read_labels(path)


def preview_frame(variant: str, seed: int = 0, index: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One frame of a variant without writing anything: (image uint8 (H, W, 3) BGR,
    keypoints float64 (K, 2), bodyparts). Draw with poselab.viz.plots.draw_keypoints."""
    ds = SuiteDataset(variant, seed, index + 1)
    return ds.image(index), ds.keypoints[index], ds.bodyparts


__all__ = ["SCORER", "SUITE_VARIANTS", "VARIANTS", "SuiteDataset", "Variant",
           "load_ground_truth", "make_suite_project", "preview_frame"]
