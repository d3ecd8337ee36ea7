"""`serve` drops a pull observation once no pod runs its image on its node (emulator over real HTTP)."""

from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from tests.conftest import make_pod
from tests.support import eventually

IMAGE = "127.0.0.1:9/shop/web:1"  # a closed port: unreachable without leaving the machine


def test_a_pull_leaves_metrics_when_its_pod_leaves_the_node(emulator, kubeconfig):
    emulator.create(make_pod("web-1", "shop", IMAGE, nodeName="node-7"))
    emulator.create({"apiVersion": "v1", "kind": "Event", "reason": "Pulled", "count": 1,
                     "message": f'Successfully pulled image "{IMAGE}" in 3.2s (3.5s including waiting).',
                     "metadata": {"name": "e1", "namespace": "shop"}, "source": {"host": "node-7"},
                     "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"}})
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["one"]), Checker(), published, interval=0.3, watch_timeout=30)
    exporter.clusters[0].pulls.retention = 0  # documented default: 10 minutes after the pull
    exporter.start()
    series = f'kube_image_pull_duration_seconds{{cluster="one",namespace="shop",node="node-7",image="{IMAGE}"}} 3.2'
    try:
        assert eventually(lambda: series in published.metrics.body.decode(), 30)
        for _ in range(3):  # kept while the pod runs there, cycle after cycle
            cycles = exporter.cycles
            assert eventually(lambda: exporter.cycles > cycles, 30)
            assert series in published.metrics.body.decode()
        emulator.delete("Pod", "shop", "web-1")
        assert eventually(lambda: "kube_image_pull_duration_seconds{" not in published.metrics.body.decode(), 30)
        assert "kube_image_pull_seconds_count" in published.metrics.body.decode()  # the histogram keeps it
    finally:
        exporter.stop()
