#!/usr/bin/env python3
"""What watching Nodes costs: memory held for their images, the time to trim them, the join's search for the
last copies of absent images, and the platforms each reference needs (half the nodes arm64).

    .venv/bin/python scripts/bench_nodes.py --nodes 5000 --images 50

Each node lists `--images` images out of 2,000, by digest and by tag, as kubelets do.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter.model.platforms import ANYWHERE  # noqa: E402
from exporter.model.records import Reference  # noqa: E402
from exporter.snapshot.join import _node_only  # noqa: E402
from exporter.snapshot.platforms import needs  # noqa: E402
from exporter.sources.kube.nodes import _normalized, trim_node  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--absent", type=int, default=20, help="images gone from their registry")
    parser.add_argument("--references", type=int, default=50000, help="references placed on the nodes")
    args = parser.parse_args()
    rng = random.Random(1)
    tags = [f"registry.example.com/team{i % 40}/app{i}:1.{i % 7}" for i in range(2000)]
    digests = [f"registry.example.com/team{i % 40}/app{i}@sha256:{i:064x}" for i in range(2000)]
    objects = [{"metadata": {"name": f"node-{n}", "labels": {"kubernetes.io/os": "linux",
                                                             "kubernetes.io/arch": ("amd64", "arm64")[n % 2]}},
                "status": {"images": [{"names": [digests[i], tags[i]], "sizeBytes": 1}
                                      for i in rng.sample(range(2000), args.images)]}}
               for n in range(args.nodes)]
    started = time.perf_counter()
    nodes = [trim_node(obj) for obj in objects]
    first = time.perf_counter() - started
    _normalized.cache_clear()
    del nodes
    tracemalloc.start()
    nodes = [trim_node(obj) for obj in objects]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    started = time.perf_counter()
    nodes = [trim_node(obj) for obj in objects]
    again = time.perf_counter() - started
    absent = {("prod", tags[i], "") for i in rng.sample(range(2000), args.absent)}
    started = time.perf_counter()
    found = _node_only(absent, {"prod": nodes})
    search = time.perf_counter() - started
    placements = {Reference("prod", "ns", "Deployment", f"app{r}", "main", "container", tags[r % 2000], None):
                  frozenset({f"node-{rng.randrange(args.nodes)}" for _ in range(3)} if r % 10 else {ANYWHERE})
                  for r in range(args.references)}  # 3 replicas each, one in ten a template only
    started = time.perf_counter()
    needed = needs(placements, nodes)
    placing = time.perf_counter() - started
    print(f"{args.nodes} nodes x {args.images} images: {held / 1e6:.1f} MB held")
    print(f"  trimming them: {first:.2f} s at the first list, {again * 1000 / args.nodes:.2f} ms "
          f"per node update after")
    print(f"  last copies of {args.absent} absent images: {search * 1000:.1f} ms per cycle ({len(found)} rows)")
    print(f"  platforms needed by {len(placements)} references: {placing * 1000:.1f} ms per cycle "
          f"({len({frozenset(v) for v in needed.values()})} distinct sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
