#!/usr/bin/env python3
"""Where `serve`'s first inventory spends its time and memory: each step alone, in one process, no threads.

    .venv/bin/python scripts/profile_serve.py --pods 50000                 # times, GC time, peak RSS
    .venv/bin/python scripts/profile_serve.py --pods 50000 --cprofile      # and the functions that cost most
    .venv/bin/python scripts/profile_serve.py --pods 50000 --tracemalloc   # and the lines that hold memory
    .venv/bin/python scripts/profile_serve.py --pods 50000 --gc-threshold 700,10,10   # the collector as set

The API emulator serves a generated cluster (scripts/gen_cluster.py) from its own process; this process lists
every kind `serve` watches (one after the other, as the reflectors' threads would), then takes the inventory
twice (the second from the memo, as a steady cycle does). `scripts/bench.py` measures the whole exporter.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]


def emulate(pods: int, kubeconfig: Path) -> None:
    """The child: the emulator serving a generated cluster until it is killed."""
    import yaml
    from gen_cluster import big

    from tests.emulator.server import Emulator

    items = big(pods, registry="127.0.0.1:5999")
    emulator = Emulator().start()
    emulator.create_many(items)
    del items
    kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig({"bench": "default"})))
    print("ready", flush=True)
    time.sleep(86400)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50000)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--gc-threshold", help="gc.set_threshold(...) first, e.g. 700,10,10 (Python's default)")
    parser.add_argument("--emulate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulate:
        emulate(args.pods, args.emulate)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        child = subprocess.Popen([sys.executable, __file__, "--pods", str(args.pods), "--emulate", str(kubeconfig)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            child.stdout.readline()
            run(args, kubeconfig)
        finally:
            child.kill()
            child.wait()
    return 0


def run(args, kubeconfig: Path) -> None:
    from exporter.sources import cluster
    from exporter.sources.kube.clusters import load_clusters
    from exporter.sources.registry.credentials import ANONYMOUS
    from exporter.sources.kube.errors import ApiError

    if args.gc_threshold:
        gc.set_threshold(*map(int, args.gc_threshold.split(",")))
    collecting = [0.0, 0.0]

    def timed(phase, info):
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(timed)
    client = load_clusters(str(kubeconfig))[0]
    watched = cluster.watch(client, frozenset(), ANONYMOUS, 300, None, lambda ns, selected: True, [])
    print(f"after imports: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.tracemalloc:
        tracemalloc.start()
    profile = cProfile.Profile() if args.cprofile else None
    if profile:
        profile.enable()
    started = time.perf_counter()
    for reflector in watched.all_reflectors:
        try:
            reflector._list()
        except ApiError as exc:  # a kind the emulator does not serve (policies): serve's reflector waits for it
            print(f"not listed: {exc}")
    listed = time.perf_counter()
    found = watched.take_inventory(("flux",), lambda ns, selected: True)
    inventoried = time.perf_counter()
    watched.take_inventory(("flux",), lambda ns, selected: True)
    again = time.perf_counter()
    if profile:
        profile.disable()
    print(f"lists {listed - started:.2f} s, inventory {inventoried - listed:.2f} s, the next one "
          f"{again - inventoried:.2f} s; {len(found.references)} references, {len(found.chains)} pods")
    print(f"garbage collection {collecting[0]:.2f} s in all; thresholds {gc.get_threshold()}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
          + (" (tracemalloc's own cost included)" if args.tracemalloc else ""))
    if args.tracemalloc:
        current, peak = tracemalloc.get_traced_memory()
        print(f"traced: {current / 1e6:.0f} MB held, {peak / 1e6:.0f} MB at the peak; the lines holding most:")
        for stat in tracemalloc.take_snapshot().statistics("lineno")[:20]:
            print(f"  {stat}")
    if profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    sys.exit(main())
