#!/usr/bin/env python3
"""One full check round against a local docker-registry, beside a bare httpx HEAD loop on the same images.

    .venv/bin/python scripts/bench_registry.py --images 2000

Prints: round time at the default concurrency, bare loop time (sequential and at the same concurrency),
their ratio, requests per unique reference, and requests sent by a second round inside the cache TTL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from exporter.registry.checker import Checker  # noqa: E402
from exporter.registry.client import ACCEPT  # noqa: E402
from exporter.registry.credentials import ANONYMOUS  # noqa: E402
from exporter.registry.settings import RegistrySettings, from_options  # noqa: E402
from tests.support.registry import OCI_MANIFEST, Registry  # noqa: E402


def push(reg: Registry, images: int, repositories: int) -> list[str]:
    refs = []
    per_repo = max(1, images // repositories)
    for r in range(repositories):
        repository = f"bench/app{r}"
        config = json.dumps({"architecture": "amd64", "os": "linux", "r": r}).encode()
        layer = f"layer {r}".encode()
        config_digest, layer_digest = reg.push_blob(repository, config), reg.push_blob(repository, layer)
        for t in range(per_repo):
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": config_digest, "size": len(config)},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                    "digest": layer_digest, "size": len(layer)}],
                        "annotations": {"tag": str(t)}}
            reg.push_manifest(repository, f"v{t}", manifest, OCI_MANIFEST)
            refs.append(f"{reg.host}/{repository}:v{t}")
    return refs


async def bare_loop(refs: list[str], concurrency: int) -> float:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repositories", type=int, default=20)
    parser.add_argument("--rate", type=float, help="requests per second per registry (default: the exporter's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(pathlib.Path(tmp))
        try:
            started = time.perf_counter()
            refs = push(reg, args.images, args.repositories)
            print(f"pushed {len(refs)} manifests in {time.perf_counter() - started:.1f} s")
            defaults = RegistrySettings()
            settings = from_options(insecure=[reg.host], rate=args.rate)
            # the bare loop first at the same concurrency, then the checker, then the bare loop again
            bare_concurrent = asyncio.run(bare_loop(refs, defaults.concurrency))
            checker = Checker(settings)
            requests = [(ref, ANONYMOUS) for ref in refs for _ in range(3)]  # 3 pods per image
            started = time.perf_counter()
            results = checker.check_many(requests)
            round_time = time.perf_counter() - started
            first_round_requests = checker.stats.total()
            heads = checker.stats.total("HEAD")
            started = time.perf_counter()
            checker.check_many(requests)
            cached_time = time.perf_counter() - started
            cached_requests = checker.stats.total() - first_round_requests
            bare_again = asyncio.run(bare_loop(refs, defaults.concurrency))
            bare = min(bare_concurrent, bare_again)
        finally:
            reg.stop()
    available = sum(1 for r in results.values() if r.status.value == "available")
    rate = settings.rate
    rate_bound = len(refs) / rate
    print(f"unique references            : {len(refs)} ({available} available)")
    print(f"full round (checker)         : {round_time:.2f} s  ({len(refs) / round_time:.0f} images/s)")
    print(f"bare httpx HEAD loop         : {bare:.2f} s  ({len(refs) / bare:.0f} HEAD/s, concurrency {defaults.concurrency})")
    print(f"checker / bare throughput    : {bare / round_time:.0%}")
    print(f"floor set by rate limit      : {rate_bound:.1f} s at {rate:g} req/s per registry")
    print(f"HEAD requests per reference  : {heads / len(refs):.2f}  (all requests: {first_round_requests}, incl. 1 ping)")
    print(f"requests in a cached round   : {cached_requests}  ({cached_time * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
