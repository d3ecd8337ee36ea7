"""`merge` subcommand (not yet implemented)."""

from __future__ import annotations

from exporter.commands import CommandError


def register(subparsers) -> None:
    parser = subparsers.add_parser("merge", help="merge (not yet implemented)")
    parser.set_defaults(func=run)


def run(args) -> int:
    raise CommandError("not yet implemented")
