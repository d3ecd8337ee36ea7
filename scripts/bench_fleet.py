#!/usr/bin/env python3
"""The fleet benchmark: N `serve` processes over N emulated clusters using the same images, one registry.

    .venv/bin/python scripts/bench_fleet.py                        # 3 exporters, 2,000 images
    .venv/bin/python scripts/bench_fleet.py --exporters 5 --images 2000 --json fleet.json

A real docker-registry behind a counting front (every manifest request of every process is counted), a real
redis-server on 127.0.0.1 (persistence off). Measured, with default registry settings (rate 50/s per host):
- manifest requests in all when N exporters start together, without and with `--cache-url` (goal: one per
  image, not N per image);
- restart to ready (/readyz) of one exporter, with the shared cache (inside the TTL) and without;
- Redis commands per exporter per cycle (first cycle and steady), keys and memory per 10,000 results.
`scripts/bench.py --fleet N` runs it after the single-exporter figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import push_all, ready, sample, scrape  # noqa: E402
from gen_cluster import image_names  # noqa: E402

from tests.emulator.server import Emulator  # noqa: E402
from tests.support import free_port, stop_process  # noqa: E402
from tests.support.counting import CountingFront  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.registry import Registry  # noqa: E402


def cluster(images: list[str], name: str, workdir: Path) -> tuple[Emulator, Path]:
    emulator = Emulator().start()
    emulator.create_many([{"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": f"p{i}", "namespace": f"ns-{i % 20}"},
                           "spec": {"containers": [{"name": "main", "image": image}]}}
                          for i, image in enumerate(images)])
    path = workdir / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(emulator.kubeconfig({name: "default"})))
    return emulator, path


class Exporter:
    def __init__(self, kubeconfig: Path, host: str, workdir: Path, name: str, cache_url: str | None, interval: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "exporter", "--log-level", "warning", "serve", "--kubeconfig", str(kubeconfig),
                "--listen", f"127.0.0.1:{self.port}", "--insecure-registry", host, "--interval", str(interval)]
        if cache_url:
            args += ["--cache-url", cache_url]
        self.log = open(workdir / f"{name}.log", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 900) -> float:
        deadline = time.monotonic() + timeout
        while not ready(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"exporter on {self.url} not ready (exit code {self.proc.poll()})")
            time.sleep(0.1)
        return time.monotonic() - self.started

    def cycle_stamp(self) -> float:
        return sample(scrape(self.url), "kube_image_last_cycle_timestamp_seconds")[0]

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def redis_commands(store: RedisServer) -> int:
    return int(store.client().info("stats")["total_commands_processed"])


def fleet_round(n: int, kubeconfigs: list[Path], host: str, workdir: Path, cache_url: str | None,
                interval: float, tag: str) -> tuple[list[Exporter], float]:
    exporters = [Exporter(kubeconfigs[i], host, workdir, f"{tag}-{i}", cache_url, interval) for i in range(n)]
    seconds = max(e.wait_ready() for e in exporters)
    return exporters, seconds


def run(n: int, count: int, workdir: Path, interval: float = 5.0) -> dict:
    (workdir / "registry").mkdir(exist_ok=True)
    reg = Registry(workdir / "registry")
    front = CountingFront(reg.url)
    store = RedisServer(workdir)
    emulators: list[Emulator] = []
    try:
        images = image_names(count, reg.host)
        push_all(reg, images)
        served = [image.replace(reg.host, front.host, 1) for image in images]
        kubeconfigs = []
        for i in range(n):
            emulator, path = cluster(served, f"cluster-{i}", workdir)
            emulators.append(emulator)
            kubeconfigs.append(path)

        # N exporters without a shared cache: each checks everything
        exporters, alone_ready = fleet_round(n, kubeconfigs, front.host, workdir, None, interval, "alone")
        for e in exporters:
            e.stop()
        requests_alone = front.total()
        front.reset()

        # N exporters sharing one Redis, started together: single-flight across processes
        commands0 = redis_commands(store)
        exporters, shared_ready = fleet_round(n, kubeconfigs, front.host, workdir, store.url, interval, "shared")
        requests_shared = front.total()
        first_cycle_commands = redis_commands(store) - commands0
        client = store.client()
        keys = client.dbsize()
        memory = client.info("memory")["used_memory"]
        client.flushdb()
        empty_memory = client.info("memory")["used_memory"]
        client.close()
        # steady cycles: everything is in each exporter's local cache, so only the per-cycle probe remains
        stamps = [e.cycle_stamp() for e in exporters]
        commands1 = redis_commands(store)
        cycles = 3
        for _ in range(cycles):
            for i, e in enumerate(exporters):
                previous = stamps[i]
                deadline = time.monotonic() + interval * 4 + 30
                while (stamp := e.cycle_stamp()) == previous and time.monotonic() < deadline:
                    time.sleep(0.1)
                stamps[i] = stamp
        steady_commands = (redis_commands(store) - commands1) / cycles / n
        for e in exporters:
            e.stop()

        # restart to ready: with the shared cache inside the TTL, and without it
        front.reset()
        warm = Exporter(kubeconfigs[0], front.host, workdir, "warm", store.url, interval)
        warm.wait_ready()  # the wiped store is filled again by this one
        warm.stop()
        front.reset()
        restarted = Exporter(kubeconfigs[0], front.host, workdir, "restart-shared", store.url, interval)
        restart_shared = restarted.wait_ready()
        restart_shared_requests = front.total()
        restarted.stop()
        front.reset()
        restarted = Exporter(kubeconfigs[0], front.host, workdir, "restart-alone", None, interval)
        restart_alone = restarted.wait_ready()
        restart_alone_requests = front.total()
        restarted.stop()
    finally:
        for emulator in emulators:
            emulator.stop()
        store.stop()
        front.stop()
        reg.stop()
    per_10k = 10_000 / count
    return {
        "exporters": n,
        "images": count,
        "manifest_requests_without_cache": requests_alone,
        "manifest_requests_with_shared_cache": requests_shared,
        "all_ready_seconds_without_cache": round(alone_ready, 1),
        "all_ready_seconds_with_shared_cache": round(shared_ready, 1),
        "redis_commands_first_cycle_per_exporter": round(first_cycle_commands / n),
        "redis_commands_steady_cycle_per_exporter": round(steady_commands, 1),
        "redis_keys_per_10k_images": round(keys * per_10k),
        "redis_memory_mb_per_10k_images": round((memory - empty_memory) * per_10k / 2**20, 1),
        "restart_to_ready_seconds_with_shared_cache": round(restart_shared, 1),
        "restart_manifest_requests_with_shared_cache": restart_shared_requests,
        "restart_to_ready_seconds_without": round(restart_alone, 1),
        "restart_manifest_requests_without": restart_alone_requests,
    }


def rows(r: dict) -> list[tuple[str, str, str]]:
    n, count = r["exporters"], r["images"]
    return [
        (f"fleet: {n} exporters x {count} images, requests without cache",
         f"{r['manifest_requests_without_cache']:,} (all ready in {r['all_ready_seconds_without_cache']} s)", ""),
        (f"fleet: {n} exporters x {count} images, requests with --cache-url",
         f"{r['manifest_requests_with_shared_cache']:,} (all ready in {r['all_ready_seconds_with_shared_cache']} s)",
         f"{count:,}"),
        ("fleet: restart to ready, shared cache / alone",
         f"{r['restart_to_ready_seconds_with_shared_cache']} s ({r['restart_manifest_requests_with_shared_cache']} "
         f"requests) / {r['restart_to_ready_seconds_without']} s ({r['restart_manifest_requests_without']} requests)",
         "ready without re-checks"),
        ("fleet: Redis commands per exporter, first / steady cycle",
         f"{r['redis_commands_first_cycle_per_exporter']:,} / {r['redis_commands_steady_cycle_per_exporter']}", ""),
        ("fleet: Redis keys, memory per 10,000 results",
         f"{r['redis_keys_per_10k_images']:,} keys, {r['redis_memory_mb_per_10k_images']} MB", ""),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exporters", type=int, default=3, help="exporter processes, one cluster each")
    parser.add_argument("--images", type=int, default=2000, help="images every cluster uses")
    parser.add_argument("--interval", type=float, default=5.0, help="the exporters' --interval")
    parser.add_argument("--json", default="bench-fleet.json", help="where to write the figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.exporters, args.images, Path(tmp), args.interval)
    width = max(len(name) for name, _, _ in rows(result))
    for name, value, target in rows(result):
        print(f"{name.ljust(width)}  {value}  {target}")
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
