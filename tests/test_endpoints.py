"""Endpoints serve what the cycle published, over real HTTP on 127.0.0.1."""

import gzip
import socket
import urllib.error
import urllib.request

import pytest

from exporter.serve.endpoints import LazyPage, Page, Published, Server
from exporter.views.exposition import MetricsPage


@pytest.fixture
def served():
    published = Published()
    server = Server(published, "127.0.0.1", 0).start()
    yield published, f"http://127.0.0.1:{server.port}"
    server.stop()


def get(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_metrics_serve_the_latest_published_page(served):
    published, base = served
    published.metrics = Page.of(b"kube_image_build_info 1\n", "text/plain; version=0.0.4")
    status, headers, body = get(base + "/metrics")
    assert (status, body) == (200, b"kube_image_build_info 1\n")
    published.metrics = Page.of(b"kube_image_build_info 2\n", "text/plain; version=0.0.4")
    assert get(base + "/metrics")[2] == b"kube_image_build_info 2\n"


def test_gzip_when_the_scraper_accepts_it(served):
    published, base = served
    published.metrics = Page.of(b"x 1\n" * 1000, "text/plain")
    status, headers, body = get(base + "/metrics", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"x 1\n" * 1000


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_a_scrape_makes_the_self_metrics_once(served, encoding):
    """A MetricsPage makes its self-metrics at each read of `body` or `gzipped`: an answer reads one of them once
    (it read `gzipped` three times, tripling a scrape's cost under load)."""
    published, base = served
    made = []
    published.metrics = MetricsPage(b"x 1\n" * 1000, fresh=lambda: made.append(1) or b"process_open_fds 7\n")
    status, headers, body = get(base + "/metrics", {"Accept-Encoding": encoding})
    text = gzip.decompress(body) if encoding == "gzip" else body
    assert (status, text.endswith(b"process_open_fds 7\n"), headers["Vary"]) == (200, True, "Accept-Encoding")
    assert ("Content-Encoding" in headers, len(made)) == (encoding == "gzip", 1)


def test_scrapes_answered_in_one_wake_up_share_one_reading_of_the_self_metrics(served):
    """Two scrapes pipelined in one packet are answered in one wake-up of the loop: one reading of the
    self-metrics serves both; a scrape after that makes them anew."""
    published, base = served
    reads = iter(range(1, 100))
    published.metrics = MetricsPage(b"x 1\n", fresh=lambda: f"process_open_fds {next(reads)}\n".encode())
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * 2)
        answers = b""
        while answers.count(b"process_open_fds") < 2 and (chunk := sock.recv(65536)):
            answers += chunk
    assert answers.count(b"process_open_fds 1\n") == 2
    assert get(base + "/metrics")[2].endswith(b"process_open_fds 2\n")


def test_readyz_says_why_until_ready_and_healthz_is_always_ok(served):
    published, base = served
    status, _, body = get(base + "/readyz")
    assert status == 503 and b"first inventory" in body
    assert get(base + "/healthz")[0] == 200
    published.ready = True
    assert get(base + "/readyz")[0] == 200


def test_unknown_path_is_404(served):
    assert get(served[1] + "/nope")[0] == 404


def test_report_is_built_on_first_request_only_once(served):
    published, base = served
    builds = []

    def build():
        builds.append(1)
        return b'{"images": []}', "application/json"

    published.report = LazyPage(build)
    assert builds == []  # nothing built until asked
    for _ in range(3):
        status, headers, body = get(base + "/report")
        assert (status, body, headers["Content-Type"]) == (200, b'{"images": []}', "application/json")
    status, headers, body = get(base + "/report", {"Accept-Encoding": "gzip"})
    assert gzip.decompress(body) == b'{"images": []}'
    assert builds == [1]
