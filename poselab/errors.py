"""User-facing errors.

Raise `PoselabError` for anything a user can fix (bad path, malformed file, wrong option).
Its message is one line that names the file and the problem; the CLI prints it without a
traceback and exits with code 2 (`--debug` shows the traceback).
"""

from __future__ import annotations


class PoselabError(Exception):
    """A problem with the user's input, reported as one clear line."""


class ConfigError(PoselabError):
    """config.yaml (or a training config) is missing, malformed or has an unknown key."""


class LabelFileError(PoselabError):
    """A CollectedData / predictions file is missing, malformed or disagrees with the config."""


class VideoError(PoselabError):
    """A video cannot be opened or decoded."""
