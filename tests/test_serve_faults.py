"""`serve` with a broken source or a failing cycle: the rest goes on, and the failure is seen from outside
(a source's `_up` 0 with its reason, `kube_image_cycle_failures_total`, `/readyz` 503 once cycles stop
completing). The registry here is a closed port on loopback: every image is `unreachable` without leaving
the machine."""

import threading

import pytest

from exporter.commands import config
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from tests.conftest import make_pod
from tests.support import eventually
from tests.test_serve_sources import WEB, checker, value

BAD = '{"images":["nginx:1"],"units_per_image":{"nginx:1":5}}'
GOOD = '{"images":["nginx:1"],"units_per_image":{"nginx:1":["web"]}}'


def failures(published):
    for line in published.metrics.body.decode().splitlines():
        if line.startswith("kube_image_cycle_failures_total "):
            return float(line.split()[1])
    return None


@pytest.fixture
def run(kubeconfig):
    started = []

    def start(**kwargs):
        published = Published()
        kwargs.setdefault("interval", 0.2)
        exporter = Exporter(load_clusters(kubeconfig, None), checker(), published, watch_timeout=2, **kwargs)
        started.append(exporter.start())
        return exporter, published

    yield start
    for exporter in started:
        exporter.stop()


def test_a_list_of_the_wrong_shape_at_start_up_leaves_the_rest_running(emulator, run, tmp_path):
    path = tmp_path / "l.json"
    path.write_text(BAD)
    emulator.create(make_pod("web", "shop", WEB))
    exporter, published = run(expected=[str(path)])
    assert eventually(lambda: published.readiness() == "")
    assert value(published, "kube_image_expected_list_up", list="l") == 0
    assert value(published, "kube_image_expected_list_load_errors_total", list="l") >= 1
    assert value(published, "kube_image_unknown_unit", workload="web") == 1  # the inventory is published
    [state] = exporter.expected.states.values()
    assert "units_per_image.nginx:1: Input should be a valid list" in state.last_error
    assert exporter.health.failures == 0

    path.write_text(GOOD)  # fixed: loaded; then broken again while running: kept, marked down, cycle goes on
    assert eventually(lambda: value(published, "kube_image_expected_list_up", list="l") == 1)
    path.write_text(BAD + " ")
    assert eventually(lambda: value(published, "kube_image_expected_list_up", list="l") == 0)
    assert value(published, "kube_image_expected_list_images", list="l") == 1  # the last good content
    emulator.create(make_pod("api", "shop", WEB))
    assert eventually(lambda: value(published, "kube_image_unknown_unit", workload="api") == 1)
    assert published.readiness() == "" and exporter.health.failures == 0


def test_a_failing_cycle_is_counted_and_turns_readyz_once_overdue(emulator, run):
    emulator.create(make_pod("web", "shop", WEB))
    exporter, published = run(cycle_stale_after=1.0)
    assert eventually(lambda: published.readiness() == "")

    def broken():
        raise RuntimeError("a bug in some source")

    exporter.expected.refresh = broken
    assert eventually(lambda: (failures(published) or 0) >= 2)
    assert eventually(lambda: "last failure: RuntimeError: a bug in some source" in published.readiness())
    assert exporter._thread.is_alive()
    assert value(published, "kube_image_unknown_unit", workload="web") == 1  # the last snapshot stays

    del exporter.expected.refresh  # repaired: ready again
    assert eventually(lambda: published.readiness() == "")


def test_a_hung_cycle_turns_readyz_with_the_reason(emulator, run):
    emulator.create(make_pod("web", "shop", WEB))
    exporter, published = run(cycle_stale_after=1.0)
    assert eventually(lambda: published.readiness() == "")
    release = threading.Event()
    exporter.expected.refresh = lambda: release.wait(30)  # a read that never returns
    try:
        assert eventually(lambda: "(still running)" in published.readiness())
        assert published.readiness().startswith("last completed cycle ")
    finally:
        release.set()


@pytest.mark.parametrize("interval", ["inf", "nan", "-inf"])
def test_a_non_finite_interval_is_refused(interval):
    with pytest.raises(config.ConfigError, match="interval"):
        config.load(flags={"interval": interval})


def test_a_cluster_whose_inventory_fails_keeps_its_last_one_and_the_others_go_on(emulator, kubeconfig):
    emulator.create(make_pod("web", "shop", WEB))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["one", "two"]), checker(), published, interval=0.2,
                        watch_timeout=2).start()
    try:
        assert eventually(lambda: published.readiness() == "")
        one = exporter.clusters[0]
        real = exporter._inventory

        def inventory(cluster):
            if cluster is one:
                raise TypeError("an object of a shape nobody expected")
            return real(cluster)

        exporter._inventory = inventory
        cycles = exporter.cycles
        assert eventually(lambda: exporter.cycles >= cycles + 2)  # a whole cycle has run with the failure
        emulator.create(make_pod("api", "shop", WEB))
        assert eventually(lambda: value(published, "kube_image_unknown_unit", cluster="two", workload="api") == 1)
        assert exporter.health.failures == 0
        assert value(published, "kube_image_unknown_unit", cluster="one", workload="web") == 1  # kept
        assert value(published, "kube_image_unknown_unit", cluster="one", workload="api") is None
        assert value(published, "kube_image_inventory_errors_total", cluster="one") >= 2
        assert value(published, "kube_image_inventory_errors_total", cluster="two") == 0
    finally:
        exporter.stop()
