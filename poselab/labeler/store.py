"""The labeler's label store: one `FolderStore` per labeled-data folder, crash-safe saves.

Every read and write of CollectedData goes through poselab.io.labels (read_labels,
conform_labels, write_labels). This module adds what a long labeling session needs:

- Edits are applied to a copy of the table, written, and only then become the in-memory
  state, so memory always equals what was last read from or written to disk.
- Paired commit: the .h5 and .csv (and the not-visible sidecar) are first written completely
  as `.poselab-tmp-*` files, then a journal naming the renames is written atomically, then
  the renames run, then the journal is deleted. `recover()` (run whenever a folder is opened)
  rolls an interrupted commit forward, so after a crash at any instant the two files end up
  equal to the same committed state. Without recovery a reader sees each file parseable and
  at worst one commit apart (.h5 renamed first).
- Change detection: the (mtime, size, sha256) of what the store last read or wrote is kept;
  a save refuses (ConflictError) when another program changed the files meanwhile.
- "Not visible" is NaN in the DeepLabCut files (their format has no flag) and is remembered
  in `labeled-data/<stem>/.poselab-notvisible.json`; an entry counts only while the point is
  NaN, so a label written by another tool always wins over a stale flag.

Extending: a new kind of edit value is parsed in edits.parse_edits and applied in
`FolderStore._apply_one`; anything it must persist goes into `_commit`'s list of moves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from poselab.errors import LabelFileError, PoselabError
from poselab.io.info import list_images
from poselab.io.labels import (
    conform_labels,
    empty_labels,
    read_labels,
    read_machine_labels,
    write_labels,
)
from poselab.labeler.edits import Value, image_size

NOTVISIBLE_NAME = ".poselab-notvisible.json"
NOTVISIBLE_FORMAT = "poselab-notvisible/1"
JOURNAL_NAME = ".poselab-commit.json"
TMP_PREFIX = ".poselab-tmp-"


class ConflictError(PoselabError):
    """The label files changed on disk since the store last read or wrote them."""


class ReadOnlyError(PoselabError):
    """The folder's label file cannot be used (malformed, or bodyparts not in config)."""


@dataclass(frozen=True)
class Signature:
    """What a file looked like when the store last read or wrote it."""

    mtime_ns: int
    size: int
    sha256: str


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def signature(path: Path) -> Signature | None:
    """(mtime, size, sha256) of a file, None when it does not exist."""
    try:
        st = path.stat()
        return Signature(st.st_mtime_ns, st.st_size, _sha256(path))
    except FileNotFoundError:
        return None


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    _fsync_file(path)


def recover(folder: Path) -> list[str]:
    """Finish or discard an interrupted commit in a labeled-data folder.

    A journal exists only after every temporary file was completely written, so its renames
    are redone (roll forward). Temporary files without a journal belong to a commit that
    never reached its renames and are deleted.

    Returns:
        What was done, as sentences for the page (empty when nothing was interrupted).
    """
    done = []
    journal = folder / JOURNAL_NAME
    if journal.is_file():
        try:
            moves = json.loads(journal.read_text(encoding="utf-8"))["moves"]
        except (OSError, ValueError, KeyError, TypeError):
            moves = []  # unreadable journal: written atomically, so this is not ours
        for src, dst in moves:
            if ("/" in src + dst or "\\" in src + dst or not src.startswith(TMP_PREFIX)
                    or not (dst.startswith("CollectedData_") or dst == NOTVISIBLE_NAME)):
                continue  # the journal only ever names these files of this folder
            if (folder / src).is_file():
                os.replace(folder / src, folder / dst)
                done.append(f"completed an interrupted save of {dst}")
        journal.unlink(missing_ok=True)
    for stray in folder.iterdir():
        # write_labels' own temp files are named ".<name>.tmp-<pid>"
        if stray.name.startswith((TMP_PREFIX, "." + TMP_PREFIX)) and stray.is_file():
            stray.unlink(missing_ok=True)
    return done


class FolderStore:
    """Labels of one labeled-data folder, kept equal to the files on disk.

    Thread-safe: every public method takes the store's lock (the server runs them in a
    thread pool).
    """

    def __init__(self, folder: Path, scorer: str, bodyparts: list[str]):
        self.folder = folder
        self.name = folder.name
        self.scorer = scorer
        self.bodyparts = list(bodyparts)
        self.h5 = folder / f"CollectedData_{scorer}.h5"
        self.csv = folder / f"CollectedData_{scorer}.csv"
        self.sidecar = folder / NOTVISIBLE_NAME
        self.lock = threading.RLock()
        self.version = 0
        self._sizes: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {}
        # Highest request number applied per page: a page's flush on close re-sends what was
        # in flight, and the older request must not win if it arrives last.
        self._seqs: dict[str, int] = {}
        self._load()

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        self.notices: list[str] = recover(self.folder)
        self.error: str | None = None
        self.images = list_images(self.folder)
        self.df: pd.DataFrame | None = None
        # Signatures first: a change made while we read is then seen as a change.
        self.disk = {p: signature(p) for p in (self.h5, self.csv)}
        try:
            self.df = self._read_tables()
            self._rows = self._row_map(self.df) if self.df is not None else {}
        except LabelFileError as exc:
            self.df, self._rows = None, {}
            self.error = f"{exc} — this folder is read-only until the file is fixed"
        self.notvisible = self._read_sidecar()

    def image_size(self, name: str) -> tuple[int, int] | None:
        """(width, height) of one of the folder's images (cached while the file is unchanged)."""
        path = self.folder / name
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        known = self._sizes.get(name)
        if known is None or known[0] != stamp:
            known = self._sizes[name] = (stamp, image_size(path))
        return known[1]

    def refresh_images(self) -> None:
        """Pick up images added to (or removed from) the folder since it was opened."""
        with self.lock:
            self.images = list_images(self.folder)

    def _read_tables(self) -> pd.DataFrame | None:
        """The table of the .h5 and/or .csv; when both exist and differ, the newer one."""
        tables: dict[Path, pd.DataFrame] = {}
        errors = []
        for p in (self.h5, self.csv):
            if p.is_file():
                try:
                    tables[p] = conform_labels(read_labels(p), self.bodyparts, p)
                except LabelFileError as exc:
                    errors.append(str(exc))
        if not tables:
            if errors:
                raise LabelFileError("; ".join(errors))
            return None
        if errors:
            self.notices.append(f"ignored an unreadable twin file ({'; '.join(errors)}); "
                                "the next save rewrites it from the readable one")
        if len(tables) == 2 and not tables[self.h5].equals(tables[self.csv]):
            newer = max((self.h5, self.csv), key=lambda p: p.stat().st_mtime_ns)
            older = self.csv if newer == self.h5 else self.h5
            self.notices.append(
                f"{self.h5.name} and {self.csv.name} differ; showing the newer {newer.name}. "
                f"The next save rewrites {older.name} to match."
            )
            return tables[newer]
        return tables.get(self.h5, tables.get(self.csv))

    def _row_map(self, df: pd.DataFrame) -> dict[str, int]:
        """Image file name -> row position. Rows match images by name, never by order."""
        rows: dict[str, int] = {}
        for pos, (_, _, name) in enumerate(df.index):
            if name in rows:
                raise LabelFileError(
                    f"{self.h5.name}: image {name} appears in several rows (different folders)"
                )
            rows[name] = pos
        missing = len(set(rows) - set(self.images))
        if missing:
            self.notices.append(
                f"{missing} row(s) of the label file name images that are not in this folder; "
                "they are kept unchanged"
            )
        return rows

    def _read_sidecar(self) -> dict[str, set[str]]:
        if not self.sidecar.is_file():
            return {}
        try:
            data = json.loads(self.sidecar.read_text(encoding="utf-8"))
            frames = data["frames"]
            return {str(f): {b for b in bps if b in self.bodyparts}
                    for f, bps in frames.items() if isinstance(bps, list)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.notices.append(f"ignored the malformed {NOTVISIBLE_NAME}")
            return {}

    # ------------------------------------------------------------------ views
    def _value(self, df: pd.DataFrame | None, rows: dict[str, int], frame: str, k: int) -> Value:
        if df is None or frame not in rows:
            return None
        x, y = df.iat[rows[frame], 2 * k], df.iat[rows[frame], 2 * k + 1]
        if np.isnan(x) or np.isnan(y):
            return None
        return float(x), float(y)

    def frame_values(self) -> dict[str, dict[str, Value]]:
        """{image: {bodypart: (x, y) | "nv"}} for every image of the folder (missing omitted)."""
        with self.lock:
            out: dict[str, dict[str, Value]] = {}
            values = self.df.to_numpy() if self.df is not None else None
            for frame in self.images:
                entry: dict[str, Value] = {}
                pos = self._rows.get(frame)
                nv = self.notvisible.get(frame, set())
                for k, bp in enumerate(self.bodyparts):
                    if pos is not None and not np.isnan(values[pos, 2 * k : 2 * k + 2]).any():
                        entry[bp] = (float(values[pos, 2 * k]), float(values[pos, 2 * k + 1]))
                    elif bp in nv:
                        entry[bp] = "nv"
                if entry:
                    out[frame] = entry
            return out

    def counts(self) -> dict[str, int]:
        """Images, frames with at least one label, complete frames (labeled or not visible)."""
        values = self.frame_values()
        k = len(self.bodyparts)
        labeled = sum(1 for e in values.values() if any(v != "nv" for v in e.values()))
        complete = sum(1 for e in values.values() if len(e) == k)
        return {"n_images": len(self.images), "n_labeled": labeled, "n_complete": complete}

    def label_file(self) -> str | None:
        for p in (self.h5, self.csv):
            if p.is_file():
                return p.name
        return None

    def disk_changed(self) -> bool:
        """Whether the .h5 or .csv differs from what this store last read or wrote."""
        with self.lock:
            for p, known in self.disk.items():
                try:
                    st = p.stat()
                except FileNotFoundError:
                    if known is not None:
                        return True
                    continue
                if known is None:
                    return True
                if (st.st_mtime_ns, st.st_size) == (known.mtime_ns, known.size):
                    continue
                if _sha256(p) != known.sha256:  # touched but same bytes is no change
                    return True
                self.disk[p] = Signature(st.st_mtime_ns, st.st_size, known.sha256)
            return False

    def machinelabel_files(self) -> list[Path]:
        """machinelabels-iter<N>.h5 files of the folder, oldest iteration first."""
        return sorted(self.folder.glob("machinelabels-iter*.h5"),
                      key=lambda p: [int(t) if t.isdigit() else t
                                     for t in re.split(r"(\d+)", p.name)])

    def machinelabel_frames(self) -> list[tuple[str, str]]:
        """(image, file) of every frame that a machinelabels file predicts (newest file
        first): frames to correct, when no suggestions file says otherwise."""
        seen: dict[str, str] = {}
        for path in reversed(self.machinelabel_files()):
            try:
                df = read_machine_labels(path)
            except LabelFileError:
                continue
            for _, _, name in df.index:
                seen.setdefault(str(name), path.name)
        return sorted(seen.items())

    def predictions(self) -> dict | None:
        """The newest machinelabels-iter<N>.h5 of the folder as {file, points}, or None.

        points maps image -> {bodypart: [x, y, likelihood]}. Never written, only shown.
        """
        files = self.machinelabel_files()
        if not files:
            return None
        path = files[-1]
        try:
            df = read_machine_labels(path)
        except LabelFileError as exc:
            return {"file": path.name, "error": str(exc), "points": {}}
        scorer = df.columns.get_level_values("scorer")[0]
        points: dict[str, dict[str, list[float]]] = {}
        for pos, (_, _, name) in enumerate(df.index):
            entry = {}
            for bp in self.bodyparts:
                if (scorer, bp, "x") not in df.columns:
                    continue
                x, y = df[(scorer, bp, "x")].iat[pos], df[(scorer, bp, "y")].iat[pos]
                lik = df[(scorer, bp, "likelihood")].iat[pos]
                if np.isfinite(x) and np.isfinite(y):
                    entry[bp] = [float(x), float(y), None if np.isnan(lik) else float(lik)]
            if entry:
                points[name] = entry
        return {"file": path.name, "points": points}

    # ------------------------------------------------------------------ editing
    def _check_writable(self) -> None:
        if self.error:
            raise ReadOnlyError(self.error)
        if self.disk_changed():
            raise ConflictError(
                f"{self.h5.name} changed on disk since it was loaded (another program or "
                "server?). Reload to see it; your unsaved edits are kept and re-applied."
            )

    def _base(self) -> tuple[pd.DataFrame, dict[str, int]]:
        if self.df is not None:
            return self.df, self._rows
        df = empty_labels(self.scorer, self.bodyparts, self.name, self.images)
        return df, {name: i for i, name in enumerate(self.images)}

    def apply(self, edits: list[tuple], client: str | None = None, seq: int | None = None
              ) -> int | None:
        """Apply parsed edits and save both files; all or nothing.

        Args:
            edits: from parse_edits.
            client, seq: the sending page and its request number; a request numbered at or
                below one already applied from that page is stale (its edits were re-sent in
                a later request) and is skipped.

        Returns:
            The new version number (one per successful call); None for a stale request.

        Raises:
            ConflictError: the files changed on disk; nothing was applied.
            ReadOnlyError: the folder's label file is unusable.
        """
        with self.lock:
            if client is not None and seq is not None:
                if seq <= self._seqs.get(client, -1):
                    return None
            self._check_writable()
            base, rows = self._base()
            values = base.to_numpy(dtype="float64", copy=True)
            index = list(base.index)
            rows = dict(rows)
            notvisible = {f: set(s) for f, s in self.notvisible.items()}
            new_rows = []
            for frame, bodypart, value in edits:
                if frame not in rows:  # first label on an image the file has no row for
                    rows[frame] = len(index)
                    index.append(("labeled-data", self.name, frame))
                    new_rows.append(frame)
                    values = np.vstack([values, np.full((1, values.shape[1]), np.nan)])
                self._apply_one(values, rows[frame], notvisible, frame, bodypart, value)
            df = pd.DataFrame(values, index=pd.MultiIndex.from_tuples(index, names=[None] * 3),
                              columns=base.columns)
            if new_rows and base.index.is_monotonic_increasing:
                df = df.sort_index()  # a sorted file stays sorted; others keep their order
            self._commit(df, notvisible)
            if client is not None and seq is not None:
                self._seqs[client] = seq
            return self.version

    def _apply_one(self, values: np.ndarray, pos: int, notvisible: dict[str, set[str]],
                   frame: str, bodypart: str, value: Value) -> None:
        k = self.bodyparts.index(bodypart)
        flags = notvisible.setdefault(frame, set())
        if isinstance(value, tuple):
            values[pos, 2 * k : 2 * k + 2] = value
            flags.discard(bodypart)
        else:
            values[pos, 2 * k : 2 * k + 2] = np.nan
            if value == "nv":
                flags.add(bodypart)
            else:
                flags.discard(bodypart)
        if not flags:
            del notvisible[frame]

    def save(self) -> int:
        """Write the current table (or an all-NaN one for every image) without edits."""
        with self.lock:
            self._check_writable()
            self._commit(self._base()[0], self.notvisible)
            return self.version

    def reload(self) -> int:
        """Forget the in-memory table and read the files again (after an outside change)."""
        with self.lock:
            self._load()
            self.version += 1
            return self.version

    def _commit(self, df: pd.DataFrame, notvisible: dict[str, set[str]]) -> None:
        """Write .h5, .csv and sidecar as temp files, journal the renames, rename, clean up."""
        moves: list[tuple[Path, Path]] = []
        tmp_h5, tmp_csv = write_labels(df, self.folder / f"{TMP_PREFIX}{self.h5.name}")
        moves += [(tmp_h5, self.h5), (tmp_csv, self.csv)]
        if notvisible or self.sidecar.exists():
            tmp_nv = self.folder / f"{TMP_PREFIX}notvisible.json"
            data = {"format": NOTVISIBLE_FORMAT, "label_file": self.h5.name,
                    "frames": {f: sorted(s) for f, s in sorted(notvisible.items())}}
            tmp_nv.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            moves.append((tmp_nv, self.sidecar))
        for src, _ in moves:
            _fsync_file(src)  # the journal must never point at data still in the page cache
        hashes = {dst: _sha256(src) for src, dst in moves}
        journal = self.folder / JOURNAL_NAME
        tmp_journal = self.folder / f"{TMP_PREFIX}commit.json"
        tmp_journal.write_text(json.dumps({"moves": [[s.name, d.name] for s, d in moves]}),
                               encoding="utf-8")
        _fsync_file(tmp_journal)
        os.replace(tmp_journal, journal)  # the commit point
        _fsync_dir(self.folder)
        for src, dst in moves:
            os.replace(src, dst)
        _fsync_dir(self.folder)
        journal.unlink()
        for p in (self.h5, self.csv):
            st = p.stat()
            self.disk[p] = Signature(st.st_mtime_ns, st.st_size, hashes[p])
        self.df, self._rows = df, {name: i for i, (_, _, name) in enumerate(df.index)}
        self.notvisible = {f: set(s) for f, s in notvisible.items() if s}
        self.notices = []  # e.g. "the twins differ" no longer holds after a save
        self.version += 1
