"""The HTTP server against clients that misbehave: idle connections, slow senders, HEAD, bad requests,
and running out of file descriptors. Real sockets on 127.0.0.1; no timed assertions (speed is in
scripts/bench.py): each test waits for an outcome, with a generous cap."""

import http.client
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.serve.endpoints import Page, Published, Server
from tests.support import stop_process

ROOT = Path(__file__).resolve().parent.parent
BODY = b"kube_image_build_info 1\n" * 100


def serve(**timeouts):
    published = Published(metrics=Page.of(BODY, "text/plain; version=0.0.4"), ready=True)
    return Server(published, "127.0.0.1", 0, **timeouts).start()


@pytest.fixture
def server():
    started = []

    def start(**timeouts):
        started.append(serve(**timeouts))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def scrape(port, method="GET", path="/metrics", timeout=10, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def closed_by_server(sock, cap=10.0) -> bool:
    """Whether the server closes `sock` (EOF or reset) before `cap` seconds, reading anything it sends."""
    sock.settimeout(cap)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_do_not_block_a_scrape(server):
    port = server().port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
    try:
        for sock in idle[::50]:
            sock.sendall(b"GET /met")  # some have started a request and stopped
        assert scrape(port)[0] == 200
    finally:
        for sock in idle:
            sock.close()


def test_head_is_answered_like_get_without_a_body(server):
    port = server().port
    status, headers, body = scrape(port, "GET")
    head_status, head_headers, head_body = scrape(port, "HEAD")
    assert (head_status, head_body) == (200, b"")
    assert head_headers["Content-Length"] == headers["Content-Length"] == str(len(BODY))
    assert head_headers["Content-Type"] == headers["Content-Type"]
    assert scrape(port, "HEAD", "/readyz")[:1] == (200,)


def test_other_methods_and_bodies_are_refused(server):
    port = server().port
    assert scrape(port, "DELETE")[0] == 405
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", body=b"x" * 100)
    assert conn.getresponse().status == 413
    conn.close()


def test_a_malformed_request_gets_400_and_an_oversized_head_431(server):
    port = server().port
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 Bad Request")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 431")


def test_slowloris_is_dropped_before_its_request_is_complete(server):
    port = server(header_timeout=0.5).port
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sent = b""
        request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 200 + b"\r\n"
        sock.settimeout(0.05)
        dropped = False
        for byte in request:  # a byte every 50 ms: 2,500 lines would take minutes
            try:
                sock.sendall(bytes([byte]))
                sent += bytes([byte])
                if sock.recv(4096) == b"":
                    dropped = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
        assert dropped and len(sent) < len(request)


def test_keep_alive_connections_are_reused_then_closed_when_idle(server):
    port = server(idle_timeout=0.5).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(3):  # one connection, three answers
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() == b"ok\n"
    assert closed_by_server(conn.sock)
    conn.close()


def test_a_new_connection_that_sends_nothing_is_closed(server):
    port = server(header_timeout=0.5).port
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert closed_by_server(sock)


def test_out_of_file_descriptors_the_server_sheds_idle_connections_and_answers():
    """Against a 64-file limit, 100 idle connections: accept() fails with EMFILE, the server closes the
    longest idle ones (their header deadline is an hour here, so only shedding can free room) and answers."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.endpoint_server", "--nofile", "64",
                             "--header-timeout", "3600", "--series", "10"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    idle = []
    try:
        port = int(proc.stdout.readline())
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        status, _, body = scrape(port, timeout=60)
        assert status == 200 and body.startswith(b"# HELP")
        assert sum(closed_by_server(sock, cap=0.01) for sock in idle) > 0
    finally:
        for sock in idle:
            sock.close()
        stop_process(proc)
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert "out of file descriptors" in stderr


def test_readyz_reasons_are_redacted(server):
    s = server()
    s.published.ready, s.published.not_ready_reason = False, "list failing: GET https://u:pw@api/x?token=abc"
    status, _, body = scrape(s.port, "GET", "/readyz")
    assert status == 503 and body == b"not ready: list failing: GET https://api/x?token=REDACTED\n"


def test_a_failing_handler_gets_500_and_the_server_goes_on():
    def broken(published):
        raise RuntimeError("bug")

    s = Server(Published(), "127.0.0.1", 0, routes={"/broken": broken, "/healthz": lambda p: (200, Page(b"ok\n", "text/plain"), ())}).start()
    try:
        assert scrape(s.port, path="/broken")[0] == 500
        assert scrape(s.port, path="/healthz")[2] == b"ok\n"
    finally:
        s.stop()


def test_a_large_page_arrives_whole_in_chunks(server):
    s = server()
    big = bytes(range(256)) * 20_000  # 5 MB, many write chunks
    s.published.metrics = Page(big, "application/octet-stream")
    status, headers, body = scrape(s.port)
    assert status == 200 and body == big
