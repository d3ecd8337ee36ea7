"""The `kube-image-exporter` command: one subcommand per module in `exporter/commands/`.

Every subcommand reports bad input as one line on stderr and a non-zero exit, never a traceback:
commands raise `UsageError` (exit 2) or `CommandError` (exit 1) and this module prints them.
"""

from __future__ import annotations

import argparse
import sys

from exporter import __version__, logs
from exporter.commands import COMMANDS, CommandError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kube-image-exporter",
        description="Know that an image is gone from its registry before a pod fails to pull it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", choices=logs.LEVELS, help="default info")
    parser.add_argument("--log-format", choices=logs.FORMATS, help="text (default) or json, one object a line")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.log_level or "info", args.log_format or "text")  # `serve` applies its settings again
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"kube-image-exporter {args.command}: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"kube-image-exporter {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
