#!/usr/bin/env python3
"""Time the status page: the per-publication first-seen step, the page build, and opening `/` (first and later).

    .venv/bin/python scripts/bench_page.py --missing 50000
    .venv/bin/python scripts/bench_page.py --missing 50000 --shared-cache   # first-seen times in a real Redis too

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

from exporter.serve import firstseen  # noqa: E402
from exporter.serve.endpoints import LazyPage, Published, Server  # noqa: E402
from exporter.views import page
from tests.support import redis as real_redis  # noqa: E402


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


def shared_cache(seen: dict) -> None:
    """First-seen times through a real redis-server, as the serve loop stores them: the first write, a cycle
    where nothing changed, one where 1% cleared and 1% appeared, and a restart's read; time, round trips, memory."""
    import tempfile

    from exporter.sources.registry.shared import SharedCache

    if not real_redis.available():
        print("  shared cache: skipped (no redis-server; scripts/setup installs it)")
        return
    with tempfile.TemporaryDirectory() as workdir:
        store = real_redis.RedisServer(Path(workdir))
        try:
            empty = store.client().info("memory")["used_memory"]
            cache = SharedCache(store.url, timeout=30.0)
            scopes = sorted({f"0/1:{key[1]}" for key in seen})

            def save(stored: dict, now: dict) -> tuple[float, int, int]:
                upserts, deletes = firstseen.changes(stored, now)
                scope = lambda key: f"0/1:{key[1]}"  # noqa: E731
                grouped = firstseen.group(upserts, scope)
                trips, commands = cache.counts.round_trips, cache.counts.commands
                started = time.perf_counter()
                assert cache.first_seen.save(scopes, {s: {k: upserts[k] for k in keys} for s, keys in grouped.items()},
                                             firstseen.group(deletes, scope))
                return (time.perf_counter() - started, cache.counts.round_trips - trips,
                        cache.counts.commands - commands)

            first = save({}, seen)
            memory = store.client().info("memory")["used_memory"] - empty
            steady = save(seen, seen)
            step = max(1, len(seen) // 100)
            keys = list(seen)
            changed = {k: v for k, v in seen.items() if k not in set(keys[:step])}
            changed.update({(*k[:-1], k[-1] + "-new"): 99.0 for k in keys[-step:]})
            churn = save(seen, changed)
            started = time.perf_counter()
            loaded = SharedCache(store.url, timeout=30.0).first_seen.load(scopes)
            read = time.perf_counter() - started
            assert loaded == changed
        finally:
            store.stop()
    print(f"  shared cache ({len(scopes)} clusters, real redis-server on 127.0.0.1):")
    for name, (seconds, trips, commands) in (("first write", first), ("a cycle, nothing changed", steady),
                                             ("a cycle, 1% cleared and 1% new", churn)):
        print(f"    {name:<32} {seconds * 1000:.1f} ms, {trips} round trip{'' if trips == 1 else 's'}, "
              f"{commands} commands")
    print(f"    read at a restart                {read * 1000:.1f} ms, 1 round trip, {len(scopes)} HGETALL")
    print(f"    Redis memory                     {memory / 2**20:.1f} MB for {len(seen)} first-seen times")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", type=int, default=50_000, help="missing references in the snapshot")
    parser.add_argument("--shared-cache", action="store_true",
                        help="also store and read the first-seen times through a real redis-server")
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
    if args.shared_cache:
        shared_cache(seen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
