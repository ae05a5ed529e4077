"""Everything one app server holds, handed to each group of routes.

Extending: a new long-lived object of the server (a cache, a registry) becomes a field here,
made in server.create_app and closed in `close`.
"""

from __future__ import annotations

from dataclasses import dataclass

from poselab.app.jobs import QUEUED, RUNNING, JobTable
from poselab.app.labeling import LabelerPages
from poselab.app.paths import Roots
from poselab.app.projects import Projects
from poselab.app.results import Players
from poselab.app.runner import JobRunner


@dataclass
class Context:
    roots: Roots
    projects: Projects
    table: JobTable
    runner: JobRunner
    labelers: LabelerPages
    players: Players
    token: str | None = None

    def active_jobs(self, config: str) -> list:
        """Queued and running jobs of a project (by its config.yaml path)."""
        return [j for j in self.table.with_status(QUEUED, RUNNING) if j.project == config]

    def busy_runs(self, config: str) -> set[str]:
        """Runs that a queued or running job of the app trains."""
        return {j.meta.get("run") for j in self.active_jobs(config)
                if j.kind == "train" and j.meta.get("run")}

    def close(self, interrupt_jobs: bool = True) -> None:
        self.runner.shutdown(interrupt=interrupt_jobs)
        self.labelers.close()
        self.players.close()
