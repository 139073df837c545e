"""User-facing errors: each carries one clear line that names the file or setting at fault."""

from __future__ import annotations


class MCJAError(Exception):
    """Base class for errors caused by the user's input; the CLI prints the message and exits `exit_code`."""

    exit_code = 2
    label = "error: "


class DatasetError(MCJAError):
    """A dataset root, index file or image is missing, malformed or unreadable."""


class ConfigError(MCJAError):
    """A configuration file, key or value is wrong."""


class CheckpointError(MCJAError):
    """A checkpoint or weights file is missing, unreadable or of another architecture."""


class NonFiniteError(MCJAError, ValueError):
    """Features or distances hold NaN or infinity: any ranking or metric computed from them would be wrong."""


class Interrupted(MCJAError):
    """Stopped on request (Ctrl-C / SIGTERM) after saving what is needed to continue."""

    exit_code = 130
    label = "interrupted: "
