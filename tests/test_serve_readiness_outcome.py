"""/readyz of a real `serve` follows the last outcome of each list/watch: once watches are accepted again, it is
ready, even for kinds without a single object, whose watches stay silent (no bookmarks here)."""

import pytest

from tests.support.serve_process import Serve

IMAGE = "127.0.0.1:9/shop/web:1"


@pytest.mark.long
def test_ready_again_once_watches_are_accepted_though_no_event_comes(emulator, kubeconfig):
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--watch-down-threshold", "1s") as serve:
        serve.wait(lambda: serve.get("/readyz")[0] == 200, "ready")
        emulator.watch_error = 500  # lists work, watches fail
        emulator.drop_watches()
        serve.wait(lambda: "list/watch failing for" in serve.get("/readyz")[1], "not ready while watches fail")
        assert serve.get("/readyz")[0] == 503
        emulator.watch_error = None
        serve.wait(lambda: serve.get("/readyz")[0] == 200, "ready again", timeout=20)
        serve.wait(lambda: {v for _, v in serve.samples("kube_image_watch_up")} == {1.0}, "every watch up")
        assert serve.value("kube_image_watch_objects", kind="Deployment") == 0
