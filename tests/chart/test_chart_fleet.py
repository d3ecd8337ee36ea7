"""The chart's fleet values: a shared cache whose password comes from a Secret, and the sharded StatefulSet."""

import re

import kubernetes_validate
import pytest

from tests.chart.test_chart import CHART, KUBERNETES, helm, of_kind, render

SHARDED = {"sharding": {"totalShards": 3},
           "cache": {"url": "redis://valkey.cache.svc:6379/0", "existingSecret": "cache-auth"},
           "podDisruptionBudget": {"enabled": True}}


def env_of(workload):
    return {e["name"]: e for e in workload["spec"]["template"]["spec"]["containers"][0].get("env", [])}


@pytest.mark.parametrize("values", [SHARDED, {"cache": {"url": "rediss://cache.example.com:6380/2"}}])
def test_fleet_values_render_lint_and_validate(values):
    report = helm.lint(str(CHART), values, strict=True, namespace="monitoring")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for doc in render(values):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_sharded_mode_is_a_statefulset_whose_pods_take_their_shard_from_their_name():
    docs = render(SHARDED)
    assert of_kind(docs, "Deployment") == []
    [sts] = of_kind(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["podManagementPolicy"] == "Parallel"
    env = env_of(sts)
    assert env["KUBE_IMAGE_EXPORTER_SHARD"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["KUBE_IMAGE_EXPORTER_TOTAL_SHARDS"]["value"] == "3"
    assert env["KUBE_IMAGE_EXPORTER_CACHE_URL"]["value"] == "redis://valkey.cache.svc:6379/0"
    assert env["KUBE_IMAGE_EXPORTER_CACHE_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "cache-auth", "key": "password"}}


def test_pod_environment_is_what_the_exporter_loads(monkeypatch):
    from exporter.commands.config import load

    [sts] = of_kind(render(SHARDED), "StatefulSet")
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_SHARD", f"{sts['metadata']['name']}-2")  # what metadata.name gives
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_TOTAL_SHARDS", env_of(sts)["KUBE_IMAGE_EXPORTER_TOTAL_SHARDS"]["value"])
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_CACHE_URL", env_of(sts)["KUBE_IMAGE_EXPORTER_CACHE_URL"]["value"])
    settings = load(None, {})
    assert (settings.shard, settings.total_shards, settings.cache_url) == (2, 3, "redis://valkey.cache.svc:6379/0")


def test_default_is_one_deployment_without_fleet_settings():
    [deployment] = of_kind(render({}), "Deployment")
    assert deployment["spec"]["replicas"] == 1 and not of_kind(render({}), "StatefulSet")
    assert not any(name.startswith("KUBE_IMAGE_EXPORTER_") for name in env_of(deployment))


@pytest.mark.parametrize(("values", "message"), [
    ({"cache": {"url": "http://cache:6379"}}, "/cache/url"),
    ({"sharding": {"totalShards": 0}}, "/sharding/totalShards"),
    ({"sharding": {"totalShards": 2}, "expectedLists": {"r": "nginx:1\n"}}, "expected lists are compared"),
])
def test_bad_fleet_values_fail_naming_the_key(values, message):
    with pytest.raises(Exception, match=re.escape(message)):
        render(values)


REPLICATED = {"replicaCount": 2, "cache": {"url": "redis://valkey.cache.svc:6379/0", "existingSecret": "cache-auth"}}


def test_replicas_are_full_exporters_spread_over_nodes_with_a_disruption_budget():
    """replicaCount: one Deployment of N replicas, each serving the whole cluster (no shard), sharing the cache."""
    docs = render(REPLICATED)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    [deployment] = of_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2 and not of_kind(docs, "StatefulSet")
    env = env_of(deployment)
    assert "KUBE_IMAGE_EXPORTER_SHARD" not in env and env["KUBE_IMAGE_EXPORTER_CACHE_URL"]["value"]
    [spread] = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    [budget] = of_kind(docs, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    report = helm.lint(str(CHART), REPLICATED, strict=True, namespace="monitoring")
    assert report["errors"] == []


def test_one_replica_has_no_spread_and_no_budget_unless_asked():
    docs = render({})
    assert "topologySpreadConstraints" not in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert of_kind(docs, "PodDisruptionBudget") == []


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 2}, "/cache"),  # the schema: replicas without a shared cache check everything N times
    ({"replicaCount": 2, "cache": {"url": ""}}, "/cache/url"),
    ({"replicaCount": 0}, "/replicaCount"),
    ({**REPLICATED, "sharding": {"totalShards": 2}}, "choose one"),
])
def test_bad_replica_values_fail_naming_the_key(values, message):
    with pytest.raises(Exception, match=re.escape(message)):
        render(values)
