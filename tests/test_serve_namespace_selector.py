"""`serve --namespace-selector`: a namespace relabelled out of the selector drops its pods from the inventory at
the next cycle, and relabelled back in brings them back (the Namespace watch sees DELETED, then ADDED, as an
apiserver sends them to a watch with a label selector)."""

from tests.conftest import make_pod
from tests.support.serve_process import Serve

IMAGE = "127.0.0.1:9/shop/web:1"  # a closed port: unreachable at once, without leaving the machine


def relabel(emulator, name, **labels):
    namespace = dict(emulator.get("Namespace", None, name))
    emulator.update({**namespace, "metadata": {**namespace["metadata"], "labels": labels}})


def test_a_namespace_relabelled_out_of_the_selector_drops_its_pods_and_back(emulator, kubeconfig):
    for name in ("shop", "tools"):
        emulator.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": "a"}}})
    emulator.create(make_pod("web", "shop", IMAGE))
    emulator.create(make_pod("debug", "tools", IMAGE))
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--namespace-selector", "team=a") as serve:
        serve.wait(lambda: serve.workloads() == {"web", "debug"}, "both namespaces selected")
        relabel(emulator, "shop", team="b")
        serve.wait(lambda: serve.workloads() == {"debug"}, "shop relabelled out")
        relabel(emulator, "shop", team="a", extra="yes")
        serve.wait(lambda: serve.workloads() == {"web", "debug"}, "shop relabelled back in")
        assert serve.value("kube_image_watch_errors_total", kind="Namespace") == 0
        assert serve.value("kube_image_watch_objects", kind="Namespace") == 2
