#!/usr/bin/env python3
"""`serve` on a generated cluster held by the API emulator: cycle time, /metrics scrape time, memory.

    .venv/bin/python scripts/bench_serve.py --pods 50000

Images point at a local registry holding none of them (every reference is then `absent`: the largest
/metrics). Prints the first cycle (inventory + checks), steady cycle CPU, scrape time and resident memory.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import faulthandler

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50000)
    args = parser.parse_args()
    faulthandler.dump_traceback_later(float(__import__("os").environ.get("BENCH_DEBUG", "1e9")), exit=True)
    import yaml

    from exporter.endpoints import Published
    from exporter.kube.clusters import load_clusters
    from exporter.registry.checker import Checker
    from exporter.registry.settings import from_options
    from exporter.serve import Exporter
    from tests.emulator.server import Emulator
    from tests.support.registry import Registry

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        reg = Registry(tmp)
        cluster = tmp / "cluster.json"
        subprocess.run([sys.executable, str(ROOT / "scripts/gen_cluster.py"), "--pods", str(args.pods),
                        "--registry", reg.host, "--out", str(cluster)], check=True)
        emulator = Emulator().start()
        emulator.create_many(json.loads(cluster.read_text())["items"])
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig()))
        published = Published()
        checker = Checker(from_options(insecure=[reg.host], rate=1000))
        exporter = Exporter(load_clusters(kubeconfig), checker, published, interval=3600)
        started = time.perf_counter()
        exporter.start()
        while not published.ready:
            time.sleep(0.1)
        first = time.perf_counter() - started
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        exporter.cycle()
        steady_cpu, steady_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        url = f"http://127.0.0.1:{exporter_port(published)}/metrics"
        timings = []
        for _ in range(5):
            t = time.perf_counter()
            with urllib.request.urlopen(url) as response:
                body = response.read()
            timings.append(time.perf_counter() - t)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines = body.count(b"\nkube_image_missing{")
        exporter.stop()
        emulator.stop()
        reg.stop()
    print(f"pods: {args.pods}   kube_image_missing series: {lines}   /metrics bytes: {len(body)}")
    print(f"first cycle (lists + inventory + {checker.stats.total('HEAD')} HEADs) : {first:.1f} s")
    print(f"steady cycle (all cached)    : {steady_wall:.2f} s wall, {steady_cpu:.2f} s CPU")
    print(f"/metrics scrape              : {min(timings) * 1000:.0f} ms (best of 5), {max(timings) * 1000:.0f} ms worst")
    print(f"peak RSS (exporter + emulator + cluster in one process): {rss:.0f} MB")
    return 0


_server = None


def exporter_port(published) -> int:
    global _server
    from exporter.endpoints import Server

    _server = Server(published, "127.0.0.1", 0).start()
    return _server.port


if __name__ == "__main__":
    sys.exit(main())
