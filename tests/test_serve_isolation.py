"""Nothing slow or dead outside holds up the rest: an unreachable cluster beside one that answers, expected-list
servers that take their time, a check round longer than the stale limit that keeps making progress, and one
that hangs.

Real components: `serve` as a process, the API emulator, list servers and a registry over HTTP on loopback.
"""

import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from exporter.model.records import Status
from exporter.serve.endpoints import Published
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import RegistrySettings, from_options
from tests.conftest import make_pod
from tests.support import eventually, free_port, http_get

WEB = "127.0.0.1:9/shop/web:1"  # a closed port: every check is `unreachable`, without leaving the machine


def sample(text, family, **labels):
    for line in text.splitlines():
        if line.startswith(family) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class Server:
    """A threaded HTTP server on loopback answering with `handle(request) -> (status, headers, body)`."""

    def __init__(self, handle) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                status, headers, body = handle(self)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- one cluster unreachable from the start --


@pytest.mark.long
def test_an_unreachable_cluster_leaves_the_others_served_at_the_normal_interval(emulator, tmp_path):
    emulator.create(make_pod("web", "shop", WEB))
    config = emulator.kubeconfig({"one": "default"})
    config["clusters"].append({"name": "gone", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}})
    config["contexts"].append({"name": "dead", "context": {"cluster": "gone", "user": "emu"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    listen = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                             "--context", "one", "--context", "dead", "--listen", listen, "--interval", "4s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert eventually(lambda: http_get(f"http://{listen}/readyz")[0] == 200, 20), http_get(f"http://{listen}/readyz")
        text = http_get(f"http://{listen}/metrics")[1]
        assert sample(text, "kube_image_watch_up", cluster="one", kind="Pod") == 1
        assert sample(text, "kube_image_watch_up", cluster="dead", kind="Pod") == 0
        assert sample(text, "kube_image_unknown_unit", cluster="one", workload="web") == 1  # the live one is served
        status, page = http_get(f"http://{listen}/")
        assert status == 200 and re.search(r"dead.{0,200}down", page, re.S)

        # cycles every 4 s, not every second: over 9 s, at most 3 cycles (each publishes once or twice)
        stamps = set()
        deadline = time.monotonic() + 9
        while time.monotonic() < deadline:
            stamps.add(sample(http_get(f"http://{listen}/metrics")[1], "kube_image_last_cycle_timestamp_seconds"))
            time.sleep(0.2)
        assert 1 <= len(stamps) <= 6, sorted(stamps)
        assert http_get(f"http://{listen}/readyz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = proc.communicate()[1].decode()
    assert "Traceback" not in log


def test_readyz_fails_only_when_no_cluster_can_be_served(emulator, tmp_path):
    config = emulator.kubeconfig({"one": "default"})
    config["clusters"].append({"name": "gone", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}})
    config["contexts"] = [{"name": name, "context": {"cluster": "gone", "user": "emu"}} for name in ("a", "b")]
    config["current-context"] = "a"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["a", "b"]), Checker(RegistrySettings(timeout=2)), published,
                        interval=0.2, watch_timeout=2).start()
    try:
        assert eventually(lambda: published.not_ready_reason.startswith("no cluster can be served: a not listed yet"))
        assert not published.ready
    finally:
        exporter.stop()


# -- slow expected-list servers --


@pytest.fixture
def list_servers():
    release = threading.Event()
    asked = []

    def handle(request):
        asked.append(request.path)
        release.wait(30)  # a list server that takes its time (until the test lets it answer)
        number = request.path.strip("/").removesuffix(".txt").removeprefix("l")
        return 200, {"Content-Type": "text/plain"}, f"127.0.0.1:9/shop/listed{number}:1\n".encode()

    servers = [Server(handle) for _ in range(4)]
    yield servers, release, asked
    release.set()
    for server in servers:
        server.close()


def test_slow_list_servers_delay_only_their_lists(emulator, kubeconfig, list_servers):
    servers, release, asked = list_servers
    emulator.create(make_pod("web", "shop", WEB))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["one"]), Checker(RegistrySettings(timeout=2)), published,
                        expected=[f"{server.url}/l{n}.txt" for n, server in enumerate(servers)],
                        interval=0.2, watch_timeout=2).start()
    try:
        assert eventually(lambda: len(asked) == 4)  # all four asked at once, none answering yet
        assert eventually(lambda: published.readiness() == "")
        cycles = exporter.cycles
        assert eventually(lambda: exporter.cycles >= cycles + 3)  # cycles go on while the lists are read
        text = published.metrics.body.decode()
        for n in range(4):
            assert sample(text, "kube_image_expected_list_up", list=f"l{n}") == 0
            assert sample(text, "kube_image_expected_list_images", list=f"l{n}") is None  # loading, not empty
            assert sample(text, "kube_image_expected_list_load_errors_total", list=f"l{n}") == 0
        assert sample(text, "kube_image_unexpected") is None  # not known before every list is read
        assert "loading (first reading under way)" in published.page.get().body.decode()

        release.set()
        assert eventually(lambda: all(sample(published.metrics.body.decode(), "kube_image_expected_list_images",
                                             list=f"l{n}") == 1 for n in range(4)))
        text = published.metrics.body.decode()
        assert all(sample(text, "kube_image_expected_list_up", list=f"l{n}") == 1 for n in range(4))
        assert sample(text, "kube_image_expected_not_running", list="l2", image="127.0.0.1:9/shop/listed2:1") == 1
        assert sample(text, "kube_image_unexpected", workload="web") == 1
    finally:
        exporter.stop()


def test_the_loader_survives_a_bug_and_counts_it(emulator, kubeconfig, tmp_path, caplog):
    path = tmp_path / "l.txt"
    path.write_text(WEB + "\n")
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["one"]), Checker(RegistrySettings(timeout=2)), published,
                        expected=[str(path)], interval=0.2, watch_timeout=2)
    real = exporter.loader._round
    broken = threading.Event()

    def round_():
        if not broken.is_set():
            broken.set()
            raise RuntimeError("a bug in the loader, http://user:hunter2@lists.example/l.txt")
        return real()

    exporter.loader._round = round_
    exporter.start()
    try:
        assert eventually(lambda: sample(published.metrics.body.decode(), "kube_image_expected_list_up", list="l") == 1)
        assert exporter.health.failures == 1
        assert sample(published.metrics.body.decode(), "kube_image_cycle_failures_total") == 1
        assert eventually(lambda: published.readiness() == "")
    finally:
        exporter.stop()
    errors = [r.getMessage() for r in caplog.records if r.name.endswith("loader") and r.levelname == "ERROR"]
    assert len(errors) == 1 and "RuntimeError: a bug in the loader" in errors[0]
    assert "hunter2" not in errors[0]


# -- a long check round that progresses, and one that hangs --


@pytest.fixture
def slow_registry():
    """Answers each manifest HEAD after 0.3 s, or not at all while `gate` is clear."""
    gate = threading.Event()
    gate.set()
    heads = []

    def handle(request):
        if request.command == "HEAD":
            heads.append(request.path)
            gate.wait(60)
            time.sleep(0.3)  # the registry's own pace
            return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                         "Docker-Content-Digest": "sha256:" + "a" * 64}, b""
        return 200, {}, b"{}"  # /v2/

    server = Server(handle)
    yield server, gate, heads
    gate.set()
    server.close()


@pytest.mark.long
def test_a_check_round_longer_than_the_stale_limit_stays_ready_while_it_progresses(emulator, kubeconfig, slow_registry):
    server, gate, heads = slow_registry
    host = server.url.removeprefix("http://")
    images = 10  # one at a time, 0.3 s each: a round of 3 s, three times the stale limit
    emulator.create_many([make_pod(f"p{n}", "shop", f"{host}/shop/app{n}:1") for n in range(images)])
    settings = replace(from_options(insecure=[host], concurrency=1), timeout=60,
                       ttl={status: 0.1 for status in Status})  # every cycle checks every image again
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig, ["one"]), Checker(settings), published, interval=0.2,
                        watch_timeout=2, cycle_stale_after=1.0).start()
    try:
        assert eventually(lambda: published.readiness() == "", 30)
        start = len(heads)
        reasons = set()
        while len(heads) < start + 2 * images:  # two whole rounds, each longer than the stale limit
            reasons.add(published.readiness())
            time.sleep(0.05)
        assert reasons == {""}

        gate.clear()  # the registry stops answering: the round hangs
        assert eventually(lambda: "(still running); now checking images" in published.readiness(), 15)
        assert "last progress" in published.readiness()
        gate.set()
        assert eventually(lambda: published.readiness() == "", 15)  # it goes on once the registry answers
    finally:
        gate.set()
        exporter.stop()
