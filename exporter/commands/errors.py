"""The two failures a command reports as one line: what the user must fix, and arguments that do not fit."""

from __future__ import annotations


class CommandError(Exception):
    """A failure the user must fix (unreadable file, unknown context): printed as one line, exit 1."""


class UsageError(CommandError):
    """Arguments that do not fit together: printed as one line, exit 2."""
