"""The `poselab app` command: the whole workflow in the browser."""

from __future__ import annotations

from pathlib import Path

import typer


def app_cmd(
    configs: list[Path] = typer.Argument(None, help="Projects (config.yaml) to list from the "
                                         "start (default: none; open or create them in the "
                                         "page).", show_default=False),
    roots: list[Path] = typer.Option(None, "--root", help="A folder the page may browse, to "
                                     "open projects, pick videos and create projects in; "
                                     "repeat for more (default: the current folder)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Bind address. Anything but loopback requires the printed "
                                  "token URL; for remote use prefer the SSH tunnel."),
    port: int = typer.Option(None, "--port", help="Port, 0-65535 (default: 8765, or a free "
                             "one when it is taken; 0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    state_dir: Path = typer.Option(None, "--state-dir", help="Where the job queue, its logs "
                                   "and the list of projects live (default: "
                                   "$POSELAB_APP_HOME, else ~/.local/share/poselab/app)."),
) -> None:
    """Run the whole workflow in the browser (serves a local page).

    Projects, frame extraction, labeling, training and analysis as pages of one
    web app; prints its URL and serves it until Ctrl+C. Long work runs as
    background jobs, one at a time in the order started, and goes on when the
    browser tab closes; Ctrl+C here interrupts the running job (a training keeps
    its last finished epoch, to resume from the page). The page only sees the
    folders given with --root. On a remote machine, run the printed
    `ssh -N -L ...` command on your computer and open the URL there.

    Examples:
      poselab app
      poselab app --root /data/experiments --root ~/videos
      poselab app openfield-alice-2026-11-26/config.yaml --port 8766 --no-browser
    """
    from poselab.app import serve

    serve(roots or [Path.cwd()], configs or [], host=host, port=port,
          open_browser=not no_browser, state_dir=state_dir)
