"""The `poselab` command line: a thin typer shell over the Python API.

Each command parses its options and calls ONE API function. Heavy imports (torch, cv2,
pandas) happen inside the commands so `poselab --help` is instant. A `PoselabError` becomes
a one-line `error: ...` on stderr and exit code 2 (`poselab --debug ...` shows the
traceback); Ctrl+C exits with 130.

Layout, one module per area (each module imports only typer at the top):
  common.py             ConfigArg, RunArg and small parsers shared by the commands
  project_commands.py   demo, new, add-videos, info, check-labels, synthetic-video
  labeling_commands.py  extract-frames, label, extract-outliers
  active_commands.py    suggest, learning-curve (active learning)
  app_commands.py       app (the whole workflow in the browser)
  training_commands.py  train, evaluate, export
  convert_commands.py   convert (SLEAP, NWB, COCO, Lightning Pose)
  live_commands.py      live
  analysis_commands.py  analyze, filter, labeled-video, plot-trajectories
  trust_commands.py     calibrate, smooth, report
  mnist_commands.py     the `poselab mnist ...` sub-app (train, transfer)

Adding a command: write the API function in its module, then a `<name>_cmd` function in the
command module of its area that parses options and calls it, with
  - a docstring whose first line is a one-line summary (it is the line in `poselab --help`),
    then a paragraph or two and, for commands with several options, an "Examples:" block;
  - option help that states the default: typer shows "[default: ...]" for a literal
    default, write "(default: ...)" in the help where the default is None or computed.
Then add it to `_COMMANDS` below at its place in the workflow: `poselab --help` lists
commands in that order. Help is rendered in rich markup mode: line breaks inside a
paragraph are kept (so wrap prose at ~76 columns, one example per line) and square brackets
are markup, so do not write `[...]` in help text. Check with `COLUMNS=80 poselab CMD --help`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer
from typer.core import TyperGroup

from poselab.cli import (
    active_commands,
    analysis_commands,
    app_commands,
    convert_commands,
    labeling_commands,
    live_commands,
    project_commands,
    training_commands,
    trust_commands,
)
from poselab.cli.mnist_commands import mnist_app
from poselab.errors import PoselabError


class _Group(TyperGroup):
    """Lists commands in workflow order; turns user errors into one line + exit code 2."""

    #: command names in the order `poselab --help` lists them (set from _COMMANDS below)
    order: tuple[str, ...] = ()

    def get_command(self, ctx: typer.Context, name: str):
        command = super().get_command(ctx, name)
        if command is not None:
            _plain_flags(command, ctx)
        return command

    def get_params(self, ctx: typer.Context):
        params = super().get_params(ctx)
        _mark_flags(params)
        return params

    def list_commands(self, ctx: typer.Context) -> list[str]:
        # typer lists plain commands before sub-apps (mnist); keep the workflow order instead.
        names = list(self.commands)
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(names, key=lambda name: (rank.get(name, len(rank)), names.index(name)))

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except PoselabError as exc:
            if ctx.params.get("debug") or os.environ.get("POSELAB_DEBUG"):
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


def _mark_flags(params) -> None:
    """An empty metavar on plain on/off flags, so help does not show them as `<bool>`."""
    for param in params:
        if (param is not None and getattr(param, "is_flag", False)
                and not getattr(param, "count", False) and param.metavar is None):
            param.metavar = ""


def _plain_flags(command, ctx: typer.Context) -> None:
    """_mark_flags on a command (its help option too) and, for a group, its commands."""
    _mark_flags([*command.params, command.get_help_option(ctx)])
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub, ctx)


def _version(value: bool) -> None:
    if value:
        from poselab import __version__

        typer.echo(f"poselab {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Group,
    help="Animal pose estimation: label frames, train, analyze videos.\n\n"
    "Reads and writes DeepLabCut projects. Start with `poselab demo`, or with\n"
    "`poselab new` for your own videos. `poselab COMMAND --help` shows each\n"
    "command's options and examples.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                 is_eager=True, callback=_version),
) -> None:
    """poselab: animal pose estimation, DeepLabCut-compatible."""


# The workflow, in the order `poselab --help` lists it: name -> command function or sub-app.
_COMMANDS: list[tuple[str, Callable[..., None] | typer.Typer]] = [
    ("demo", project_commands.demo_cmd),
    ("app", app_commands.app_cmd),
    ("new", project_commands.new_cmd),
    ("add-videos", project_commands.add_videos_cmd),
    ("info", project_commands.info_cmd),
    ("extract-frames", labeling_commands.extract_frames_cmd),
    ("label", labeling_commands.label_cmd),
    ("check-labels", project_commands.check_labels_cmd),
    ("train", training_commands.train_cmd),
    ("evaluate", training_commands.evaluate_cmd),
    ("calibrate", trust_commands.calibrate_cmd),
    ("learning-curve", active_commands.learning_curve_cmd),
    ("analyze", analysis_commands.analyze_cmd),
    ("filter", analysis_commands.filter_cmd),
    ("smooth", trust_commands.smooth_cmd),
    ("report", trust_commands.report_cmd),
    ("labeled-video", analysis_commands.labeled_video_cmd),
    ("plot-trajectories", analysis_commands.plot_trajectories_cmd),
    ("extract-outliers", labeling_commands.extract_outliers_cmd),
    ("suggest", active_commands.suggest_cmd),
    ("export", training_commands.export_cmd),
    ("convert", convert_commands.convert_cmd),
    ("live", live_commands.live_cmd),
    ("mnist", mnist_app),
    ("synthetic-video", project_commands.synthetic_video_cmd),
]

for _name, _target in _COMMANDS:
    if isinstance(_target, typer.Typer):
        app.add_typer(_target, name=_name)
    else:
        app.command(_name)(_target)
_Group.order = tuple(name for name, _ in _COMMANDS)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="poselab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
