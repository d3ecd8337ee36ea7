#!/usr/bin/env python3
"""Time the status page: the per-publication first-seen step, the page build, and opening `/` (first and later).

    .venv/bin/python scripts/bench_page.py --missing 50000

The worst case is every reference missing (a registry down): the first-seen step runs at every publication
(twice a cycle), the build once a cycle at most, when `/` is first opened; later opens copy bytes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter import firstseen, page  # noqa: E402
from exporter.endpoints import LazyPage, Published, Server  # noqa: E402


def series(missing: int) -> dict:
    rows = tuple(((f"c{i % 3}", f"ns{i % 50}", "Deployment", f"w{i % 5000}", f"c{i % 4}", "container",
                   f"reg.example/team{i % 40}/app{i}:1.{i % 7}", f"unit{i % 200}", "absent"), 1.0)
                 for i in range(missing))
    status = tuple(((labels[0], labels[6], "reg.example", "absent"), 1.0) for labels, _ in rows[:5000])
    return {"kube_image_missing": rows, "kube_image_status": status}


def get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", type=int, default=50_000, help="missing references in the snapshot")
    args = parser.parse_args()
    data = series(args.missing)
    seen = firstseen.advance({}, page.tracked_keys(data), 1.0)
    steps = []
    for now in range(2, 7):
        started = time.perf_counter()
        seen = firstseen.advance(seen, page.tracked_keys(data), float(now))
        steps.append(time.perf_counter() - started)
    inputs = page.PageInput(data, 10.0, "bench", seen)
    published = Published(page=LazyPage(lambda: (page.render(inputs), page.CONTENT_TYPE)))
    server = Server(published, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{server.port}/"
        first = get(url)
        later = [get(url) for _ in range(20)]
        size = len(published.page.get().body)
    finally:
        server.stop()
    print(f"{args.missing} missing references:")
    print(f"  first-seen step per publication  median {statistics.median(steps) * 1000:.1f} ms")
    print(f"  first open of / (builds the page) {first * 1000:.1f} ms, {size / 1e6:.2f} MB "
          f"({min(args.missing, inputs.max_rows)} rows shown)")
    print(f"  later opens of /                 median {statistics.median(later) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
