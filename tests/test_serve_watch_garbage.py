"""Garbage on the Pod watch of a real `serve`: each kind is counted in `kube_image_watch_errors_total`, and the
next real change (a new pod) is in the inventory at the next cycle; the watch stays up and the exporter ready."""

import pytest

from tests.conftest import make_pod
from tests.support.serve_process import Serve

GARBAGE = [
    b"{this is not json",
    b'["ADDED", {"metadata": {}}]',  # JSON, not an object
    b'{"type": "ADDED"}',  # no object
    b'{"type": "MODIFIED", "object": "x"}',
    b'{"type": "ADDED", "object": [1, 2]}',
    b'{"type": "UPSERTED", "object": {"metadata": {"uid": "u1", "name": "n"}}}',  # an unknown type
]
IMAGE = "127.0.0.1:9/shop/web:1"  # a closed port: unreachable at once, without leaving the machine


@pytest.mark.long
def test_garbage_on_a_watch_is_counted_and_the_next_pod_still_shows(emulator, kubeconfig):
    emulator.create(make_pod("pod-0", "shop", IMAGE))
    with Serve("--kubeconfig", str(kubeconfig), "--context", "one") as serve:
        serve.wait(lambda: serve.workloads() == {"pod-0"}, "first inventory")
        for number, line in enumerate(GARBAGE, start=1):
            errors = serve.value("kube_image_watch_errors_total", kind="Pod")
            serve.wait(lambda: emulator.watching["pods"] == 1, "the Pod watch open")
            assert emulator.inject("pods", line) == 1
            serve.wait(lambda: serve.value("kube_image_watch_errors_total", kind="Pod") > errors,
                       f"error counted for {line!r}")
            emulator.create(make_pod(f"pod-{number}", "shop", IMAGE))
            serve.wait(lambda: f"pod-{number}" in serve.workloads(), f"pod-{number} in the inventory")
        serve.wait(lambda: serve.value("kube_image_watch_up", kind="Pod") == 1, "the Pod watch up")
        assert serve.value("kube_image_watch_errors_total", kind="Pod") == len(GARBAGE)
        assert serve.get("/readyz")[0] == 200
        log = serve.log()
        assert "Traceback" not in log and "one: watch pods: a line of the stream is not JSON; retrying in" in log
