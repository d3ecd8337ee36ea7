"""Platforms through a real `serve`: a real registry holding an index re-pushed without arm64 and a single arm64
image, the emulator's Nodes of two architectures with pods on each and templates with and without selectors. The
reference whose node lacks its platform is `platform_missing` (the same image on the amd64 node stays fine), on
/metrics, the page and /report; a node removed or added mid-run changes the verdicts at the next cycle."""

import json

import pytest

from tests.conftest import make_pod
from tests.support import registry as real
from tests.support.browser import Text
from tests.support.serve_process import Serve

pytestmark = pytest.mark.skipif(not real.available(), reason="needs docker-registry (scripts/setup installs it)")


def node(name, arch):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
            "status": {"nodeInfo": {"operatingSystem": "linux", "architecture": arch}, "images": []}}


def scaled_to_zero(name, image, **spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop",
                                                                         "uid": f"u-{name}"},
            "spec": {"replicas": 0, "template": {"spec": {"containers": [{"name": "main", "image": image}], **spec}}}}


def lacking(serve):
    """{workload: platform_missing} from kube_image_missing, and {(image, platform)} from kube_image_platform_missing."""
    missing = {labels["workload"]: labels["reason"] for labels, _ in serve.samples("kube_image_missing")}
    return missing, {(labels["image"], labels["platform"]) for labels, _ in serve.samples("kube_image_platform_missing")}


def test_a_reference_whose_node_lacks_its_platform_is_platform_missing_and_follows_the_nodes(
        emulator, kubeconfig, tmp_path):
    reg = real.Registry(tmp_path, "none")
    try:
        web, api, tool = (f"{reg.host}/shop/{name}:1" for name in ("web", "api", "tool"))
        reg.push_index("shop/web", "1", ("linux/amd64",), attestation=True)  # re-pushed without arm64
        reg.push_index("shop/api", "1", ("linux/amd64", "linux/arm64"), media_type=real.DOCKER_LIST)
        reg.push_image("shop/tool", "1", platform="linux/arm64")  # a single manifest of another architecture
        emulator.create_many([
            node("amd-1", "amd64"), node("arm-1", "arm64"),
            make_pod("web-on-amd", "shop", web, nodeName="amd-1"), make_pod("web-on-arm", "shop", web, nodeName="arm-1"),
            make_pod("api-on-arm", "shop", api, nodeName="arm-1"), make_pod("tool-on-amd", "shop", tool, nodeName="amd-1"),
            scaled_to_zero("batch", web),  # no constraint: every platform of the cluster
            scaled_to_zero("pinned", web, nodeSelector={"kubernetes.io/arch": "amd64"}),
            scaled_to_zero("arm-affine", api, affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}]}}}),
        ])
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--insecure-registry", reg.host,
                   "--interval", "1s") as serve:
            serve.wait(lambda: len(lacking(serve)[0]) == 3, "three references lacking a platform")
            assert lacking(serve) == (
                {"web-on-arm": "platform_missing", "tool-on-amd": "platform_missing", "batch": "platform_missing"},
                {(web, "linux/arm64"), (tool, "linux/amd64")})
            statuses = {labels["image"]: labels["status"] for labels, _ in serve.samples("kube_image_status")}
            assert statuses == {web: "available", api: "available", tool: "available"}  # the registry has them
            report = json.loads(serve.get("/report")[1])
            assert report["registry_status"] == {web: "platform_missing", api: "available", tool: "platform_missing"}
            page = Text(serve.get("/")[1].encode()).text
            assert "platform_missing (linux/arm64)" in page and "platform_missing (linux/amd64)" in page

            emulator.delete("Node", None, "arm-1")  # no arm64 node left: nothing here pulls arm64
            serve.wait(lambda: lacking(serve) == ({"tool-on-amd": "platform_missing"}, {(tool, "linux/amd64")}),
                       "the arm64 verdicts gone with the node")
            emulator.create(node("arm-2", "arm64"))  # a new arm64 node: the template may be scheduled there again
            serve.wait(lambda: lacking(serve)[0] == {"tool-on-amd": "platform_missing", "batch": "platform_missing"},
                       "the template's verdict back with the new node")
            assert serve.get("/readyz")[0] == 200
    finally:
        reg.stop()
