"""A pull secret of a garbage shape in a real `serve`: that secret is `kube_image_pull_secret_unusable`
(reason `invalid`) and named in one log line without its content; the cluster's inventory goes on."""

import base64
import json

from tests.conftest import make_pod
from tests.support.serve_process import Serve

IMAGE = "127.0.0.1:9/shop/web:1"  # a closed port: unreachable at once, without leaving the machine


def test_a_garbage_pull_secret_costs_itself_not_the_inventory(emulator, kubeconfig):
    config = base64.b64encode(json.dumps(["s3cr3t"]).encode()).decode()  # JSON, not a docker config
    emulator.create({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"namespace": "shop", "name": "listed"}, "data": {".dockerconfigjson": config}})
    emulator.create({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"namespace": "shop", "name": "number"}, "data": {".dockerconfigjson": 42}})
    emulator.create(make_pod("web", "shop", IMAGE, imagePullSecrets=[{"name": "listed"}, {"name": "number"}]))
    emulator.create(make_pod("api", "shop", IMAGE))
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one") as serve:
        serve.wait(lambda: serve.workloads() == {"web", "api"}, "inventory")
        for name in ("listed", "number"):
            assert serve.value("kube_image_pull_secret_unusable", secret=name) == 1, name
            assert serve.samples("kube_image_pull_secret_unusable")[0][0]["reason"] == "invalid"
        assert serve.value("kube_image_inventory_errors_total", cluster="one") == 0
        emulator.create(make_pod("late", "shop", IMAGE, imagePullSecrets=[{"name": "number"}]))
        serve.wait(lambda: "late" in serve.workloads(), "a later pod in the inventory")
        log = serve.log()
        assert "secret shop/listed" in log and "secret shop/number" in log and "s3cr3t" not in log
        assert "inventory failed" not in log and serve.get("/readyz")[0] == 200
