"""The typed decoding of a list file reads what parsing it whole and trimming reads, odd shapes included."""

import json
import pathlib
import subprocess
import sys

import orjson
import pytest

from exporter.cli import main
from exporter.sources.kube import listfile
from exporter.sources.kube.objects import ObjectFields, ReportFields

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def _whole(content: bytes, origin: str, fields=None):
    """The documents as read before the typed decoding: every one parsed whole."""
    return listfile._parsed_documents(content.decode(), origin)


def _pod(name, **fields):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "a"},
           "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}
    for path, value in fields.items():
        node = pod
        *parents, last = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return pod


# shapes `trim` tolerates (or `_malformed` names) that a typed field refuses, or that reach `trim` as they are
ODD = [
    _pod("statuses-a-string", status__containerStatuses="running"),
    _pod("status-item-a-string", status__containerStatuses=["x", {"name": "c", "imageID": "sha"}]),
    _pod("state-a-list", status__containerStatuses=[{"name": "c", "state": ["waiting"]}]),
    _pod("status-a-list", status=[1]),
    _pod("labels-a-list", metadata__labels=["a"]),
    _pod("owners-a-dict", metadata__ownerReferences={"kind": "ReplicaSet"}),
    _pod("secrets-a-string", spec__imagePullSecrets="regcred"),
    _pod("name-a-number", metadata__name=5),
    _pod("kind-null", kind=None),
    _pod("node-null", spec__nodeName=None, spec__serviceAccountName=7),
    _pod("phase-a-dict", status__phase={"a": 1}),
    _pod("containers-a-string", spec__containers="nginx"),
    _pod("container-a-string", spec__containers=["nginx"]),
    _pod("image-a-number", spec__containers=[{"name": "c", "image": 7}]),
    _pod("image-null", spec__containers=[{"name": "c", "image": None}]),
    _pod("metadata-a-string", metadata="x"),
    _pod("spec-a-list", spec=[]),
    _pod("arm-only", spec__nodeSelector={"kubernetes.io/arch": "arm64"}, spec__affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}),
    _pod("selector-a-string", spec__nodeSelector="arm64", spec__affinity=[1]),
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"},
     "spec": {"replicas": "3", "suspend": "no", "template": "x"}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "a"},
     "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "busybox"}]}}}}}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "a"}, "spec": {"template": 1}},
    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": "ok"},
]


def _read(tmp_path, content):
    path = tmp_path / "in.json"
    path.write_bytes(content)
    index = listfile.load(path, ("team",))
    return index.objects, index.skipped


@pytest.mark.parametrize("item", ODD, ids=lambda item: str(item["metadata"].get("name", "odd"))
                         if isinstance(item["metadata"], dict) else "odd")
def test_each_odd_shape_reads_as_parsing_whole_reads_it(tmp_path, monkeypatch, item):
    good = _pod("good", metadata__labels={"team": "t", "other": "x"})
    content = json.dumps({"kind": "List", "items": [good, item, good]}).encode()
    typed = _read(tmp_path, content)
    monkeypatch.setattr(listfile, "_documents", _whole)
    assert typed == _read(tmp_path, content)


def test_only_the_odd_item_is_parsed_whole(tmp_path, monkeypatch):
    parsed = []
    real = listfile._typed_or_whole

    def spy(decoder, raw):
        result = real(decoder, raw)
        parsed.append("status" in result and result["status"] == "running")
        return result

    monkeypatch.setattr(listfile, "_typed_or_whole", spy)
    odd = _pod("odd", status="running")
    good = _pod("good", status={"phase": "Running", "conditions": [{"type": "Ready"}]})
    objects, skipped = _read(tmp_path, json.dumps({"kind": "List", "items": [good, odd, good]}).encode())
    assert parsed == [False, True, False]
    assert [o.meta.name for o in objects] == ["good", "odd", "good"] and not skipped


def test_unread_fields_are_not_decoded():
    content = json.dumps({"kind": "List", "items": [_pod("p", metadata__managedFields=[{"f": 1}],
                                                         spec__volumes=[{"name": "v"}], spec__nodeName="n1",
                                                         status__phase="Running")]}).encode()
    [item] = listfile._DECODERS[ObjectFields].document.decode(content)["items"]
    assert "managedFields" not in item["metadata"] and "volumes" not in item["spec"]
    assert item["spec"]["containers"] == [{"name": "c", "image": "redis:7"}]
    assert item["spec"]["nodeName"] == "n1" and item["status"] == {"phase": "Running"}
    # what a report reads: no status, no scheduling
    [item] = listfile._DECODERS[ReportFields].document.decode(content)["items"]
    assert item == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                    "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}


@pytest.mark.parametrize("content", [
    b'{"kind": "List", "items": {"a": 1}, "metadata": {}}',  # items not a list: an object of kind List
    b'[{"kind": "List", "items": [' + json.dumps(_pod("p")).encode() + b']}, [' + json.dumps(_pod("q")).encode() + b"]]",
    json.dumps([_pod("p"), _pod("q", spec__containers="x")]).encode(),
    json.dumps(_pod("single", status="odd")).encode(),
])
def test_documents_of_other_shapes_read_as_parsing_whole_reads_them(tmp_path, monkeypatch, content):
    typed = _read(tmp_path, content)
    monkeypatch.setattr(listfile, "_documents", _whole)
    assert typed == _read(tmp_path, content)


def test_the_report_of_a_generated_cluster_is_byte_for_byte_the_same(tmp_path, monkeypatch):
    generated = subprocess.run([sys.executable, str(ROOT / "scripts/gen_cluster.py"), "--pods", "400"],
                               check=True, capture_output=True).stdout
    cluster = orjson.loads(generated)
    cluster["items"].extend(ODD)
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(cluster, indent=4))  # as kubectl writes it
    assert main(["report", "--from-file", str(path), "-o", str(tmp_path / "typed.json")]) == 0
    monkeypatch.setattr(listfile, "_documents", _whole)
    assert main(["report", "--from-file", str(path), "-o", str(tmp_path / "whole.json")]) == 0
    assert (tmp_path / "typed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert len(json.loads((tmp_path / "typed.json").read_text())["images"]) > 10

