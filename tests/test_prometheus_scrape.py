"""A real Prometheus scrapes the exposition the cycle renders and sees exactly the missing references."""

import pytest

from exporter.model.records import Reference, Status
from exporter.serve.endpoints import Page, Published, Server
from exporter.snapshot.join import ImageState, join
from exporter.views.exposition import CONTENT_TYPE, render
from tests.support import prometheus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not prometheus.available(), reason="prometheus not installed (scripts/setup installs it)"),
]


def reference(image, container):
    return Reference("prod", "shop", "Deployment", "web", container, "container", image, "apps")


@pytest.mark.long
def test_prometheus_sees_missing_reference_with_reason(tmp_path):
    snapshot = join(
        [
            (reference("registry.example.com/app:1", "app"), ImageState(Status.AVAILABLE, "registry.example.com")),
            (reference("registry.example.com/gone:1", "side"), ImageState(Status.ABSENT, "registry.example.com")),
        ],
        {},
        {},
        ["prod"],
        now=1.0,
    )
    published = Published(metrics=Page.of(render(snapshot.series), CONTENT_TYPE))
    server = Server(published, "127.0.0.1", 0).start()
    prom = prometheus.Prometheus(tmp_path, [f"127.0.0.1:{server.port}"])
    try:
        result = prom.wait_for(lambda: prom.query("kube_image_missing"), "kube_image_missing scraped")
        assert [(r["metric"]["container"], r["metric"]["reason"]) for r in result] == [("side", "absent")]
        statuses = prom.query('count by (status) (kube_image_status)')
        assert {r["metric"]["status"]: r["value"][1] for r in statuses} == {"available": "1", "absent": "1"}
    finally:
        prom.stop()
        server.stop()


@pytest.mark.long
def test_prometheus_reads_the_self_metrics_made_at_scrape_after_the_cycle_body(tmp_path):
    """Prometheus asks for gzip: the cycle's compressed body and the self-metrics appended at the scrape must
    read as one stream, with both parts in it."""
    from exporter.views.exposition import MetricsPage

    snapshot = join([(reference("registry.example.com/gone:1", "side"), ImageState(Status.ABSENT, "r"))], {}, {},
                    ["prod"], now=1.0)
    server = Server(Published(metrics=MetricsPage(render(snapshot.series))), "127.0.0.1", 0).start()
    prom = prometheus.Prometheus(tmp_path, [f"127.0.0.1:{server.port}"])
    try:
        rss = prom.wait_for(lambda: prom.query("process_resident_memory_bytes"), "self-metrics scraped")
        assert float(rss[0]["value"][1]) > 10e6
        assert prom.query("kube_image_missing")[0]["metric"]["reason"] == "absent"
        assert prom.query('python_info{implementation="CPython"}')
        assert prom.wait_for(lambda: prom.query("rate(process_cpu_seconds_total[10s]) >= 0"), "a CPU rate")
    finally:
        prom.stop()
        server.stop()
