"""The last copy of an image on a node, through a real `serve`: a real registry that deleted an image a pod runs,
the emulator's Nodes reporting what their kubelets hold; the node holding it is named in `kube_image_node_only`
and on the page, and a node removed mid-run takes its series with it at the next cycle."""

import time

import pytest

from tests.conftest import make_pod
from tests.support import eventually
from tests.support import registry as real
from tests.support.browser import Text
from tests.support.serve_process import Serve

pytestmark = pytest.mark.skipif(not real.available(), reason="needs docker-registry (scripts/setup installs it)")


def node(name, *images):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/arch": "amd64"}},
            "status": {"images": [{"names": [image], "sizeBytes": 1000} for image in images]}}


def test_the_node_holding_the_last_copy_is_named_until_it_is_gone(emulator, kubeconfig, tmp_path):
    reg = real.Registry(tmp_path, "none")
    try:
        web, api = f"{reg.host}/shop/web:1", f"{reg.host}/shop/api:1"
        reg.delete("shop/web", reg.push_image("shop/web", "1"))  # gone from the registry, still on node-1
        reg.push_image("shop/api", "1")
        emulator.create_many([make_pod("web", "shop", web), make_pod("api", "shop", api),
                              node("node-1", web, api), node("node-2", api)])
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--insecure-registry", reg.host) as serve:
            serve.wait(lambda: serve.samples("kube_image_node_only"), "the last copy found")
            assert [labels for labels, _ in serve.samples("kube_image_node_only")] == [
                {"cluster": "one", "node": "node-1", "image": web}]  # not api (in the registry), not node-2
            page = Text(serve.get("/")[1].encode()).text
            assert "1 node holding a last copy" in page and "Do not drain" in page and "node-1" in page
            assert serve.get("/readyz")[0] == 200
            emulator.delete("Node", None, "node-1")  # drained and removed: the copy is gone with it
            serve.wait(lambda: serve.samples("kube_image_node_only") == [], "the removed node's series gone")
            assert serve.value("kube_image_watch_up", cluster="one", kind="Node") == 1
    finally:
        reg.stop()


def test_an_exporter_not_allowed_to_list_nodes_still_does_its_job_and_says_so(emulator, kubeconfig):
    """Older RBAC without nodes: the Node watch is down (visible), never the exporter's readiness."""
    emulator.forbidden.add(("nodes", None))
    emulator.create(make_pod("web", "shop", "127.0.0.1:9/shop/web:1"))
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--watch-down-threshold", "1s") as serve:
        serve.wait(lambda: serve.value("kube_image_watch_up", cluster="one", kind="Node") == 0, "the Node watch down")
        serve.wait(lambda: serve.workloads() == {"web"}, "the inventory")
        serve.wait(lambda: serve.get("/readyz")[0] == 200, "ready")
        past = time.monotonic() + 2  # the Node watch failing past the 1 s threshold: readiness stays
        assert eventually(lambda: serve.get("/readyz")[0] == 200 and time.monotonic() > past, timeout=10)
        assert serve.get("/readyz")[0] == 200 and serve.samples("kube_image_node_only") == []
        said = [line for line in serve.log().splitlines() if "nodes" in line and "WARNING" in line]
        assert len(said) == 1 and "not granted: left out" in said[0], said  # said once, not every 30 s
