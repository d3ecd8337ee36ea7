"""`merge`: aggregate image reference reports into one release list (Sylva's `merge_image_refs.py` arguments)."""

from __future__ import annotations

import argparse
import json
import sys

from exporter.commands import options
from exporter.commands.errors import UsageError
from exporter.views import merge as merging

MAX_REPORT_BYTES = 64 * 1024 * 1024  # a 50,000-pod report is about 20 MiB


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge image reference reports",
        description="Union lists, merge dicts recursively, drop keys with the removed prefixes.",
    )
    parser.add_argument("-i", "--input", action="extend", nargs="+", default=[], metavar="FILE",
                        help="reports to merge (two or more; -i A B or -i A -i B)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("-r", "--remove-keys", nargs="*", default=list(merging.DEFAULT_REMOVE_KEYS),
                        metavar="PREFIX", help="drop keys starting with these (default: ReplicaSet/ Pod/)")
    options.add_global(parser, argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args) -> int:
    if len(args.input) < 2:
        raise UsageError(f"needs two or more reports (-i A B), got {len(args.input)}")
    options.settings(args, ())  # the log settings, and a broken config or environment said as for any command
    reports = [_read(path) for path in args.input]
    try:
        merged = merging.merge(reports, args.remove_keys, origins=args.input)
    except merging.MergeError as exc:
        raise UsageError(str(exc)) from None
    text = json.dumps(merged, indent=4) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            with open(args.output, "w") as handle:
                handle.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0


def _read(path: str) -> dict:
    from exporter.common.files import FileProblem, read_bounded

    try:
        data = json.loads(read_bounded(path, "report", MAX_REPORT_BYTES).decode())
    except FileProblem as exc:
        raise UsageError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not text (expected a JSON report)") from None
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deep") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not an image reference report (expected a JSON object)")
    return data
