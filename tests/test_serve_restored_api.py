"""`serve` follows an API server that forgets: restored from a backup (its resourceVersion goes back), the
exporter lists again, so deleted pods leave /metrics and new ones appear, and `kube_image_watch_up` says 1 only
once what it holds is the cluster again (emulator over real HTTP)."""

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings
from tests.conftest import make_pod
from tests.support import eventually

IMAGE = "127.0.0.1:9/shop/web:1"  # a closed port: every image is unreachable without leaving the machine


def workloads(published):
    """The bare pods shown in /metrics (each is its own workload, with no unit)."""
    return sorted(line.split('workload="', 1)[1].split('"', 1)[0]
                  for line in published.metrics.body.decode().splitlines()
                  if line.startswith("kube_image_unknown_unit{"))


@pytest.fixture
def exporter(kubeconfig):
    published = Published()
    checker = Checker(RegistrySettings(timeout=2, ttl={status: 0.2 for status in Status}))
    running = Exporter(load_clusters(kubeconfig, ["one"]), checker, published, interval=0.2, watch_timeout=30).start()
    yield published
    running.stop()


@pytest.mark.parametrize("future_versions", ["reject", "serve"])
def test_pods_follow_an_api_server_restored_from_a_backup(emulator, exporter, future_versions):
    emulator.future_versions = future_versions  # 504 Too large resource version, or silence
    emulator.create(make_pod("kept", "shop", IMAGE))
    emulator.create(make_pod("deleted-after-backup", "shop", IMAGE))
    assert eventually(lambda: workloads(exporter) == ["deleted-after-backup", "kept"], 30)
    backup = emulator.backup()
    emulator.delete("Pod", "shop", "deleted-after-backup")
    emulator.create(make_pod("lost-in-the-restore", "shop", IMAGE))
    assert eventually(lambda: workloads(exporter) == ["kept", "lost-in-the-restore"], 30)

    port = emulator.port
    emulator.stop()
    emulator.restore(backup)
    emulator.start(port)
    emulator.create(make_pod("created-after-restore", "shop", IMAGE))
    assert eventually(lambda: workloads(exporter) == ["created-after-restore", "deleted-after-backup", "kept"], 30)
    assert eventually(lambda: 'kube_image_watch_up{cluster="one",kind="Pod"} 1' in exporter.metrics.body.decode())
    relists = [line for line in exporter.metrics.body.decode().splitlines()
               if line.startswith('kube_image_watch_relists_total{cluster="one",kind="Pod"')]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in relists) >= 1, relists  # on-call sees it happened
