#!/usr/bin/env python3
"""The benchmark: the exporter against a generated cluster and a local registry, on one machine.

    .venv/bin/python scripts/bench.py                      # 5,000 and 50,000 pods, 5,000 images
    .venv/bin/python scripts/bench.py --sizes 5000 --json bench.json
    .venv/bin/python scripts/bench.py --sections load      # check and report vs their baselines, as processes
    .venv/bin/python scripts/bench.py --sections http      # the HTTP server under abuse and load

A real docker-registry on 127.0.0.1 holds the images of the generated clusters (5,000 by default, one
repository each). First the registry round: the exporter's checker against a bare httpx HEAD loop at the
same concurrency, in the same run. Then, for each size, the project's API emulator serves a generated
cluster (Deployments with ReplicaSets, DaemonSets, CronJobs with Jobs, bare pods; ~10% of pods' images
unique) and `kube-image-exporter serve` runs as its own process, measured from outside: first inventory,
readiness, CPU per steady cycle and memory from /proc, scrape time, and how long a new pod takes to show.
Last the HTTP server alone (`tests/support/endpoint_server.py`, its own process, a /metrics page of
2,000 series): a scrape while 250 idle connections are held against its 256-file limit, and 200 scrapes
at once (each a new connection, gzip accepted as Prometheus does), five times over, beside the former
thread-per-connection server (`--baseline`) in the same run.
`--sections http` runs that part only (seconds, no registry).
Prints a table beside the targets of DESIGN.md and writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from gen_cluster import big, image_names  # noqa: E402

from exporter.sources.registry.checker import Checker  # noqa: E402
from exporter.sources.registry.client import ACCEPT  # noqa: E402
from exporter.sources.registry.credentials import ANONYMOUS  # noqa: E402
from exporter.sources.registry.settings import RegistrySettings, from_options  # noqa: E402
from tests.emulator.server import Emulator  # noqa: E402
from tests.support import free_port, stop_process  # noqa: E402
from tests.support.registry import OCI_MANIFEST, Registry, digest_of  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the registry --

def push_all(reg: Registry, images: list[str]) -> str:
    """One small image per reference (blobs uploaded once, then mounted into every other repository); returns
    the manifest digest they all share."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = b"one layer for every benchmark image"
    first = images[0].split("/", 1)[1].rsplit(":", 1)[0]
    config_digest, layer_digest = reg.push_blob(first, config), reg.push_blob(first, layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": layer_digest, "size": len(layer)}]}).encode()

    tags: dict[str, list[str]] = {}
    for image in images:
        repository, _, tag = image.split("/", 1)[1].rpartition(":")
        tags.setdefault(repository, []).append(tag)

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=16)) as http:
        def push(repository: str) -> None:
            if repository != first:
                for digest in (config_digest, layer_digest):
                    r = http.post(f"{reg.url}/v2/{repository}/blobs/uploads/?mount={digest}&from={first}")
                    assert r.status_code == 201, (r.status_code, r.text[:200])
            for tag in tags[repository]:
                r = http.put(f"{reg.url}/v2/{repository}/manifests/{tag}", content=manifest,
                             headers={"Content-Type": OCI_MANIFEST})
                assert r.status_code == 201, (r.status_code, r.text[:200])

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(push, tags))
    return digest_of(manifest)


async def bare_loop(refs: list[str], concurrency: int) -> float:
    """The same HEADs the checker sends, with nothing else: the throughput to compare with."""
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=None)) as client:
        async def head(ref: str) -> None:
            host, _, rest = ref.partition("/")
            name, _, tag = rest.rpartition(":")
            async with semaphore:
                response = await client.head(f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
                assert response.status_code == 200, response.status_code

        started = time.perf_counter()
        await asyncio.gather(*(head(ref) for ref in refs))
        return time.perf_counter() - started


def registry_round(reg: Registry, refs: list[str]) -> dict:
    concurrency = RegistrySettings().ceiling  # the bare loop at the most the adaptive checker may reach
    bare_before = asyncio.run(bare_loop(refs, concurrency))
    checker = Checker(from_options(insecure=[reg.host]))  # default settings: adaptive load
    requests = [(ref, ANONYMOUS) for ref in refs for _ in range(3)]  # three pods per image
    started = time.perf_counter()
    results = checker.check_many(requests)
    round_seconds = time.perf_counter() - started
    first = checker.stats.total()
    heads = checker.stats.total("HEAD")
    started = time.perf_counter()
    checker.check_many(requests)
    cached_seconds = time.perf_counter() - started
    bare = min(bare_before, asyncio.run(bare_loop(refs, concurrency)))
    return {
        "images": len(refs),
        "available": sum(1 for r in results.values() if r.status.value == "available"),
        "round_seconds": round(round_seconds, 3),
        "bare_head_loop_seconds": round(bare, 3),
        "throughput_ratio": round(bare / round_seconds, 3),
        "concurrency": concurrency,
        "requests_per_unique_reference": round(heads / len(refs), 3),
        "requests_first_round": first,
        "requests_cached_round": checker.stats.total() - first,
        "cached_round_seconds": round(cached_seconds, 4),
    }


# -- the exporter, from outside --

def scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        return response.read().decode()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def sample(text: str, family: str, **labels) -> list[float]:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(family) and line[len(family)] in "{ " and all(w in line for w in wanted)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss, peak = (int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM"))
    return rss, peak


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the exporter exited ({proc.returncode}) while waiting for {what}")
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def serve_run(reg: Registry, digest: str, pods: int, workdir: Path, interval: float) -> dict:
    items = big(pods, registry=reg.host)
    for item in items:  # running containers report the digest the registry serves: no drift
        for status in item.get("status", {}).get("containerStatuses", []):
            status["imageID"] = f"{status['image'].rsplit(':', 1)[0]}@{digest}"
    unique = len({c["image"] for i in items if i["kind"] == "Pod" for c in i["spec"]["containers"]})
    emulator = Emulator().start()
    emulator.create_many(items)
    del items
    kubeconfig = workdir / f"kubeconfig-{pods}"
    kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig({"bench": "default"})))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / f"exporter-{pods}.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "--log-level", "warning", "serve",
                             "--kubeconfig", str(kubeconfig), "--listen", f"127.0.0.1:{port}",
                             "--insecure-registry", reg.host, "--interval", str(interval)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        def inventory_shown():
            try:
                text = scrape(url)
            except OSError:
                return None
            shown = sample(text, "kube_image_watch_objects", kind="Pod") == [float(pods)]
            return shown and len(sample(text, "kube_image_status")) >= unique
        wait_until(inventory_shown, 600, "the first inventory", proc)
        first_inventory = time.monotonic() - started
        wait_until(lambda: ready(url), 600, "the first check round", proc)
        first_round = time.monotonic() - started
        text = scrape(url)
        heads = sum(sample(text, "kube_image_registry_requests_total", method="HEAD"))
        requests_after_round = sum(sample(text, "kube_image_registry_requests_total"))

        # steady cycles: CPU between two cycle timestamps, several cycles apart
        def cycle_stamp():
            return sample(scrape(url), "kube_image_last_cycle_timestamp_seconds")[0]

        stamp = cycle_stamp()
        wait_until(lambda: cycle_stamp() != stamp, interval * 4 + 60, "a steady cycle", proc)
        stamp, cpu0 = cycle_stamp(), cpu_seconds(proc.pid)
        cycles = 3
        for _ in range(cycles):
            previous = stamp
            stamp = wait_until(lambda: (s := cycle_stamp()) != previous and s, interval * 4 + 60, "a cycle", proc)
        cpu_per_cycle = (cpu_seconds(proc.pid) - cpu0) / cycles
        text = scrape(url)
        cycle_seconds = sample(text, "kube_image_cycle_duration_seconds")[0]
        requests_steady = sum(sample(text, "kube_image_registry_requests_total")) - requests_after_round

        timings = []
        for _ in range(10):
            t = time.perf_counter()
            body = scrape(url)
            timings.append(time.perf_counter() - t)

        # a pod change: a new pod with a new image, until its image shows in /metrics
        image = f"{reg.host}/bench/new-pod:1"
        emulator.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-new", "namespace": "ns-0"},
                         "spec": {"containers": [{"name": "main", "image": image}]}})
        t = time.monotonic()
        wait_until(lambda: f'image="{image}"' in scrape(url), interval * 4 + 120, "the new pod", proc)
        change_seconds = time.monotonic() - t
        rss, peak = memory_mb(proc.pid)
    finally:
        stop_process(proc)
        log.close()
        emulator.stop()
    return {
        "pods": pods,
        "unique_images": unique,
        "first_inventory_seconds": round(first_inventory, 2),
        "first_check_round_done_seconds": round(first_round, 2),
        "steady_cycle_cpu_seconds": round(cpu_per_cycle, 3),
        "steady_cycle_wall_seconds": round(cycle_seconds, 3),
        "rss_mb": round(rss), "peak_rss_mb": round(peak),
        "head_requests_per_unique_image": round(heads / unique, 3),
        "requests_in_cached_rounds": int(requests_steady),
        "scrape_best_ms": round(min(timings) * 1000, 1), "scrape_median_ms": round(statistics.median(timings) * 1000, 1),
        "metrics_bytes": len(body.encode()),
        "pod_change_to_metrics_seconds": round(change_seconds, 2), "interval_seconds": interval,
    }


ENDPOINT_SERVER = [sys.executable, "-m", "tests.support.endpoint_server"]


def start_endpoint_server(*args: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*ENDPOINT_SERVER, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


async def _timed_scrape(port: int) -> float | None:
    """Seconds from connecting to the whole answer; None when the connection failed or the answer was no 200."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
            response = await reader.read()  # to the server's close
            writer.close()
    except (OSError, TimeoutError):
        return None
    return time.perf_counter() - started if re.match(rb"HTTP/1\.[01] 200 ", response) else None


async def _concurrent_scrapes(port: int, n: int) -> list[float | None]:
    return list(await asyncio.gather(*(_timed_scrape(port) for _ in range(n))))


def http_round(idle: int = 250, nofile: int = 256, concurrent: int = 200, rounds: int = 5) -> dict:
    """The HTTP server under abuse and under load, measured from another process."""
    proc, port = start_endpoint_server("--nofile", str(nofile))
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
            response.read()
        scrape_with_idle = time.perf_counter() - started
    finally:
        for sock in held:
            sock.close()
        stop_process(proc)
        proc.stdout.close()
    figures = {"idle_connections": idle, "nofile": nofile, "scrape_with_idle_seconds": round(scrape_with_idle, 3),
               "concurrent_scrapes": concurrent, "rounds": rounds}
    for name, args in (("", ()), ("baseline_", ("--baseline",))):  # the former server, same run, for comparison
        proc, port = start_endpoint_server(*args)
        try:
            asyncio.run(_concurrent_scrapes(port, concurrent))  # warm-up, not counted
            answers: list[float | None] = []
            for _ in range(rounds):
                answers += asyncio.run(_concurrent_scrapes(port, concurrent))
        finally:
            stop_process(proc)
            proc.stdout.close()
        latencies = sorted(a for a in answers if a is not None)
        # a failed scrape counts as the slowest: p99 is over every scrape, answered or not
        latencies += [float("inf")] * (len(answers) - len(latencies))
        figures.update({
            f"{name}failed": len(answers) - len([a for a in answers if a is not None]),
            f"{name}p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            f"{name}p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1),
            f"{name}max_ms": round(1000 * latencies[-1], 1),
        })
    figures["load_average_1m"] = os.getloadavg()[0]  # the client shares the machine: its load weighs on these
    return figures


def table(results: dict) -> str:
    rows = []
    if "registry" in results:
        rows += registry_rows(results["registry"])
    rows += serve_rows(results["serve"])
    if "http" in results:
        h = results["http"]
        rows += [
            (f"http: scrape with {h['idle_connections']} idle connections held, {h['nofile']}-file limit",
             f"{h['scrape_with_idle_seconds']:.2f} s", "< 10 s"),
            (f"http: {h['concurrent_scrapes']} concurrent scrapes x{h['rounds']} (p50, p99, max)",
             f"{h['p50_ms']} ms, {h['p99_ms']} ms, {h['max_ms']} ms, {h['failed']} failed "
             f"(load {h['load_average_1m']:.1f})", "p99 < 100 ms"),
            ("http: the same, former thread-per-connection server",
             f"{h['baseline_p50_ms']} ms, {h['baseline_p99_ms']} ms, {h['baseline_max_ms']} ms, "
             f"{h['baseline_failed']} failed", ""),
        ]
    if "fleet" in results:
        import bench_fleet

        rows += bench_fleet.rows(results["fleet"])
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"{'measure'.ljust(width)}  {'value'.ljust(value_width)}  target", "-" * (width + value_width + 12)]
    lines += [f"{name.ljust(width)}  {value.ljust(value_width)}  {target}" for name, value, target in rows]
    return "\n".join(lines)


def registry_rows(r: dict) -> list[tuple[str, str, str]]:
    return [
        ("registry: full check round", f"{r['round_seconds']:.2f} s for {r['images']} images", ""),
        ("registry: bare HEAD loop, same run", f"{r['bare_head_loop_seconds']:.2f} s", ""),
        ("registry: checker / bare throughput", f"{r['throughput_ratio']:.0%}", ">= 70%"),
        ("registry: requests per unique reference", f"{r['requests_per_unique_reference']:.2f}", "1 (+1 token/scope set)"),
        ("registry: requests in a cached round", f"{r['requests_cached_round']}", "0"),
    ]


def serve_rows(runs: list[dict]) -> list[tuple[str, str, str]]:
    rows = []
    for run in runs:
        n = f"{run['pods']:,} pods"
        rows += [
            (f"{n}: first full inventory", f"{run['first_inventory_seconds']:.1f} s", "< 20 s" if run["pods"] >= 50000 else ""),
            (f"{n}: first check round done (/readyz)", f"{run['first_check_round_done_seconds']:.1f} s", ""),
            (f"{n}: resident memory (peak)", f"{run['rss_mb']} MB ({run['peak_rss_mb']} MB)",
             "< 300 MB" if run["pods"] >= 50000 else ""),
            (f"{n}: CPU per steady cycle", f"{run['steady_cycle_cpu_seconds']:.2f} s", ""),
            (f"{n}: requests per unique image / cached rounds",
             f"{run['head_requests_per_unique_image']:.2f} / {run['requests_in_cached_rounds']}", "1 / 0"),
            (f"{n}: /metrics scrape (best, median)", f"{run['scrape_best_ms']} ms, {run['scrape_median_ms']} ms "
             f"({run['metrics_bytes'] // 1024} KiB)", "< 500 ms"),
            (f"{n}: pod change to /metrics", f"{run['pod_change_to_metrics_seconds']:.1f} s "
             f"(interval {run['interval_seconds']:g} s)", "next cycle"),
        ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="pods per generated cluster, comma-separated")
    parser.add_argument("--images", type=int, default=5000, help="images in the registry")
    parser.add_argument("--interval", type=float, default=5.0, help="the exporter's --interval")
    parser.add_argument("--json", default="bench-results.json", help="where to write the figures")
    parser.add_argument("--sections", default="load,registry,serve,http,fleet",
                        help="which parts to run, comma-separated: load (check and report as whole processes beside "
                             "their baselines), registry (with serve), http, fleet")
    parser.add_argument("--runs", type=int, default=3, help="runs of each whole-process load row (medians printed)")
    parser.add_argument("--fleet", type=int, default=3, metavar="N",
                        help="the fleet section: N exporters sharing a Redis over 2,000 images (scripts/bench_fleet.py)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "system": platform.platform()}, "serve": []}
    if "load" in sections:
        import bench_load

        with tempfile.TemporaryDirectory() as tmp:
            results["load"] = bench_load.run_all(Path(tmp), args.runs)
        print(bench_load.table(results["load"]) + "\n", flush=True)
    if "http" in sections:
        print("HTTP server under abuse and load ...", file=sys.stderr)
        results["http"] = http_round()
    if sections & {"registry", "serve"}:
        results.update(registry_and_serve(args, sizes))
    if "fleet" in sections and args.fleet:
        import bench_fleet

        print(f"fleet of {args.fleet} exporters ...", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            results["fleet"] = bench_fleet.run(args.fleet, 2000, Path(tmp), args.interval)
    if sections - {"load"}:  # the load rows are printed above, in their own table
        print(table(results))
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


def registry_and_serve(args, sizes: list[int]) -> dict:
    results: dict = {"serve": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "registry").mkdir()
        reg = Registry(workdir / "registry")
        try:
            images = image_names(max(args.images, max(sizes) // 10), reg.host)
            started = time.perf_counter()
            digest = push_all(reg, images)
            print(f"pushed {len(images)} images in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            results["registry"] = registry_round(reg, images[:args.images])
            for pods in sizes:
                print(f"serving {pods} pods ...", file=sys.stderr)
                results["serve"].append(serve_run(reg, digest, pods, workdir, args.interval))
        finally:
            reg.stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
