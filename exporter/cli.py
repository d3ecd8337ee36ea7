"""The `kube-image-exporter` command: one subcommand per module in `exporter/commands/`.

Exit codes, whatever the command: 0 all good; 1 some image is not available (or the cluster could not be read);
2 usage or input error (bad flag or value, unreadable or broken file, kubeconfig, docker config or config).
Every error is at most two short lines on stderr, never a traceback or a usage dump: commands raise
`UsageError` (exit 2) or `CommandError` (exit 1) and this module prints them; argparse's errors are cut short.
Both are redacted here, whatever produced them: a value quoted back (`got 'u:pw@host'`) loses its credentials.
"""

from __future__ import annotations

import argparse
import sys

from exporter import __version__
from exporter.commands import check, merge, report, serve
from exporter.commands.errors import CommandError, UsageError
from exporter.commands.options import add_global
from exporter.common import logs
from exporter.common.redact import redact

PROG = "kube-image-exporter"


class Parser(argparse.ArgumentParser):
    """argparse, with an error as two lines (what, and where to read more) instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: {redact(message)}\nsee: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG,
                    description="Know that an image is gone from its registry before a pod fails to pull it.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in (serve, report, merge, check):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    logs.configure(args.log_level or "info", args.log_format or "text")  # commands apply the settings again
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"{PROG} {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


def _one_line(exc: Exception) -> str:
    """A library's message can span lines (YAML marks, nested causes): one line, whatever it held, redacted (a
    value is often named as typed, and may carry a password or a token)."""
    return redact(" ".join(str(exc).split()))
