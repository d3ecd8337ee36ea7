#!/usr/bin/env python3
"""What the node's view costs a check round: the same images checked directly and as a node would pull them.

    .venv/bin/python scripts/bench_node.py                 # 500 images
    .venv/bin/python scripts/bench_node.py --images 2000

A real Basic-auth docker-registry on 127.0.0.1 holds N images (one repository each). Three rounds, each with a
fresh checker: (1) direct, credentials from a docker config; (2) through the node: the names under `.invalid`,
led to the registry by a containerd hosts.toml, credentials from a credential provider plugin (a small Python
script) answering with `cacheKeyType: Registry`; (3) the same with `cacheKeyType: Image` (one plugin run per
repository, the worst case). Prints wall time, manifest requests and plugin runs of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.sources.registry.checker import Checker  # noqa: E402
from exporter.sources.registry.credentials import Credential, Keyring  # noqa: E402
from exporter.sources.registry.node.view import NodeOptions, NodeView  # noqa: E402
from exporter.sources.registry.settings import from_options  # noqa: E402
from tests.registry.node.conftest import Plugin, provider_config  # noqa: E402
from tests.support import registry as real  # noqa: E402

MIRRORED = "registry.example.invalid"


def round_of(checker: Checker, images: list[str], keyring: Keyring) -> tuple[float, int, set[str]]:
    started = time.perf_counter()
    results = checker.check_many((image, keyring) for image in images)
    return time.perf_counter() - started, checker.stats.total("HEAD"), {r.status.value for r in results.values()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        reg = real.Registry(work / "registry", "basic")
        try:
            for i in range(args.images):
                reg.push_image(f"bench/app{i}", "1.0", seed=str(i))
            direct = [f"{reg.host}/bench/app{i}:1.0" for i in range(args.images)]
            mirrored = [f"{MIRRORED}/bench/app{i}:1.0" for i in range(args.images)]
            rows = []
            keyring = Keyring.of([Credential(reg.host, "alice", "wonderland")])
            rows.append(("direct, docker config", *round_of(Checker(from_options(insecure=[reg.host])), direct, keyring), 0))
            hosts = work / "certs.d" / MIRRORED
            hosts.mkdir(parents=True)
            (hosts / "hosts.toml").write_text(f'[host."http://{reg.host}"]\n  capabilities = ["pull", "resolve"]\n')
            for key_type in ("Registry", "Image"):
                bin_dir = work / f"bin-{key_type}"
                bin_dir.mkdir()
                plugin = Plugin(bin_dir, "bench-provider")
                plugin.answer(cacheKeyType=key_type, auth={"*.example.invalid": {"username": "alice",
                                                                                 "password": "wonderland"}})
                config = provider_config(work / f"{key_type}.json", [{"name": plugin.name,
                                                                      "matchImages": ["*.example.invalid"]}])
                view = NodeView(NodeOptions(config, bin_dir, containerd_hosts_dir=work / "certs.d"))
                checker = Checker(replace(from_options(), node=view))
                rows.append((f"node: hosts.toml + plugin ({key_type})", *round_of(checker, mirrored, view.keyring()),
                             len(plugin.calls())))
        finally:
            reg.stop()
    print(f"{args.images} images, one check round each (fresh checker)")
    print(f"{'round':<38} {'seconds':>8} {'HEADs':>6} {'plugin runs':>12}  statuses")
    for name, seconds, heads, statuses, runs in rows:
        print(f"{name:<38} {seconds:>8.2f} {heads:>6} {runs:>12}  {','.join(sorted(statuses))}")
    print(json.dumps([{"round": r[0], "seconds": round(r[1], 3), "heads": r[2], "plugin_runs": r[4]} for r in rows]))


if __name__ == "__main__":
    main()
