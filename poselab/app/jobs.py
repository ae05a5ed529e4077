"""The persisted job table: one SQLite file in the app's state folder.

A job is a list of `poselab` command lines (steps) run one after the other in one background
process (see child.py), with a kind (extract, train, evaluate, analyze, outliers), the
project it belongs to, and free-form metadata (the run it trains, the video it analyzes).
The table outlives the server: a restarted server finds every job, finished or not.

Statuses: queued -> running -> done | failed | stopped (the person pressed Stop) |
interrupted (the server stopped, or the process vanished, before it finished); a queued
job that is removed becomes cancelled.

SQLite (the standard library's sqlite3) does the persistence and the locking: every
operation opens its own short connection, so request threads and the runner thread never
share one.

Extending: a new column goes into `_SCHEMA` and `Job` (and `_ADDED` for tables made before
it, so an old state folder keeps working).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STOPPED, INTERRUPTED, CANCELLED = "stopped", "interrupted", "cancelled"
FINISHED = (DONE, FAILED, STOPPED, INTERRUPTED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    project TEXT NOT NULL,
    title TEXT NOT NULL,
    steps TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    rc INTEGER,
    pid INTEGER,
    note TEXT NOT NULL DEFAULT '',
    stop_reason TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}'
)
"""
_ADDED: dict[str, str] = {}  # column -> its definition, for tables made by older versions


@dataclass
class Job:
    """One row of the table (steps and meta decoded)."""

    id: int
    kind: str
    project: str
    title: str
    steps: list[list[str]]
    status: str
    created: float
    started: float | None = None
    ended: float | None = None
    rc: int | None = None
    pid: int | None = None
    note: str = ""
    stop_reason: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict:
        return asdict(self)


class JobTable:
    """The jobs of one state folder (`<state>/jobs.sqlite`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, definition in _ADDED.items():
                if column not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {definition}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        data = dict(row)
        data["steps"] = json.loads(data["steps"])
        data["meta"] = json.loads(data["meta"] or "{}")
        return Job(**data)

    def add(self, kind: str, project: str, title: str, steps: list[list[str]],
            meta: dict | None = None) -> Job:
        """A new queued job."""
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "INSERT INTO jobs (kind, project, title, steps, status, created, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, project, title, json.dumps(steps), QUEUED, time.time(),
                 json.dumps(meta or {})))
            job_id = cur.lastrowid
        return self.get(job_id)

    def get(self, job_id: int) -> Job | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list(self, project: str | None = None, limit: int = 200) -> list[Job]:
        """Newest first; the jobs of one project with `project`."""
        query, args = "SELECT * FROM jobs", []
        if project is not None:
            query, args = query + " WHERE project = ?", [project]
        with closing(self._connect()) as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [self._job(r) for r in rows]

    def with_status(self, *statuses: str) -> list[Job]:
        """Oldest first (the queue's order)."""
        marks = ",".join("?" * len(statuses))
        with closing(self._connect()) as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY id",
                              statuses).fetchall()
        return [self._job(r) for r in rows]

    def update(self, job_id: int, **values: object) -> Job:
        """Set columns of a job (meta is merged into the stored meta)."""
        if "meta" in values:
            values["meta"] = json.dumps({**self.get(job_id).meta, **values["meta"]})
        if "steps" in values:
            values["steps"] = json.dumps(values["steps"])
        columns = ", ".join(f"{k} = ?" for k in values)
        with closing(self._connect()) as db, db:
            db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*values.values(), job_id])
        return self.get(job_id)

    def set_status_if(self, job_id: int, expected: str, **values: object) -> bool:
        """Update only when the job still has status `expected` (no lost race with the
        runner); True when it did."""
        columns = ", ".join(f"{k} = ?" for k in values)
        with closing(self._connect()) as db, db:
            cur = db.execute(f"UPDATE jobs SET {columns} WHERE id = ? AND status = ?",
                             [*values.values(), job_id, expected])
            return cur.rowcount == 1
