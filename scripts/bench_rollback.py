#!/usr/bin/env python3
"""What rollback readiness costs: 200 Helm releases x 5 kept revisions, against a real local registry.

    .venv/bin/python scripts/bench_rollback.py [--releases 200] [--revisions 5]

Each release's deployed revision runs (two pods); every revision's image is in the registry. The same
cluster is served twice, without and with `rollback_namespaces`, and the script prints the decoding time
(paid when a revision is listed or changes, not per cycle), the CPU of a steady cycle, and the registry
requests the kept revisions add (one HEAD per image not already checked for a running pod).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import push_all  # noqa: E402

from exporter.serve.endpoints import Published  # noqa: E402
from exporter.serve.loop import Exporter  # noqa: E402
from exporter.sources.kube.clusters import load_clusters  # noqa: E402
from exporter.sources.kube.releases import Decoder  # noqa: E402
from exporter.sources.registry.checker import Checker  # noqa: E402
from exporter.sources.registry.settings import from_options  # noqa: E402
from tests.conftest import make_pod  # noqa: E402
from tests.emulator.server import Emulator  # noqa: E402
from tests.kube.test_releases import DEPLOYMENT, helm_object  # noqa: E402
from tests.support.registry import Registry  # noqa: E402

FILLER = "".join(f"""---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{n}
data:
  settings.yaml: |
{"".join(f"    key{k}: value {k} of a typical chart's settings" + chr(10) for k in range(60))}""" for n in range(8))


SERVICE = """---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports: [{port: 80}]
"""


def manifest(image: str) -> str:
    """About 30 KB, like a small chart: ConfigMaps, a Service, a Deployment."""
    return FILLER + SERVICE + DEPLOYMENT.format(image=image)


def run(kubeconfig: Path, host: str, rollback: list[str]) -> dict:
    checker = Checker(from_options(insecure=[host], rate=1e9))
    exporter = Exporter(load_clusters(kubeconfig), checker, Published(), interval=3600,
                        rollback_namespaces=rollback)
    spent = [0.0]
    original = Decoder.__call__

    def timed(self, obj):
        started = time.perf_counter()
        try:
            return original(self, obj)
        finally:
            spent[0] += time.perf_counter() - started

    Decoder.__call__ = timed
    try:
        exporter.start()
        while not exporter.published.ready:
            time.sleep(0.05)
        first_round = checker.stats.total("HEAD")
        cpu = time.process_time()
        exporter.cycle()
        steady = time.process_time() - cpu
        cached = checker.stats.total("HEAD") - first_round
    finally:
        Decoder.__call__ = original
        exporter.stop()
    return {"heads": first_round, "steady_cpu": steady, "cached_heads": cached, "decode_seconds": spent[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--revisions", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        reg = Registry(workdir)
        emulator = Emulator().start()
        try:
            images = [f"{reg.host}/team/app{i}:{rev}" for i in range(args.releases) for rev in range(1, args.revisions + 1)]
            push_all(reg, images)
            objects = []
            for i in range(args.releases):
                for rev in range(1, args.revisions + 1):
                    image = f"{reg.host}/team/app{i}:{rev}"
                    deployed = rev == args.revisions
                    objects.append(helm_object(rev, "deployed" if deployed else "superseded", name=f"app{i}",
                                               namespace="apps", manifest=manifest(image)))
                    if deployed:
                        objects += [make_pod(f"app{i}-{p}", "apps", image) for p in range(2)]
            emulator.create_many(objects)
            kubeconfig = workdir / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig({"bench": "default"})))
            without = run(kubeconfig, reg.host, [])
            with_rollback = run(kubeconfig, reg.host, ["apps"])
        finally:
            emulator.stop()
            reg.stop()
    revisions = args.releases * args.revisions
    print(f"releases x revisions           : {args.releases} x {args.revisions} ({revisions} release Secrets, "
          f"~{len(manifest('x')) // 1024} KiB manifest each)")
    print(f"decoding, once when listed     : {with_rollback['decode_seconds']:.2f} s "
          f"({with_rollback['decode_seconds'] / revisions * 1000:.2f} ms per revision); 0 s in later cycles")
    print(f"steady cycle CPU               : {without['steady_cpu']:.3f} s without, {with_rollback['steady_cpu']:.3f} s with")
    print(f"HEAD requests, first round     : {without['heads']} without, {with_rollback['heads']} with "
          f"(+{with_rollback['heads'] - without['heads']}: the kept revisions' images, none already checked)")
    print(f"HEAD requests, cached round    : {without['cached_heads']} without, {with_rollback['cached_heads']} with")
    return 0


if __name__ == "__main__":
    sys.exit(main())
