"""Rollback readiness against a real registry: Helm release Secrets made the way Helm makes them (gzip,
double base64) for two revisions; the older revision's image deleted from the registry is exactly what is
reported; a corrupt release is a warning and a counter, and everything else is still served.
"""

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.kube.releases import Decoder
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.conftest import make_pod
from tests.kube.test_releases import DEPLOYMENT, helm_object
from tests.support import eventually
from tests.support import registry as real

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not real.available(), reason="needs docker-registry")]


def rows(published, family):
    return [line for line in published.metrics.body.decode().splitlines() if line.startswith(family + "{")]


def test_the_older_revisions_deleted_image_is_reported_and_a_corrupt_release_is_skipped(
        emulator, kubeconfig, tmp_path, caplog):
    reg = real.Registry(tmp_path, "none")
    exporter = None
    try:
        old, new = f"{reg.host}/shop/web:1.0", f"{reg.host}/shop/web:2.0"
        old_digest = reg.push_image("shop/web", "1.0")
        reg.push_image("shop/web", "2.0")
        emulator.create_many([
            helm_object(1, "superseded", namespace="apps", manifest=DEPLOYMENT.format(image=old)),
            helm_object(2, "deployed", namespace="apps", manifest=DEPLOYMENT.format(image=new)),
            helm_object(1, "superseded", name="broken", namespace="apps", raw=b"bm90IGd6aXA="),
            helm_object(1, "superseded", name="elsewhere", namespace="other", manifest=DEPLOYMENT.format(image=old)),
            make_pod("web", "apps", new),
        ])
        settings = RegistrySettings(hosts=from_options(insecure=[reg.host]).hosts,
                                    ttl={status: 0.3 for status in Status}, digest_ttl=0.3)
        checker = Checker(settings)
        published = Published()
        exporter = Exporter(load_clusters(kubeconfig), checker, published, interval=0.3, watch_timeout=5,
                            rollback_namespaces=["apps"]).start()
        assert eventually(lambda: published.ready, timeout=30)
        assert rows(published, "kube_image_rollback_missing") == []
        errors = rows(published, "kube_image_rollback_release_errors_total")
        assert errors == ['kube_image_rollback_release_errors_total{cluster="one",namespace="apps",reason="corrupt"} 1']
        assert "release skipped: Secret apps/sh.helm.release.v1.broken.v1" in caplog.text

        reg.delete("shop/web", old_digest)  # revision 1 of `shop` can no longer be rolled back to
        assert eventually(lambda: rows(published, "kube_image_rollback_missing"), timeout=30)
        assert rows(published, "kube_image_rollback_missing") == [
            f'kube_image_rollback_missing{{cluster="one",namespace="apps",release="shop",revision="1",'
            f'image="{old}",reason="absent"}} 1']  # not `other` (not opted in), not the deployed revision 2
        assert rows(published, "kube_image_missing") == []  # what runs is fine

        emulator.delete("Secret", "apps", "sh.helm.release.v1.shop.v1")  # history pruned: the alarm goes
        assert eventually(lambda: rows(published, "kube_image_rollback_missing") == [], timeout=30)
    finally:
        if exporter:
            exporter.stop()
        reg.stop()


def test_decoding_cost_of_many_releases_is_paid_once(emulator, kubeconfig, monkeypatch):
    """200 releases x 5 revisions: decoded when listed, never again per cycle."""
    objects = [helm_object(rev, "deployed" if rev == 5 else "superseded", name=f"app{i}", namespace="apps",
                           manifest=DEPLOYMENT.format(image=f"127.0.0.1:9/team/app{i}:{rev}"))
               for i in range(200) for rev in range(1, 6)]
    emulator.create_many(objects)
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(RegistrySettings(timeout=1)), published, interval=0.2,
                        watch_timeout=5, rollback_namespaces=["apps"])
    decoded = []
    original = Decoder.__call__
    monkeypatch.setattr(Decoder, "__call__", lambda self, obj: decoded.append(1) or original(self, obj))
    try:
        exporter.start()
        assert eventually(lambda: published.ready, timeout=60)
        cycles = exporter.cycles
        assert eventually(lambda: exporter.cycles >= cycles + 3, timeout=30)
        assert len(decoded) == 1000  # each revision once, at list time, not once per cycle
        assert len(rows(published, "kube_image_rollback_missing")) == 800  # 4 kept revisions x 200, unreachable
    finally:
        exporter.stop()
