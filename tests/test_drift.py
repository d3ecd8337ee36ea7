"""Digest drift against a real registry: a tag re-pushed to another digest is drift, a platform manifest of
the index a tag serves is not, and a running digest deleted from the registry is a missing image.
"""

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.conftest import make_pod
from tests.support import eventually
from tests.support import registry as real

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not real.available(), reason="needs docker-registry")]


def running_pod(name, image, digest):
    pod = make_pod(name, "shop", image)
    pod["status"] = {"phase": "Running", "containerStatuses": [
        {"name": "main", "image": image, "imageID": f"{image.rsplit(':', 1)[0]}@{digest}", "ready": True}]}
    return pod


def rows(published, family):
    return [line for line in published.metrics.body.decode().splitlines() if line.startswith(family + "{")]


def test_drift_after_a_re_push_never_for_a_platform_manifest_and_gone_digest_is_missing(emulator, kubeconfig, tmp_path):
    reg = real.Registry(tmp_path, "none")
    exporter = None
    try:
        web, multi = f"{reg.host}/shop/web:1", f"{reg.host}/public/multi:1"
        first = reg.push_image("shop/web", "1", seed="first build")
        _, (amd64, _) = reg.push_index("public/multi", "1")  # the pod runs the index's amd64 manifest
        emulator.create_many([running_pod("web", web, first), running_pod("multi", multi, amd64),
                              running_pod("pinned", f"{reg.host}/shop/web@{first}", first)])
        settings = RegistrySettings(hosts=from_options(insecure=[reg.host]).hosts,
                                    ttl={status: 0.3 for status in Status}, digest_ttl=0.3)
        checker = Checker(settings)
        published = Published()
        exporter = Exporter(load_clusters(kubeconfig), checker, published, interval=0.3, watch_timeout=5).start()
        assert eventually(lambda: published.ready, timeout=30)
        assert rows(published, "kube_image_digest_drift") == [] and rows(published, "kube_image_missing") == []

        second = reg.push_image("shop/web", "1", seed="second build")  # the tag now names another image
        assert eventually(lambda: rows(published, "kube_image_digest_drift"), timeout=30)
        [drift] = rows(published, "kube_image_digest_drift")
        assert 'workload="web"' in drift and f'running_digest="{first}",registry_digest="{second}"' in drift
        index_reads = checker.stats.total("GET")

        reg.delete("shop/web", first)  # what runs is gone: a restart pulls the new image, a rollback cannot
        gone = f'image="{reg.host}/shop/web@{first}"'
        assert eventually(lambda: any(gone in line and 'workload="web"' in line for line in rows(published, "kube_image_missing")),
                          timeout=30)
        pinned = [line for line in rows(published, "kube_image_missing") if 'workload="pinned"' in line]
        assert len(pinned) == 1 and gone in pinned[0]  # the pinned pod is missing as itself, never drift
        assert [line for line in rows(published, "kube_image_digest_drift") if 'workload="multi"' in line] == []
        assert checker.stats.total("GET") == index_reads  # the multi-arch index is read once, by digest
    finally:
        if exporter:
            exporter.stop()
        reg.stop()
