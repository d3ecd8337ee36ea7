#!/usr/bin/env python3
"""The exporter's main job on one machine with no cluster: a demo of `serve`.

Starts a real docker-registry on 127.0.0.1 holding the demo's images, deletes one of them, serves an
example cluster with the project's Kubernetes API emulator (Flux units, one bare pod with no unit,
kubelet Pulled and Failed events), writes one expected list, runs `kube-image-exporter serve` against all
of it, and prints where to look. Runs until Ctrl-C, or `--once` prints what it found and stops.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator.server import Emulator  # noqa: E402
from tests.support import free_port, http_get, stop_process  # noqa: E402
from tests.support import registry as real  # noqa: E402

FLUX = "kustomize.toolkit.fluxcd.io"


def workload(kind, name, namespace, image, unit, replicas=2, node="node-1"):
    """A workload of a Flux unit with its pods (through a ReplicaSet for a Deployment)."""
    labels = {f"{FLUX}/name": unit, f"{FLUX}/namespace": "flux-system"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": image}]}}
    spec = {"replicas": replicas, "template": template}
    if kind == "CronJob":
        spec = {"schedule": "*/30 * * * *", "jobTemplate": {"spec": {"template": template}}}
    group = "batch/v1" if kind == "CronJob" else "apps/v1"
    objects = [{"apiVersion": group, "kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": spec}]
    if kind == "Deployment":
        owner = (f"{name}-7c9d5b", "ReplicaSet")
        objects.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": owner[0], "namespace": namespace, "labels": labels,
                                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name,
                                                          "controller": True}]},
                        "spec": {"replicas": replicas}})
    elif kind == "StatefulSet":
        owner = (name, kind)
    else:
        return objects  # the CronJob runs nothing now: its template is what will pull next
    for i in range(replicas):
        pod_name = f"{owner[0]}-{i}" if kind == "StatefulSet" else f"{owner[0]}-x{i}"
        objects.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": pod_name, "namespace": namespace, "labels": labels,
                                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner[1],
                                                          "name": owner[0], "controller": True}]},
                        "spec": {"nodeName": node, "containers": [{"name": name, "image": image}]}})
    return objects


def event(name, namespace, pod, reason, message, node="node-1"):
    return {"apiVersion": "v1", "kind": "Event", "reason": reason, "message": message, "count": 1,
            "metadata": {"name": name, "namespace": namespace}, "source": {"component": "kubelet", "host": node},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod}}


def lines(text: str, family: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(family + "{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9706, help="exporter port on 127.0.0.1 (a free one if taken)")
    parser.add_argument("--once", action="store_true", help="print what the exporter reports, then stop")
    args = parser.parse_args()
    if not real.available():
        print("demo: docker-registry is not installed; run scripts/setup as root, or "
              "apt-get install docker-registry", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="kube-image-exporter-demo-"))
    (workdir / "registry").mkdir()
    registry = real.Registry(workdir / "registry", "none")
    emulator = exporter = None
    try:
        host = registry.host
        images = {}
        for repository, tag in [("shop/web", "1.4.2"), ("shop/api", "2.0.1"), ("shop/report", "0.9.0"),
                                ("tools/debug", "1.0"), ("shop/admin", "1.4.2")]:
            images[repository] = (f"{host}/{repository}:{tag}", registry.push_image(repository, tag, seed=repository))
        web, api, report, debug, admin = (images[r][0] for r in
                                          ("shop/web", "shop/api", "shop/report", "tools/debug", "shop/admin"))
        registry.delete("shop/report", images["shop/report"][1])  # gone from the registry: the CronJob will fail

        emulator = Emulator().start()
        emulator.create_many(
            workload("Deployment", "web", "shop", web, unit="shop-frontend")
            + workload("StatefulSet", "api", "shop", api, unit="shop-backend")
            + workload("CronJob", "report", "shop", report, unit="shop-backend")
            + [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "tools"},
                "spec": {"nodeName": "node-2", "containers": [{"name": "debug", "image": debug}]}}]
            + [event("web-pulled", "shop", "web-7c9d5b-x0", "Pulled",
                     f'Successfully pulled image "{web}" in 3.214s (3.5s including waiting). Image size: 48213504 bytes.'),
               event("api-pulled", "shop", "api-0", "Pulled",
                     f'Successfully pulled image "{api}" in 12.8s (12.8s including waiting). Image size: 151224320 bytes.'),
               event("debug-pulled", "tools", "debug", "Pulled", f'Successfully pulled image "{debug}" in 830ms',
                     node="node-2")])
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig({"demo": "default"})))
        expected = workdir / "release-1.4.txt"
        expected.write_text(f"# images of release 1.4\n{web}\n{api}\n{report}\n{admin}\n")

        port = args.port
        try:
            import socket
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                   "--listen", f"127.0.0.1:{port}", "--expected", str(expected), "--insecure-registry", host,
                   "--interval", "15"]
        exporter = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + 60
        while http_get(url + "/readyz")[0] != 200:
            if exporter.poll() is not None or time.monotonic() > deadline:
                print("demo: the exporter did not become ready", file=sys.stderr)
                return 1
            time.sleep(0.2)
        _, text = http_get(url + "/metrics")

        print(f"""
kube-image-exporter is serving the demo cluster on {url}
  registry  http://{host} (docker-registry, images of shop/ and tools/)
  cluster   Kubernetes API emulator on {emulator.url} (kubeconfig {kubeconfig})

{report} was deleted from the registry. The CronJob shop/report uses it, so the next run would fail to pull:
""")
        for family in ("kube_image_missing", "kube_image_unknown_unit", "kube_image_expected_missing",
                       "kube_image_expected_not_running", "kube_image_pull_duration_seconds"):
            for line in lines(text, family):
                print("  " + line)
        print(f"""
Look at:
  {url}/               # the status page, in a browser: what is missing, since when, and every source's health
  curl -s {url}/metrics | grep '^kube_image_missing'
  curl -s {url}/report           # the Sylva image report with each image's registry status
  curl -s {url}/readyz
""")
        if args.once:
            return 0 if lines(text, "kube_image_missing") else 1
        print("Ctrl-C stops the demo.")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            exporter.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        if exporter is not None:
            stop_process(exporter)
        if emulator is not None:
            emulator.stop()
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
