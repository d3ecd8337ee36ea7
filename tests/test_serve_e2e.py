"""End to end: the exporter watches the emulated cluster, checks a real registry, and a real Prometheus
scrapes it. Deleting an image from the registry raises kube_image_missing for exactly the references that
use it; pushing it back clears them.
"""

import json
import urllib.request

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.conftest import make_pod
from tests.support import eventually, prometheus
from tests.support import registry as real

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (real.available() and prometheus.available()), reason="needs docker-registry and prometheus"),
]


def deployment(name, image, replicas=2):
    rs = f"{name}-5d4f8b7c9"
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "shop", "uid": f"u-{name}",
                      "labels": {"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": "flux"}},
         "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "main", "image": image}]}}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": rs, "namespace": "shop", "uid": f"u-{rs}",
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": True}]},
         "spec": {"replicas": replicas}},
    ]
    objects += [make_pod(f"{rs}-{i}", "shop", image, owner=("apps/v1", "ReplicaSet", rs)) for i in range(replicas)]
    return objects


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


@pytest.mark.long
def test_deleted_image_is_reported_missing_then_clears(emulator, kubeconfig, tmp_path):
    (tmp_path / "registry").mkdir()
    reg = real.Registry(tmp_path / "registry", "none")
    prom = None
    exporter = server = None
    try:
        web = f"{reg.host}/shop/web:1.0"
        api = f"{reg.host}/shop/api:2.0"
        web_digest = reg.push_image("shop/web", "1.0")
        reg.push_image("shop/api", "2.0")
        emulator.create_many(deployment("web", web) + deployment("api", api) +
                             [make_pod("debug", "tools", web)])  # a bare pod with no unit, same image
        short = {status: 0.5 for status in Status}
        settings = RegistrySettings(hosts=from_options(insecure=[reg.host]).hosts, ttl=short, digest_ttl=0.5)
        published = Published()
        server = Server(published, "127.0.0.1", 0).start()
        exporter = Exporter(load_clusters(kubeconfig), Checker(settings), published, interval=0.5,
                            watch_timeout=5).start()
        prom = prometheus.Prometheus(tmp_path, [f"127.0.0.1:{server.port}"])
        prom.wait_for(lambda: prom.query('kube_image_status{status="available"}'), "first check round", timeout=60)
        assert prom.query("kube_image_missing") == []
        unknown = prom.query("kube_image_unknown_unit")
        assert [(r["metric"]["namespace"], r["metric"]["workload"]) for r in unknown] == [("tools", "debug")]

        reg.delete("shop/web", web_digest)
        missing = prom.wait_for(lambda: prom.query("kube_image_missing"), "kube_image_missing", timeout=60)
        got = sorted((r["metric"]["workload_kind"], r["metric"]["workload"], r["metric"].get("unit", ""), r["metric"]["reason"])
                     for r in missing)
        assert got == [("Deployment", "web", "shop", "absent"), ("Pod", "debug", "", "absent")]

        reg.push_image("shop/web", "1.0")
        prom.wait_for(lambda: prom.query("kube_image_missing") == [], "missing cleared", timeout=60)
        text = scrape(server.port)
        assert "kube_image_registry_requests_total{" in text and "kube_image_build_info{" in text
    finally:
        if prom:
            prom.stop()
        if exporter:
            exporter.stop()
        if server:
            server.stop()
        reg.stop()


def test_bad_image_is_invalid_reference_and_deleted_pods_vanish(emulator, kubeconfig):
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(), published, interval=0.3, watch_timeout=5)
    assert published.ready is False
    exporter.start()
    try:
        emulator.create(make_pod("p", "ns1", "bad/Image:1"))
        assert eventually(lambda: 'reason="invalid_reference"' in published.metrics.body.decode())
        assert published.ready
        body = json.loads(published.report.get().body)  # /report: the Sylva report with registry statuses
        assert body["registry_status"] == {"bad/Image:1": "invalid_reference"}
        assert body["images"] == []  # an image that does not parse is left out of the report itself
        emulator.delete("Pod", "ns1", "p")
        assert eventually(lambda: 'workload="p"' not in published.metrics.body.decode())
    finally:
        exporter.stop()


def test_kubelet_pull_events_become_pull_metrics_counted_once(emulator, kubeconfig):
    def kubelet_event(name, reason, message, count=1):
        return {"apiVersion": "v1", "kind": "Event", "reason": reason, "message": message, "count": count,
                "metadata": {"name": name, "namespace": "shop"}, "source": {"host": "node-7"},
                "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}}

    emulator.create(kubelet_event("e1", "Pulled", 'Successfully pulled image "nginx:1.27" in 3.2s '
                                                  "(3.5s including waiting). Image size: 62958873 bytes."))
    emulator.create(kubelet_event("e2", "Failed", 'Failed to pull image "quay.io/a/b:1": not found', count=2))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(), published, interval=0.3, watch_timeout=2).start()
    try:
        labels = 'cluster="one",namespace="shop",node="node-7",image="docker.io/library/nginx:1.27"'
        expected = [f"kube_image_pull_duration_seconds{{{labels}}} 3.2",
                    f"kube_image_pull_size_bytes{{{labels}}} 62958873",
                    'kube_image_pull_failures_total{cluster="one",registry="quay.io",reason="not_found"} 2',
                    'kube_image_pull_seconds_count{cluster="one",registry="docker.io"} 1']
        # the two events may reach different cycles: wait for both, then each line as it should be
        assert eventually(lambda: "kube_image_pull_failures_total{" in published.metrics.body.decode()
                          and "kube_image_pull_duration_seconds{" in published.metrics.body.decode())
        text = published.metrics.body.decode()
        assert [line for line in expected if line not in text] == []
        emulator.drop_watches()  # the watch resumes; nothing is counted twice
        event = dict(emulator.get("Event", "shop", "e2"))
        event["count"] = 5
        emulator.update(event)
        assert eventually(lambda: 'reason="not_found"} 5' in published.metrics.body.decode())
    finally:
        exporter.stop()


def test_becomes_ready_soon_even_with_a_long_interval(emulator, kubeconfig):
    emulator.create_many([make_pod(f"p{i}", "ns", "bad/Image:1") for i in range(2000)])
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(), published, interval=3600).start()
    try:
        assert eventually(lambda: published.ready, timeout=30)
        assert published.metrics.body.count(b"kube_image_missing{") == 2000
    finally:
        exporter.stop()
