"""ClusterClient against the emulator over HTTP: pagination, selectors, 403/404, outages, several clusters."""

import pytest

from exporter.sources.kube.api import ApiError, Expired
from exporter.sources.kube.clusters import KubeConfigError, load_clusters
from tests.conftest import make_pod
from tests.support import eventually


def test_list_reads_every_page(emulator, kubeconfig):
    emulator.create_many([make_pod(f"p{i:04d}") for i in range(1203)])
    [client] = load_clusters(kubeconfig)
    items, version = client.list("v1", "Pod", page_size=500)
    assert len(items) == 1203 and len({i["metadata"]["name"] for i in items}) == 1203
    assert emulator.requests[("list", "pods")] == 3
    assert items[0]["kind"] == "Pod" and items[0]["apiVersion"] == "v1"
    assert version == str(emulator.resource_version)


def test_selectors_are_sent(emulator, kubeconfig):
    emulator.create(make_pod("a", labels={"app": "web"}))
    emulator.create(make_pod("b", labels={"app": "db"}))
    emulator.create(make_pod("c", namespace="other", labels={"app": "web"}))
    [client] = load_clusters(kubeconfig)
    items, _ = client.list("v1", "Pod", label_selector="app in (web)", field_selector="metadata.namespace=default")
    assert [i["metadata"]["name"] for i in items] == ["a"]
    items, _ = client.list("v1", "Pod", namespace="other")
    assert [i["metadata"]["name"] for i in items] == ["c"]


def test_get_returns_none_for_absent_forbidden_and_unknown_kinds(emulator, kubeconfig):
    emulator.create({"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default"}, "spec": {}})
    [client] = load_clusters(kubeconfig)
    assert client.get("apps/v1", "ReplicaSet", "default", "rs")["metadata"]["name"] == "rs"
    assert client.get("apps/v1", "ReplicaSet", "default", "gone") is None
    assert client.get("example.com/v1", "Widget", "default", "w") is None
    emulator.forbid("replicasets")
    assert client.get("apps/v1", "ReplicaSet", "default", "rs") is None


def test_forbidden_list_is_a_clear_error(emulator, kubeconfig):
    emulator.forbid("secrets")
    [client] = load_clusters(kubeconfig)
    with pytest.raises(ApiError) as err:
        client.list("v1", "Secret")
    assert err.value.status == 403 and "forbidden" in str(err.value)


def test_expired_continue_token_is_410(emulator, kubeconfig):
    emulator.create_many([make_pod(f"p{i}") for i in range(10)])
    [client] = load_clusters(kubeconfig)
    pages = client.list_pages("v1", "Pod", page_size=4)
    next(pages)
    emulator.create(make_pod("new"))
    emulator.compact()
    with pytest.raises(Expired):
        next(pages)


def test_unreachable_api_is_an_api_error(emulator, kubeconfig):
    [client] = load_clusters(kubeconfig)
    emulator.stop()
    with pytest.raises(ApiError, match="cannot reach the API server") as err:
        client.list("v1", "Pod")
    # the cause in a few words, not urllib3's repr of its pool, connection object and retry state
    assert str(err.value).endswith("(connection refused)") and len(str(err.value)) < 100, str(err.value)


def test_wrong_token_is_401(emulator, kubeconfig, tmp_path):
    emulator.token = "another"
    [client] = load_clusters(kubeconfig)
    with pytest.raises(ApiError) as err:
        client.list("v1", "Pod")
    assert err.value.status == 401


def test_two_clusters_at_once(tmp_path):
    import yaml

    from tests.emulator.server import Emulator

    first, second = Emulator().start(), Emulator().start()
    try:
        first.create(make_pod("only-in-first"))
        second.create(make_pod("only-in-second"))
        config = first.kubeconfig({"first": "default"})
        other = second.kubeconfig({"second": "default"})
        other["clusters"][0]["name"] = "emu2"
        other["contexts"][0]["context"]["cluster"] = "emu2"
        config["clusters"] += other["clusters"]
        config["contexts"] += other["contexts"]
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        clients = load_clusters(path, ["first", "second"])
        seen = {c.name: [i["metadata"]["name"] for i in c.list("v1", "Pod")[0]] for c in clients}
        assert seen == {"first": ["only-in-first"], "second": ["only-in-second"]}
    finally:
        first.stop()
        second.stop()


def test_kubeconfig_errors_are_one_clear_line(tmp_path, kubeconfig):
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        load_clusters(tmp_path / "absent")
    broken = tmp_path / "broken"
    broken.write_text("contexts: [\n")
    with pytest.raises(KubeConfigError, match="not valid YAML"):
        load_clusters(broken)
    with pytest.raises(KubeConfigError, match=r"context 'nope' not in .* \(known: one, two\)"):
        load_clusters(kubeconfig, ["nope"])
    empty = tmp_path / "empty"
    empty.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(KubeConfigError, match="has no contexts"):
        load_clusters(empty)


def test_cluster_name_overrides_context_name(kubeconfig):
    [client] = load_clusters(kubeconfig, ["two"], cluster_name="prod-eu")
    assert client.name == "prod-eu"


def test_fields_decode_only_what_trim_reads_and_odd_pages_whole(emulator, kubeconfig):
    from exporter.sources.kube.objects import ObjectFields, trim

    pod = make_pod("p")
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    odd = make_pod("odd")
    odd["spec"]["containers"] = "not a list"  # trim tolerates it; the typed decoding does not
    emulator.create_many([pod, odd])
    [client] = load_clusters(kubeconfig)
    whole = client.list("v1", "Pod", page_size=1)[0]
    partial = client.list("v1", "Pod", page_size=1, fields=ObjectFields)[0]
    assert [trim(i) for i in partial] == [trim(i) for i in whole]
    by_name = {i["metadata"]["name"]: i for i in partial}
    assert "volumes" not in by_name["p"]["spec"] and by_name["p"]["kind"] == "Pod"
    assert by_name["odd"]["spec"]["containers"] == "not a list"  # its page was parsed whole


def test_fields_on_a_watch_keep_what_an_error_event_says(emulator, kubeconfig):
    from exporter.sources.kube.objects import ObjectFields

    [client] = load_clusters(kubeconfig)
    _, version = client.list("v1", "Pod")
    stream = client.watch("v1", "Pod", version, timeout_seconds=5, fields=ObjectFields)
    assert eventually(lambda: emulator.watching["pods"] == 1, 5)
    emulator.create(make_pod("new"))
    emulator.inject("pods", b'{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}')
    events = iter(stream)
    kind, obj = next(events)
    assert kind == "ADDED" and obj["metadata"]["name"] == "new" and obj["metadata"]["resourceVersion"]
    with pytest.raises(Expired) as err:
        next(events)
    assert err.value.status == 410 and "too old" in str(err.value)
