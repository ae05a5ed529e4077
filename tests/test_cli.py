"""The command line through typer's CliRunner: commands work, bad input exits 2 cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poselab.cli import app

runner = CliRunner()


def _new(tmp_path: Path, video: Path, *extra: str):
    return runner.invoke(app, ["new", "mice", "--experimenter", "ann", "--videos", str(video),
                               "--bodyparts", "snout,tailbase", "--dir", str(tmp_path), *extra])


def test_new_add_info(tmp_path: Path, tiny_video: Path):
    from tests.conftest import write_video

    result = _new(tmp_path, tiny_video)
    assert result.exit_code == 0, result.output
    (config,) = tmp_path.glob("mice-ann-*/config.yaml")
    second = write_video(tmp_path / "mouse2.avi")
    result = runner.invoke(app, ["add-videos", str(config), str(second)])
    assert result.exit_code == 0 and "mouse2.avi" in result.output
    result = runner.invoke(app, ["info", str(config), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ("task", "scorer", "bodyparts", "videos", "folders", "labeled_frames"):
        assert key in info
    assert info["bodyparts"] == ["snout", "tailbase"] and len(info["videos"]) == 2
    assert info["labeled_frames"] == 0
    text = runner.invoke(app, ["info", str(config)]).output
    assert "bodyparts (2): snout, tailbase" in text


def test_info_openfield_json(openfield_dir: Path):
    result = runner.invoke(app, ["info", str(openfield_dir / "config.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["bodyparts"] == ["snout", "leftear", "rightear", "tailbase"]
    assert info["labeled_frames"] == 116


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (None, "config file not found"),
        ("Task: t\nscorer: s\nbodyparts: [a\n", "malformed YAML"),
        ("Task: t\nscorer: s\nbodypart: [a]\n", "did you mean 'bodyparts'"),
    ],
)
def test_bad_config_exits_2_without_traceback(tmp_path: Path, config_text, message):
    config = tmp_path / "config.yaml"
    if config_text is not None:
        config.write_text(config_text)
    result = runner.invoke(app, ["info", str(config)])
    assert result.exit_code == 2
    assert message in result.output and str(config) in result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1  # one line


def test_debug_shows_traceback(tmp_path: Path):
    result = runner.invoke(app, ["--debug", "info", str(tmp_path / "nope.yaml")])
    assert result.exit_code != 0 and result.exception is not None


def test_unreadable_video_writes_nothing(tmp_path: Path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    result = _new(tmp_path / "w", bad)
    assert result.exit_code == 2 and "bad.mp4" in result.output
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").iterdir())


def test_label_file_disagreeing_with_config(openfield_copy: Path):
    config = openfield_copy / "config.yaml"
    config.write_text(config.read_text().replace("- tailbase\n", ""))
    result = runner.invoke(app, ["info", str(config)])
    assert result.exit_code == 2
    assert "CollectedData_Pranav" in result.output and "tailbase" in result.output


def test_check_labels_command(openfield_copy: Path):
    result = runner.invoke(app, ["check-labels", str(openfield_copy / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert "drew 116 labeled frames" in result.output
    assert len(list((openfield_copy / "labeled-data" / "m4s1_labeled").glob("*.png"))) == 116
    # img0102: the ears exchanged against img0100 and img0104 (the mouse faces the same way)
    assert "m4s1/img0102.png: leftear and rightear look swapped" in result.output
    assert "1 frame(s) with likely left/right swaps" in result.output


def test_help_is_fast_and_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("new", "add-videos", "info", "check-labels", "demo"):
        assert command in result.output


WORKFLOW = ["demo", "app", "new", "add-videos", "info", "extract-frames", "label",
            "check-labels", "train", "evaluate", "calibrate", "learning-curve", "analyze",
            "filter", "smooth", "report", "labeled-video", "plot-trajectories",
            "extract-outliers", "suggest", "export", "convert", "live", "mnist",
            "synthetic-video"]
LONG_COMMANDS = ["train", "analyze", "extract-frames", "label", "filter", "labeled-video",
                 "extract-outliers", "export", "new", "mnist train", "mnist transfer", "smooth",
                 "report", "suggest", "learning-curve", "convert", "calibrate"]


def _all_commands(group=None, prefix=()):
    """Every command path, e.g. ("mnist", "train"), walking typer's command tree."""
    import typer

    group = group or typer.main.get_command(app)
    for name in group.list_commands(None):
        command = group.commands[name]
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _all_commands(command, (*prefix, name))


def test_help_lists_commands_in_workflow_order():
    import typer

    assert typer.main.get_command(app).list_commands(None) == WORKFLOW
    output = runner.invoke(app, ["--help"], terminal_width=80).output
    listing = output[output.index("Commands"):]
    positions = [listing.find(f" {name} ") for name in WORKFLOW]
    assert -1 not in positions, output
    assert positions == sorted(positions), output


@pytest.mark.parametrize("path", list(_all_commands()), ids=" ".join)
def test_every_command_help_has_a_one_line_summary(path):
    import typer

    result = runner.invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    summary = (command.help or "").strip().split("\n\n")[0]
    assert summary and "\n" not in summary and summary.endswith("."), summary
    assert summary in result.output


@pytest.mark.parametrize("command", LONG_COMMANDS)
def test_long_commands_show_examples(command):
    result = runner.invoke(app, [*command.split(), "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"poselab {command} " in result.output  # example lines are not rewrapped away


def test_computed_defaults_are_stated():
    def flat(args):  # help text without the panel borders and line wrapping
        output = runner.invoke(app, [*args, "--help"]).output
        return " ".join(output.replace("│", " ").split())

    assert "(default: the preset's, else resnet50)" in flat(["train"])
    assert "[default: auto]" in flat(["analyze"])
    assert "(default: the --config's pcutoff, else 0.6)" in flat(["filter"])
