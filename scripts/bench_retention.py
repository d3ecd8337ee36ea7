#!/usr/bin/env python3
"""What reading retention policies costs the registries' APIs: calls a reading makes to Harbor, GitLab and ECR,
counted where the API emulators receive them, beside what the docs say it costs.

    .venv/bin/python scripts/bench_retention.py

A registry's operator asks what an exporter reading its cleanup policy every hour adds to its API's load; the docs
answer with a formula and a worked example ("API calls" in docs/retention.md, docs/retention-gitlab.md,
docs/retention-ecr.md). Each source's real reading runs twice (the first and the next, an interval later) against
its emulator on 127.0.0.1 (tests/support: Harbor's and GitLab's APIs, moto's ECR behind its front); the docs'
examples are measured too. It exits 1, naming the doc, when a count differs from the doc's formula or a doc's
example does not print the formula's figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.retention_load import DOC_EXAMPLES, DOCS, MEASURES, Measure, figure_stated  # noqa: E402

UNITS = {"harbor": ("projects", "repositories", "artifacts"), "gitlab": ("projects", "repositories", "tags"),
         "ecr": ("repositories", "images")}


def size(source: str, sizes: tuple[int, ...]) -> str:
    return " x ".join(f"{n:,} {unit}" for n, unit in zip(sizes, UNITS[source]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="harbor,gitlab,ecr", help="comma-separated: harbor, gitlab, ecr")
    parser.add_argument("--harbor", type=int, nargs=3, default=(20, 2, 50), metavar=("PROJECTS", "REPOS", "ARTIFACTS"))
    parser.add_argument("--gitlab", type=int, nargs=3, default=(20, 2, 50), metavar=("PROJECTS", "REPOS", "TAGS"))
    parser.add_argument("--ecr", type=int, nargs=2, default=(50, 50), metavar=("REPOS", "IMAGES"))
    parser.add_argument("--no-doc-examples", action="store_true",
                        help="measure the sizes given only, not also the docs' worked examples")
    args = parser.parse_args()
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(sources) - set(MEASURES))
    if unknown:
        parser.error(f"unknown source {unknown[0]!r} (known: {', '.join(MEASURES)})")

    runs: list[tuple[str, tuple[int, ...]]] = [(s, tuple(getattr(args, s))) for s in sources]
    examples = {(e.source, e.sizes): e for e in DOC_EXAMPLES if e.source in sources}
    if not args.no_doc_examples:
        runs += [key for key in examples if key not in runs]
    print(f"{'source':<7} {'fixture':<48} {'calls first':>11} {'calls next':>10} {'doc formula':>11} "
          f"{'seconds first, next':>20}")
    wrong = []
    for source, sizes in runs:
        measured: Measure = MEASURES[source](*sizes)
        example = examples.get((source, sizes))
        note = f"  (the example of {DOCS[source]})" if example else ""
        print(f"{source:<7} {size(source, sizes):<48} {measured.calls[0]:>11,} {measured.calls[1]:>10,} "
              f"{measured.expected:>11,} {measured.seconds[0]:>9.2f}, {measured.seconds[1]:>8.2f}{note}", flush=True)
        if measured.calls != (measured.expected, measured.expected):
            wrong.append(f"{DOCS[source]}: its formula gives {measured.expected:,} calls a reading for "
                         f"{size(source, sizes)}; measured {measured.calls[0]:,} (first), {measured.calls[1]:,} (next)")
        if measured.forecasts != sizes[0]:
            wrong.append(f"{source}: {measured.forecasts} forecasts read of {sizes[0]} (a reading failed)")
    for example in examples.values():
        if not figure_stated(example):
            wrong.append(f"{example.doc} does not say {example.figure!r}, the formula's figure for "
                         f"{size(example.source, example.sizes)}")
    for line in wrong:
        print(f"MISMATCH: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
