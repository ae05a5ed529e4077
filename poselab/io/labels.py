"""DeepLabCut label tables (CollectedData): read, validate, write, and view as arrays.

The canonical labels DataFrame (what `read_labels` returns and `write_labels` expects):
- index: 3-level tuples ("labeled-data", "<video stem>", "img0123.png"), level names None;
- columns: MultiIndex (scorer, bodyparts, coords) with coords "x", "y";
- values: float64 pixels, x = column, y = row, pixel centers at integers; NaN = not labeled.

Prediction tables (x, y, likelihood per frame) live in predictions.py; the tolerant
readers `_read_h5`/`_read_csv` here serve both.

Notation: N frames, K keypoints. Every write is atomic (temp file + os.replace), so a crash
leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import LabelFileError
from poselab.io.fileio import atomic_write

log = logging.getLogger(__name__)

COLUMN_NAMES = ["scorer", "bodyparts", "coords"]
H5_KEY = "df_with_missing"
# pandas < 3 parses CSV floats approximately unless asked; pandas 3 is exact by default and
# deprecates the option.
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


# ----------------------------------------------------------------------------- reading
def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CollectedData .h5 (any key) or .csv into the canonical labels DataFrame.

    Accepts the old single-string row index (with / or \\ separators), the current 3-level
    tuple index, and drops stray likelihood columns.

    Raises:
        LabelFileError: missing, unreadable or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: label file not found")
    if path.suffix == ".h5":
        df = _read_h5(path)
    elif path.suffix == ".csv":
        df = _read_csv(path)
    else:
        raise LabelFileError(f"{path}: expected a .h5 or .csv label file")
    return canonical_labels(df, path)


def _read_h5(path: Path) -> pd.DataFrame:
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = store.keys()
            if not keys:
                raise LabelFileError(f"{path}: the HDF5 file holds no table")
            key = "/" + H5_KEY if "/" + H5_KEY in keys else keys[0]
            if len(keys) > 1 and key != "/" + H5_KEY:
                raise LabelFileError(f"{path}: several tables ({', '.join(keys)}); expected one")
            df = store[key]
    except LabelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyTables raises many types for bad files
        # HDF5's own message is a multi-line back-trace: its first line says enough
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()),
                     type(exc).__name__)
        raise LabelFileError(f"{path}: not a readable HDF5 file ({first[:160]})") from None
    if not isinstance(df, pd.DataFrame):
        raise LabelFileError(f"{path}: the HDF5 table is not a DataFrame")
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            head = [row for _, row in zip(range(3), csv.reader(f), strict=False)]
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"{path}: cannot read ({exc})") from exc
    if len(head) < 3 or head[0][:1] != ["scorer"] or head[2][:1] != ["coords"]:
        raise LabelFileError(
            f"{path}: not a DeepLabCut label CSV (expected header rows scorer, bodyparts, coords)"
        )
    # Index columns precede the first coordinate: 1 in old files, 3 in current ones.
    coords_row = head[2]
    n_index = next((i for i, v in enumerate(coords_row) if v in ("x", "y", "likelihood")), 0)
    if n_index not in (1, 3):
        raise LabelFileError(f"{path}: cannot find the x/y columns in the coords header row")
    # header=[0, 1, 2] would take an all-empty FIRST data row (an unlabeled frame) for a row of
    # index names and silently drop it: read the data rows headerless, name the columns here.
    try:
        df = pd.read_csv(path, header=None, skiprows=3, index_col=list(range(n_index)),
                         **_EXACT_FLOATS)
    except pd.errors.EmptyDataError:  # a table without rows
        index = (pd.MultiIndex.from_tuples([], names=[None] * n_index) if n_index > 1
                 else pd.Index([], dtype=object))
        df = pd.DataFrame(index=index, columns=range(len(coords_row) - n_index), dtype="float64")
    except Exception as exc:  # noqa: BLE001 - pandas parser errors vary
        raise LabelFileError(f"{path}: malformed CSV ({exc})") from exc
    if any(len(row) != n_index + df.shape[1] for row in head):
        raise LabelFileError(f"{path}: header rows and data rows have different lengths")
    df.columns = pd.MultiIndex.from_arrays([row[n_index:] for row in head])
    df.index.names = [None] * n_index
    return df


def _index_tuple(entry: object, path: Path) -> tuple[str, str, str]:
    if isinstance(entry, tuple):
        parts = [str(p) for p in entry]
        if len(parts) == 3:
            return parts[0], parts[1], parts[2].replace("\\", "/").split("/")[-1]
        entry = "/".join(parts)
    parts = [p for p in str(entry).replace("\\", "/").split("/") if p]
    if len(parts) >= 3:
        return parts[-3], parts[-2], parts[-1]
    if len(parts) == 1:  # a bare image name: it lives in the label file's own folder
        return "labeled-data", path.parent.name, parts[0]
    raise LabelFileError(f"{path}: cannot read the image path '{entry}' of a row")


def canonical_labels(df: pd.DataFrame, path: str | os.PathLike = "<labels>") -> pd.DataFrame:
    """Bring a labels table read from any DeepLabCut-era file into the canonical form."""
    path = Path(path)
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 3:
        if isinstance(cols, pd.MultiIndex) and cols.nlevels == 4:
            raise LabelFileError(
                f"{path}: multi-animal label file (individuals level) is not supported yet"
            )
        raise LabelFileError(f"{path}: columns must have 3 levels (scorer, bodyparts, coords)")
    df = df.copy()
    df.columns = df.columns.set_names(COLUMN_NAMES)
    df = df.loc[:, df.columns.get_level_values("coords") != "likelihood"]
    coords = set(df.columns.get_level_values("coords"))
    if not coords <= {"x", "y"}:
        raise LabelFileError(f"{path}: unexpected coords {sorted(coords - {'x', 'y'})}")
    for scorer, bodypart in dict.fromkeys(zip(*df.columns.codes[:2], strict=True)):
        s, b = df.columns.levels[0][scorer], df.columns.levels[1][bodypart]
        if (s, b, "x") not in df.columns or (s, b, "y") not in df.columns:
            raise LabelFileError(f"{path}: bodypart '{b}' lacks an x or a y column")
    # Rebuild columns from their values so unused levels (e.g. 'likelihood') disappear.
    df.columns = pd.MultiIndex.from_tuples(list(df.columns), names=COLUMN_NAMES)
    try:
        df = df.apply(pd.to_numeric).astype("float64")
    except (ValueError, TypeError) as exc:
        raise LabelFileError(f"{path}: non-numeric coordinate ({exc})") from exc
    tuples = [_index_tuple(e, path) for e in df.index]
    df.index = pd.MultiIndex.from_tuples(tuples, names=[None, None, None])
    if df.index.has_duplicates:
        dup = df.index[df.index.duplicated()][0]
        raise LabelFileError(f"{path}: image {'/'.join(dup)} appears in several rows")
    return df


def label_bodyparts(df: pd.DataFrame) -> list[str]:
    """Bodyparts of a labels or predictions table, in column order."""
    return list(dict.fromkeys(df.columns.get_level_values("bodyparts")))


def read_machine_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labeled-data folder's machinelabels-iter<N>.h5 (or .csv): predicted keypoints.

    Rows are indexed like `read_labels` (3-level tuples, old string paths converted) and the
    coords are x, y, likelihood (likelihood NaN where the file has none). Only
    `poselab extract-outliers` writes these files; the labeler never modifies them.

    Raises:
        LabelFileError: missing, unreadable or malformed file.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: predictions file not found")
    df = _read_h5(path) if path.suffix == ".h5" else _read_csv(path)
    if not isinstance(df.columns, pd.MultiIndex) or df.columns.nlevels != 3:
        raise LabelFileError(f"{path}: columns must have 3 levels (scorer, bodyparts, coords)")
    df = df.copy()
    df.columns = df.columns.set_names(COLUMN_NAMES)
    coords = set(df.columns.get_level_values("coords"))
    if not {"x", "y"} <= coords <= {"x", "y", "likelihood"}:
        raise LabelFileError(f"{path}: expected coords x, y, likelihood, found {sorted(coords)}")
    df = df.apply(pd.to_numeric, errors="coerce").astype("float64")
    if "likelihood" not in coords:
        for scorer, bodypart in dict.fromkeys((s, b) for s, b, _ in df.columns):
            df[(scorer, bodypart, "likelihood")] = np.nan
    df.index = pd.MultiIndex.from_tuples([_index_tuple(e, path) for e in df.index])
    return df


def conform_labels(
    df: pd.DataFrame, bodyparts: list[str], path: str | os.PathLike = "<labels>"
) -> pd.DataFrame:
    """Order columns as `bodyparts`; bodyparts new in the config become NaN columns.

    Raises:
        LabelFileError: the file has bodyparts the config does not list (nothing is dropped
            silently).
    """
    have = label_bodyparts(df)
    extra = [b for b in have if b not in bodyparts]
    if extra:
        raise LabelFileError(
            f"{path}: bodyparts {extra} are not in config.yaml bodyparts {bodyparts}"
        )
    scorer = df.columns.get_level_values("scorer")[0] if len(df.columns) else "scorer"
    columns = pd.MultiIndex.from_product([[scorer], bodyparts, ["x", "y"]], names=COLUMN_NAMES)
    if df.columns.get_level_values("scorer").nunique() > 1:
        raise LabelFileError(f"{path}: several scorers in one label file")
    return df.reindex(columns=columns).astype("float64")


def empty_labels(scorer: str, bodyparts: list[str], folder: str, images: list[str]) -> pd.DataFrame:
    """An all-NaN labels table for images of labeled-data/<folder>/."""
    index = pd.MultiIndex.from_arrays(
        [["labeled-data"] * len(images), [folder] * len(images), list(images)],
        names=[None, None, None],
    )
    columns = pd.MultiIndex.from_product([[scorer], bodyparts, ["x", "y"]], names=COLUMN_NAMES)
    return pd.DataFrame(np.nan, index=index, columns=columns, dtype="float64")


# ----------------------------------------------------------------------------- writing
def write_labels(df: pd.DataFrame, path: str | os.PathLike) -> tuple[Path, Path]:
    """Write a labels table as CollectedData .h5 (key df_with_missing) AND its .csv twin.

    Args:
        df: canonical labels DataFrame.
        path: the .h5 or .csv path (the other twin goes beside it).

    Returns:
        (h5 path, csv path).
    """
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".h5", ".csv") else base
    df = canonical_labels(df, base)
    h5, csv_path = base.with_name(base.name + ".h5"), base.with_name(base.name + ".csv")
    atomic_write(h5, lambda tmp: df.to_hdf(tmp, key=H5_KEY, mode="w"))
    atomic_write(csv_path, lambda tmp: df.to_csv(tmp))
    return h5, csv_path


# ----------------------------------------------------------------------------- arrays view
@dataclass
class LabeledFrames:
    """Labeled images as arrays for training: `keypoints` is float32 (N, K, 2), NaN = missing.

    `absent` (N, K) bool marks keypoints a labeler said are not visible (NaN in the
    keypoints, flagged in the folder's not-visible sidecar): training teaches the model to
    predict nothing there, where a never-labeled keypoint is left out of the loss. None
    means no keypoint is marked (label files without the sidecar behave as before).
    """

    paths: list[Path]
    keypoints: np.ndarray
    bodyparts: list[str]
    absent: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def absent_mask(self) -> np.ndarray:
        """(N, K) bool, all False when nothing is marked not visible."""
        if self.absent is None:
            return np.zeros(self.keypoints.shape[:2], bool)
        return self.absent


def labels_to_arrays(df: pd.DataFrame, project_root: str | os.PathLike) -> LabeledFrames:
    """Arrays view of a canonical labels table; image paths resolved under project_root."""
    root = Path(project_root)
    bodyparts = label_bodyparts(df)
    scorer = df.columns.get_level_values("scorer")[0]
    xs = df.loc[:, [(scorer, b, "x") for b in bodyparts]].to_numpy("float32")
    ys = df.loc[:, [(scorer, b, "y") for b in bodyparts]].to_numpy("float32")
    paths = [root.joinpath(*t) for t in df.index]
    return LabeledFrames(paths, np.stack([xs, ys], axis=-1), bodyparts)


def read_label_twins(path: str | os.PathLike) -> pd.DataFrame:
    """`read_labels` of a CollectedData file, falling back to its twin (.h5 <-> .csv).

    A truncated or corrupt .h5 whose .csv is intact (a crash between the two writes, a
    disk problem) loses nothing: the twin is read and a warning names the broken file.

    Raises:
        LabelFileError: neither twin is readable (naming the file asked for).
    """
    path = Path(path)
    try:
        return read_labels(path)
    except LabelFileError as first:
        twin = path.with_suffix(".csv" if path.suffix == ".h5" else ".h5")
        if not twin.is_file():
            raise
        try:
            df = read_labels(twin)
        except LabelFileError:
            raise first from None
        log.warning("%s; using its twin %s", first, twin.name)
        return df


def find_label_file(folder: Path, scorer: str) -> Path | None:
    """CollectedData_<scorer>.h5 of a folder, else its .csv twin, else None."""
    for suffix in (".h5", ".csv"):
        p = folder / f"CollectedData_{scorer}{suffix}"
        if p.is_file():
            return p
    return None


def _other_label_files(folder: Path, scorer: str) -> list[Path]:
    """CollectedData_<another scorer> files of a folder (one per scorer, .h5 preferred)."""
    found: dict[str, Path] = {}
    for p in sorted(folder.glob("CollectedData_*")):
        name = p.stem.removeprefix("CollectedData_")
        if p.suffix in (".h5", ".csv") and name != scorer and (name not in found
                                                                 or p.suffix == ".h5"):
            found[name] = p
    return list(found.values())


def _as_scorer(df: pd.DataFrame, scorer: str, path: Path) -> pd.DataFrame:
    """The table under the config's scorer name; a file that used another one is said."""
    have = str(df.columns.get_level_values("scorer")[0]) if len(df.columns) else scorer
    if have != scorer:
        log.warning("%s: labels by scorer %r, config.yaml's scorer is %r; used as %r's",
                    path, have, scorer, scorer)
        df = df.copy()
        df.columns = df.columns.set_levels([scorer], level="scorer")
    return df


def load_project_labels(project) -> pd.DataFrame:
    """All folders' labels of a project, conformed to its bodyparts, in one table.

    Each file is read under its own scorer and renamed to config.yaml's, so a file whose
    scorer differs (another person, another capitalisation) is merged by (folder, image),
    with a warning naming it, instead of becoming NaN columns that training would ignore.
    A folder with no CollectedData_<config scorer> file but one of another scorer uses it
    (with a warning); several of them are merged, the config scorer's file first.
    """
    tables = []
    for folder in project.labeled_folders():
        path = find_label_file(folder, project.scorer)
        paths = [path] if path is not None else []
        others = _other_label_files(folder, project.scorer)
        if path is None and others:
            log.warning("%s: no CollectedData_%s file; using %s", folder, project.scorer,
                        ", ".join(p.name for p in others))
            paths = others
        for p in paths:
            df = conform_labels(read_label_twins(p), project.bodyparts, p)
            tables.append(_as_scorer(df, project.scorer, p))
    if not tables:
        return empty_labels(project.scorer, project.bodyparts, "", [])
    merged = pd.concat(tables)
    if merged.index.has_duplicates:  # an image in two files: the first file wins where both
        merged = merged.groupby(level=[0, 1, 2], sort=False).first()  # have a label
    return merged


NOT_VISIBLE_SIDECAR = ".poselab-notvisible.json"  # written by the labeler (labeler/store.py)


def read_not_visible(folder: Path) -> dict[str, set[str]]:
    """{image name: bodyparts marked not visible} of a labeled-data folder ({} if none).

    A malformed sidecar is ignored with a warning: it only refines NaN labels.
    """
    path = Path(folder) / NOT_VISIBLE_SIDECAR
    if not path.is_file():
        return {}
    try:
        frames = json.loads(path.read_text(encoding="utf-8"))["frames"]
        return {str(f): {str(b) for b in bps} for f, bps in frames.items()
                if isinstance(bps, list)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: ignored, not a readable not-visible file (%s)", path, exc)
        return {}


def load_labeled_frames(project) -> LabeledFrames:
    """Every frame with at least one labeled or not-visible keypoint, as arrays (training).

    A keypoint marked not visible counts only while its label is NaN (a label written later
    by another tool wins over a stale flag).
    """
    df = load_project_labels(project)
    flags = {folder.name: read_not_visible(folder) for folder in project.labeled_folders()}
    bodyparts = project.bodyparts
    absent = np.zeros((len(df), len(bodyparts)), bool)
    for i, (_, folder, image) in enumerate(df.index):
        for b in flags.get(folder, {}).get(image, ()):
            if b in bodyparts:
                absent[i, bodyparts.index(b)] = True
    xy_missing = df.isna().to_numpy().reshape(len(df), len(bodyparts), 2).all(axis=2)
    absent &= xy_missing
    keep = df.notna().any(axis=1).to_numpy() | absent.any(axis=1)
    frames = labels_to_arrays(df[keep], project.root)
    frames.absent = absent[keep] if absent.any() else None
    return frames
