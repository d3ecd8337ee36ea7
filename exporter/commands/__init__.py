"""Subcommands. Each module has `register(subparsers)`, which adds its parser and sets `func`."""

from __future__ import annotations


class CommandError(Exception):
    """A failure the user must fix (unreadable file, unknown context): printed as one line, exit 1."""


class UsageError(CommandError):
    """Arguments that do not fit together: printed as one line, exit 2."""


from exporter.commands import check, merge, report, serve  # noqa: E402  (after the error classes they import)

COMMANDS = [serve, report, merge, check]
