"""Admission readiness through a real `serve`: a real registry holding a signed and an unsigned image, Kyverno and
sigstore policies in the emulator (their CRDs installed), added and removed mid-run; a cluster without those CRDs
says nothing of them and stays ready."""

import json

import pytest

from tests.conftest import make_pod
from tests.emulator.server import Resource
from tests.support import registry as real
from tests.support.browser import Text
from tests.support.serve_process import Serve

pytestmark = pytest.mark.skipif(not real.available(), reason="needs docker-registry (scripts/setup installs it)")

KYVERNO = Resource("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", namespaced=False)
SIGSTORE = Resource("policy.sigstore.dev", "v1beta1", "clusterimagepolicies", "ClusterImagePolicy", namespaced=False)
KEY = [{"entries": [{"keys": {"publicKeys": "-----BEGIN PUBLIC KEY-----..."}}]}]


def cluster_policy(name, images, action="Enforce"):
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
            "spec": {"validationFailureAction": action, "rules": [{
                "name": "verify", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "verifyImages": [{"imageReferences": images, "attestors": KEY}]}]}}


def image_policy(name, glob):
    return {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", "metadata": {"name": name},
            "spec": {"images": [{"glob": glob}], "authorities": [{"keyless": {"url": "https://fulcio.example"}}]}}


def missing(serve):
    return {(labels["workload"], labels["policy"], labels["mode"])
            for labels, _ in serve.samples("kube_image_signature_missing")}


def test_signatures_policies_require_follow_the_policies(emulator, kubeconfig, tmp_path):
    reg = real.Registry(tmp_path, "none")
    try:
        signed, unsigned = f"{reg.host}/shop/signed:1", f"{reg.host}/shop/unsigned:1"
        reg.push_cosign_signature("shop/signed", reg.push_image("shop/signed", "1"))
        reg.push_image("shop/unsigned", "1")
        reg.push_image("tools/debug", "1")
        emulator.register(KYVERNO)
        emulator.register(SIGSTORE)
        emulator.create_many([
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
            make_pod("signed", "shop", signed), make_pod("unsigned", "shop", unsigned),
            make_pod("debug", "shop", f"{reg.host}/tools/debug:1"),  # no policy covers it: no problem
            cluster_policy("signed-shop", [f"{reg.host}/shop/*"]),
            cluster_policy("audit-all", ["*"], action="Audit"),
        ])
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--insecure-registry", reg.host,
                   "--interval", "1s") as serve:
            serve.wait(lambda: len(missing(serve)) == 3, "the unsigned references")
            assert missing(serve) == {("unsigned", "ClusterPolicy/signed-shop", "enforce"),
                                      ("unsigned", "ClusterPolicy/audit-all", "audit"),
                                      ("debug", "ClusterPolicy/audit-all", "audit")}
            report = json.loads(serve.get("/report")[1])["signature_missing"]
            assert report[unsigned] == [
                {"policy": "ClusterPolicy/audit-all", "kind": "signature", "predicate_type": "", "mode": "audit"},
                {"policy": "ClusterPolicy/signed-shop", "kind": "signature", "predicate_type": "", "mode": "enforce"}]
            page = Text(serve.get("/")[1].encode()).text
            assert "Signatures missing (3)" in page and "not verified cryptographically" in page

            emulator.delete("ClusterPolicy", None, "audit-all")
            emulator.create(image_policy("keyless", f"{reg.host}/shop/**"))  # no namespace opted in yet
            serve.wait(lambda: missing(serve) == {("unsigned", "ClusterPolicy/signed-shop", "enforce")},
                       "the audit policy's rows gone")
            emulator.update({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "shop", "labels": {"policy.sigstore.dev/include": "true"}}})
            serve.wait(lambda: ("unsigned", "ClusterImagePolicy/keyless", "enforce") in missing(serve),
                       "policy-controller's policy once the namespace opts in")
            assert ("signed", "ClusterImagePolicy/keyless", "enforce") not in missing(serve)  # its .sig is there
            assert serve.get("/readyz")[0] == 200
    finally:
        reg.stop()


def test_a_cluster_without_the_policy_crds_says_nothing_of_them(emulator, kubeconfig):
    emulator.create(make_pod("web", "shop", "127.0.0.1:9/shop/web:1"))
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one") as serve:
        serve.wait(lambda: serve.workloads() == {"web"}, "the inventory")
        serve.wait(lambda: serve.get("/readyz")[0] == 200, "ready")
        kinds = {labels["kind"] for labels, _ in serve.samples("kube_image_watch_up")}
        assert "Pod" in kinds and not kinds & {"ClusterPolicy", "Policy", "ClusterImagePolicy"}
        assert serve.samples("kube_image_signature_missing") == []
        warnings = [line for line in serve.log().splitlines()
                    if "WARNING" in line and ("Policy" in line or "kyverno" in line or "sigstore" in line)]
        assert warnings == []
