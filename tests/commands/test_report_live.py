"""`report` against a cluster over HTTP (the emulator): the same report as from the file of the same objects."""

import base64
import json
import pathlib

import yaml

from exporter.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def load_example(emulator):
    items = json.loads((ROOT / "examples/cluster.json").read_text())["items"]
    emulator.create_many(items)


def test_live_report_equals_file_report(emulator, kubeconfig, tmp_path):
    load_example(emulator)
    out = tmp_path / "live.json"
    assert main(["report", "--kubeconfig", str(kubeconfig), "--context", "one", "--output", str(out)]) == 0
    assert out.read_text() == (ROOT / "tests/golden/report.json").read_text()


def test_forbidden_owners_end_chains_without_failing(emulator, kubeconfig, tmp_path):
    load_example(emulator)
    emulator.forbid("replicasets")
    emulator.forbid("helmreleases")
    out = tmp_path / "r.json"
    assert main(["report", "--kubeconfig", str(kubeconfig), "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    chain = report["pod_images_dependencies"]["quay.io/jetstack/cert-manager-controller:v1.16.2"]
    assert list(chain) == ["ReplicaSet/cert-manager/cert-manager-5c9d8879fd"]
    assert "quay.io/jetstack/cert-manager-controller:v1.16.2" in report["images_with_unknown_unit"]


def test_workload_cluster_kubeconfig_from_cluster_api_secret(emulator, kubeconfig, tmp_path):
    from tests.emulator.server import Emulator

    workload = Emulator().start()
    try:
        workload.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w", "namespace": "apps"},
                         "spec": {"containers": [{"name": "c", "image": "registry.example.com/w:1"}]}})
        emulator.create({"kind": "Cluster", "metadata": {"name": "edge-1", "namespace": "capi"}, "spec": {}})
        value = base64.b64encode(yaml.safe_dump(workload.kubeconfig({"edge": "default"})).encode()).decode()
        emulator.create({"kind": "Secret", "metadata": {"name": "edge-1-kubeconfig", "namespace": "capi"},
                         "data": {"value": value}})
        out = tmp_path / "w.json"
        args = ["report", "--kubeconfig", str(kubeconfig), "--workload-cluster-name", "edge-1", "-o", str(out)]
        assert main(args) == 0
        assert json.loads(out.read_text())["images"] == ["registry.example.com/w:1"]
    finally:
        workload.stop()


def test_missing_workload_cluster_and_unknown_context_are_one_line(emulator, kubeconfig, capsys):
    assert main(["report", "--kubeconfig", str(kubeconfig), "--workload-cluster-name", "nope"]) == 2
    assert "no Cluster API Cluster named 'nope'" in capsys.readouterr().err
    assert main(["report", "--kubeconfig", str(kubeconfig), "--context", "zz"]) == 2
    err = capsys.readouterr().err
    assert "context 'zz' not in" in err and "Traceback" not in err


def test_api_outage_is_one_line(emulator, kubeconfig, capsys):
    emulator.stop()
    assert main(["report", "--kubeconfig", str(kubeconfig)]) == 1
    assert "cannot reach the API server" in capsys.readouterr().err
