"""`serve` with its sources misbehaving: expected lists in ConfigMaps that break and recover, a namespace
label selector, an API outage (watch health and /readyz), unusable pull secrets, several clusters.

The registry here is a closed port on loopback, so every image is `unreachable` without leaving the machine.
"""

import base64
import json
import re

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter, Filters
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings
from tests.conftest import make_pod
from tests.support import assert_promtool_clean, eventually

WEB = "127.0.0.1:9/shop/web:1"
API = "127.0.0.1:9/shop/api:1"


def checker():
    return Checker(RegistrySettings(timeout=2, ttl={status: 0.2 for status in Status}))


def metrics(published):
    return published.metrics.body.decode()


def value(published, family, **labels):
    """The sample of `family` whose labels include `labels`, or None."""
    for line in metrics(published).splitlines():
        if line.startswith(family + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def run(kubeconfig):
    started = []

    def start(contexts=None, **kwargs):
        published = Published()
        kwargs.setdefault("interval", 0.2)
        exporter = Exporter(load_clusters(kubeconfig, contexts), checker(), published, watch_timeout=2, **kwargs)
        started.append(exporter.start())
        return published

    yield start
    for exporter in started:
        exporter.stop()


def configmap(data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "release", "namespace": "flux"}, "data": data}


def test_expected_list_in_a_configmap_reloads_and_survives_breakage(emulator, run):
    emulator.create(make_pod("web", "shop", WEB))
    emulator.create(configmap({"images.txt": f"{WEB}\n{API}\n"}))
    published = run(expected=["configmap:flux/release"])
    not_running = dict(cluster="one", list="release", image=API)
    assert eventually(lambda: value(published, "kube_image_expected_not_running", **not_running) == 1)
    assert value(published, "kube_image_expected_list_up", list="release") == 1
    assert value(published, "kube_image_expected_list_images", list="release") == 2
    assert eventually(lambda: value(published, "kube_image_expected_missing", list="release", image=API,
                                    reason="unreachable") == 1)

    emulator.update(configmap({"images.txt": "{garbage"}))
    assert eventually(lambda: value(published, "kube_image_expected_list_up", list="release") == 0)
    assert value(published, "kube_image_expected_list_load_errors_total", list="release") >= 1
    assert value(published, "kube_image_expected_not_running", **not_running) == 1  # last good content kept

    emulator.delete("ConfigMap", "flux", "release")
    emulator.create(configmap({"images.txt": f"{WEB}\n"}))
    assert eventually(lambda: value(published, "kube_image_expected_list_up", list="release") == 1)
    assert eventually(lambda: value(published, "kube_image_expected_not_running", **not_running) is None)
    assert value(published, "kube_image_expected_list_images", list="release") == 1
    assert_promtool_clean(published.metrics.body)  # the real output, every family of these sources in it


def test_namespace_selector_follows_namespace_labels(emulator, run):
    def namespace(name, labels):
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}

    emulator.create_many([namespace("shop", {"team": "shop"}), namespace("tools", {}),
                          make_pod("web", "shop", WEB), make_pod("debug", "tools", WEB)])
    published = run(filters=Filters(namespace_selector="team=shop"))
    assert eventually(lambda: published.ready)
    assert value(published, "kube_image_unknown_unit", namespace="shop", workload="web") == 1
    assert value(published, "kube_image_unknown_unit", namespace="tools") is None
    assert value(published, "kube_image_watch_objects", kind="Namespace") == 1

    emulator.update(namespace("tools", {"team": "shop"}))
    assert eventually(lambda: value(published, "kube_image_unknown_unit", namespace="tools", workload="debug") == 1)
    report = json.loads(published.report.get().body)
    assert eventually(lambda: "Pod/tools/debug" in json.dumps(json.loads(published.report.get().body)))
    assert report["registry_status"] == {WEB: "unreachable"}


def test_api_outage_keeps_metrics_marks_watches_down_and_not_ready(emulator, run):
    emulator.create(make_pod("web", "shop", WEB))
    published = run(watch_down_threshold=1.0)
    assert eventually(lambda: published.ready)
    assert value(published, "kube_image_watch_up", cluster="one", kind="Pod") == 1
    port = emulator.port

    emulator.stop()
    assert eventually(lambda: value(published, "kube_image_watch_up", cluster="one", kind="Pod") == 0)
    assert eventually(lambda: not published.ready, timeout=15)
    assert re.match(r"one \w+ list/watch failing for \d+s \(threshold 1s\)", published.not_ready_reason)
    assert value(published, "kube_image_unknown_unit", workload="web") == 1  # the last inventory stays
    assert value(published, "kube_image_watch_errors_total", cluster="one", kind="Pod") >= 1

    emulator.start(port)
    assert eventually(lambda: published.ready, timeout=30)
    assert eventually(lambda: value(published, "kube_image_watch_up", cluster="one", kind="Pod") == 1)


def test_unusable_pull_secrets_are_named_never_their_content(emulator, run):
    garbage = base64.b64encode(b'{"auths": "password123"}').decode()
    emulator.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"name": "broken", "namespace": "shop"}, "data": {".dockerconfigjson": garbage}})
    emulator.create(make_pod("web", "shop", WEB, imagePullSecrets=[{"name": "missing"}, {"name": "broken"}]))
    published = run()
    labels = dict(cluster="one", namespace="shop")
    assert eventually(lambda: value(published, "kube_image_pull_secret_unusable", **labels, secret="missing") == 1)
    assert eventually(lambda: published.ready)
    text = metrics(published)
    assert 'secret="missing",reason="unreadable"} 1' in text
    assert 'secret="broken",reason="invalid"} 1' in text
    assert "password123" not in text and "password123" not in published.report.get().body.decode()
    assert_promtool_clean(text)


def test_several_clusters_report_under_their_names(emulator, run):
    emulator.create(make_pod("web", "shop", WEB))
    published = run(contexts=["one", "two"])
    assert eventually(lambda: published.ready)
    body = json.loads(published.report.get().body)
    assert sorted(body["clusters"]) == ["one", "two"]
    assert body["clusters"]["two"]["images"] == [WEB]
    assert body["registry_status"] == {WEB: "unreachable"}


def test_ready_only_once_every_kind_is_listed_or_has_failed(emulator, run):
    emulator.forbid("jobs")  # a kind the exporter may not read does not hold readiness back
    emulator.create_many([
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
         "spec": {"schedule": "0 1 * * *",
                  "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": WEB}]}}}}}},
        make_pod("web", "shop", WEB),
    ])
    published = run()
    assert eventually(lambda: published.ready)
    assert value(published, "kube_image_missing", workload_kind="CronJob", workload="nightly") == 1
    assert value(published, "kube_image_watch_up", kind="Job") == 0
