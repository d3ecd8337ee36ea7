"""The emulator answers as strictly as an apiserver where the exporter could come to rely on leniency: a watch
with a selector sees objects leave (DELETED) and enter (ADDED) it, unsupported field selectors and malformed
integers are 400, and raw lines can be injected on open watches."""

import json
import urllib.request

import pytest

from exporter.sources.kube.api import ApiError
from exporter.sources.kube.clusters import load_clusters
from tests.conftest import make_pod
from tests.support import eventually, http_get


def namespace(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def relabel(emulator, name, **labels):
    ns = dict(emulator.get("Namespace", None, name))
    ns["metadata"] = {**ns["metadata"], "labels": labels}
    emulator.update(ns)


def test_a_watch_with_a_selector_sees_objects_leave_and_enter_it(emulator, kubeconfig):
    emulator.create(namespace("shop", watched="yes"))
    [client] = load_clusters(kubeconfig)
    _, version = client.list("v1", "Namespace", label_selector="watched=yes")
    stream = client.watch("v1", "Namespace", version, label_selector="watched=yes", timeout_seconds=2)
    relabel(emulator, "shop", watched="no")
    relabel(emulator, "shop", watched="no", other="x")  # still out: nothing
    relabel(emulator, "shop", watched="yes")
    events = [(kind, obj["metadata"]["labels"], obj["metadata"]["resourceVersion"]) for kind, obj in stream]
    assert [(kind, labels) for kind, labels, _ in events] == [
        ("DELETED", {"watched": "yes"}),  # the object as it was, at the version of the change
        ("ADDED", {"watched": "yes"}),
    ]
    assert int(events[0][2]) > int(version)


def test_a_watch_with_a_field_selector_sees_a_pod_leave_it(emulator, kubeconfig):
    emulator.create({**make_pod("p"), "status": {"phase": "Pending"}})
    [client] = load_clusters(kubeconfig)
    _, version = client.list("v1", "Pod", field_selector="status.phase=Pending")
    stream = client.watch("v1", "Pod", version, field_selector="status.phase=Pending", timeout_seconds=1)
    pod = dict(emulator.get("Pod", "default", "p"))
    emulator.update({**pod, "status": {"phase": "Running"}})
    assert [kind for kind, _ in stream] == ["DELETED"]


@pytest.mark.parametrize("query, message", [
    ("fieldSelector=spec.containers.image%3Dx", "field label not supported: spec.containers.image"),
    ("limit=ten", 'limit: Invalid value: "ten": must be an integer'),
    ("watch=true&timeoutSeconds=soon", 'timeoutSeconds: Invalid value: "soon": must be an integer'),
])
def test_bad_queries_are_400_not_a_crash(emulator, query, message):
    request = urllib.request.Request(f"{emulator.url}/api/v1/pods?{query}",
                                     headers={"Authorization": "Bearer test-token"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["message"] == message


def test_the_client_reads_a_400_as_an_api_error(emulator, kubeconfig):
    [client] = load_clusters(kubeconfig)
    with pytest.raises(ApiError) as caught:
        client.list("v1", "Pod", field_selector="spec.containers=x")
    assert caught.value.status == 400 and "field label not supported" in str(caught.value)
    assert client.list("v1", "Pod", field_selector="spec.nodeName=n1,metadata.namespace!=kube-system")[0] == []


def test_injected_lines_reach_open_watches_of_that_resource_only(emulator, kubeconfig):
    [client] = load_clusters(kubeconfig)
    _, version = client.list("v1", "Pod")
    stream = client.watch("v1", "Pod", version, timeout_seconds=1)
    assert eventually(lambda: emulator.watching["pods"] == 1)
    assert emulator.inject("secrets", b"not for pods") == 0
    assert emulator.inject("pods", b'{"type": "ADDED", "object": {"metadata": {"uid": "u", "name": "x"}}}') == 1
    assert [(kind, obj["metadata"]["name"]) for kind, obj in stream] == [("ADDED", "x")]
    assert http_get(f"{emulator.url}/healthz")[0] is not None  # still serving
