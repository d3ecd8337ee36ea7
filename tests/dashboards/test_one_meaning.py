"""One meaning of "missing" on every surface, held by a real Prometheus scraping two replicas of a real exporter.

The classes are defined once (`exporter.model.records`: missing, unverified; inactive workloads apart). A cluster
with one reference of each kind is served by two exporters, as `replicaCount: 2` runs them; the overview
dashboard's headline stats and the alerts' expressions, evaluated by Prometheus over both replicas' series, give
the numbers the status page's banner prints, and `check` of the running images says the same in its summary.
"""

import re

import pytest
import yaml

from exporter.cli import main
from exporter.serve.endpoints import Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.conftest import make_pod
from tests.dashboards.test_dashboards import ROOT, deployment, load, panels, substitute
from tests.support import eventually, prometheus
from tests.support import registry as real
from tests.support.browser import Text

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (real.available() and prometheus.available()),
                                                   reason="needs docker-registry and prometheus (scripts/setup)")]


def scaled_to_zero(name, image):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": f"u-{name}"},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}


def headline(prom, title):
    [panel] = [p for p in panels(load("kube-image-exporter-overview.json")) if p["title"] == title]
    [target] = panel["targets"]
    [row] = prom.evaluate(substitute(target["expr"]))
    return int(float(row["value"][1]))


def alerts(prom, name):
    rules = yaml.safe_load((ROOT / "rules" / "kube-image-exporter.rules.yaml").read_text())
    [expr] = [r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == name]
    return len(prom.evaluate(expr))


def banner(body, words):
    match = re.search(rf"(\d+) {words}", Text(body).text)
    assert match, words
    return int(match[1])


@pytest.mark.long
def test_dashboards_alerts_page_and_check_count_the_same_missing_references(emulator, kubeconfig, tmp_path, capsys):
    (tmp_path / "registry").mkdir()
    reg = real.Registry(tmp_path / "registry", "none")
    started = []
    try:
        ok, web, old = (f"{reg.host}/shop/{i}" for i in ("ok:1", "web:1", "old:1"))
        reg.push_image("shop/ok", "1")
        reg.delete("shop/web", reg.push_image("shop/web", "1"))  # absent
        unreachable = "127.0.0.1:1/shop/api:1"  # nothing listens: could not be told
        emulator.create_many(deployment("ok", ok) + deployment("web", web) + deployment("api", unreachable) + [
            scaled_to_zero("old", old),  # never pushed, and runs nothing now
            make_pod("debug", "shop", web),  # a bare pod (no unit) with the absent image
            make_pod("typo", "shop", "Not A Reference!"),  # can never be pulled
        ])
        settings = RegistrySettings(hosts=from_options(insecure=[reg.host, "127.0.0.1:1"]).hosts)
        servers, pages = [], []
        for _ in range(2):  # two replicas, each serving the whole cluster
            published = Published()
            servers.append(Server(published, "127.0.0.1", 0).start())
            started.append(servers[-1])
            started.append(Exporter(load_clusters(kubeconfig), Checker(settings), published, interval=0.5,
                                    watch_timeout=5).start())
            pages.append(published)
        assert eventually(lambda: all(p.ready for p in pages), timeout=60)
        prom = prometheus.Prometheus(tmp_path, [f"127.0.0.1:{s.port}" for s in servers])
        started.append(prom)
        prom.wait_for(lambda: len({r["metric"]["instance"] for r in prom.query("kube_image_missing")}) == 2,
                      "both replicas scraped", timeout=60)

        body = pages[0].page.get().body
        # web (Deployment), debug (bare pod) absent, typo invalid: missing; api unreachable: unverified; old inactive
        assert banner(body, "references missing") == 3
        assert banner(body, "missing on an inactive workload") == 1
        assert banner(body, "reference unverified") == 1
        assert headline(prom, "Missing references") == alerts(prom, "KubeImageMissing") == 3  # not 6: two replicas
        assert headline(prom, "Missing, inactive workloads") == alerts(prom, "KubeImageMissingInactive") == 1
        assert headline(prom, "Unverified references") == 1
        assert headline(prom, "Missing images") == 2  # web and the typo, once each
        # `check` of what the running workloads use: its summary's classes are the headline's, image by image
        assert main(["check", ok, web, unreachable, "Not A Reference!", "--insecure-registry", reg.host,
                     "--insecure-registry", "127.0.0.1:1"]) == 1
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last == "4 images: 2 missing (1 absent, 1 invalid_reference), 1 unverified (1 unreachable), 1 available"
        assert int(re.search(r"(\d+) missing", last)[1]) == headline(prom, "Missing images")
    finally:
        for component in reversed(started):
            component.stop()
        reg.stop()
