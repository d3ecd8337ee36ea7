"""The `kube-image-exporter` command: one subcommand per module in `exporter/commands/`.

Every subcommand reports bad input as one line on stderr and a non-zero exit, never a traceback:
commands raise `UsageError` (exit 2) or `CommandError` (exit 1) and this module prints them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from exporter import __version__
from exporter.commands import COMMANDS, CommandError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kube-image-exporter",
        description="Know that an image is gone from its registry before a pod fails to pull it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.log_level.lower() != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per registry request otherwise
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
