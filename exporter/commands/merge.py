"""`merge`: aggregate image reference reports into one release list (Sylva's `merge_image_refs.py` arguments).

Each input, and the merged output, is checked against the one schema of reports
(`exporter.sources.expected.formats`): what `merge` writes, `check --file` and `serve --expected` read.
"""

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
                        help="reports to merge (two or more; -i A B or -i A -i B; each a regular file of at most "
                             "64 MiB, JSON nested at most 100 deep)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("-r", "--remove-keys", nargs="*", default=list(merging.DEFAULT_REMOVE_KEYS),
                        metavar="PREFIX", help="drop keys starting with these (default: ReplicaSet/ Pod/)")
    options.add_global(parser, argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args) -> int:
    if len(args.input) < 2:
        raise UsageError(f"needs two or more reports (-i A B), got {len(args.input)}")
    options.settings(args, ())  # the log settings, and a broken config or environment said as for any command
    from exporter.sources.expected.formats import ListFormatError, check_report

    reports = [_read(path) for path in args.input]
    try:
        for path, report in zip(args.input, reports):
            check_report(report, path)
        merged = merging.merge(reports, args.remove_keys, origins=args.input)
        check_report(merged, "the merged report")  # never written unless `check --file` would read it
    except (merging.MergeError, ListFormatError) as exc:
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
    from exporter.common.files import FileProblem, read_json

    try:
        data = read_json(path, "report", MAX_REPORT_BYTES)
    except FileProblem as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not an image reference report (expected a JSON object)")
    return data
