"""The HTTP server against clients that misbehave: idle connections, slow senders, HEAD, bad requests,
and running out of file descriptors. Real sockets on 127.0.0.1; no timed assertions (speed is in
scripts/bench.py): each test waits for an outcome, with a generous cap."""

import http.client
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from exporter.serve.endpoints import IDLE_TIMEOUT, LazyPage, Page, Published, Server, State, connection_cap, text
from tests.support import eventually, stop_process

ROOT = Path(__file__).resolve().parent.parent
BODY = b"kube_image_build_info 1\n" * 100


def serve(**options):
    published = Published(metrics=Page.of(BODY, "text/plain; version=0.0.4"), ready=True)
    return Server(published, "127.0.0.1", 0, **options).start()


@pytest.fixture
def server():
    started = []

    def start(**options):
        started.append(serve(**options))
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


def test_http_1_0_and_connection_close_requests_are_answered_then_closed(server):
    """A client that asks the connection closed (HTTP/1.0 without keep-alive, or `Connection: close`) gets its
    whole answer, says so in the answer's head, and sees the server close; HTTP/1.1 otherwise keeps it open."""
    port = server(idle_timeout=30).port
    for request in (b"GET /metrics HTTP/1.0\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            answer = b""
            sock.settimeout(10)
            while chunk := sock.recv(65536):  # ends only when the server closes
                answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close" in head
            assert body == BODY
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection" not in head
        assert not closed_by_server(sock, cap=0.5)


def test_a_new_connection_that_sends_nothing_is_closed(server):
    port = server(header_timeout=0.5).port
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert closed_by_server(sock)


@pytest.mark.long
def test_out_of_file_descriptors_the_server_sheds_idle_connections_and_answers():
    """Against a 64-file limit, 100 idle connections: accept() fails with EMFILE, the server closes the
    longest idle ones (their header deadline is an hour here, so only shedding can free room) and answers."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.endpoint_server", "--nofile", "64",
                             "--header-timeout", "3600", "--series", "10",
                             "--max-connections", "1000"],  # no cap below the limit: accept() itself runs out
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


# -- pipelining --


def numbered(count):
    """A server whose path /N answers "N\n", so answers can be matched to their requests; /lazy answers "lazy\n"
    from a page built in the worker thread each time (an answer that finishes in a callback)."""
    routes = {f"/{i}": (lambda i: lambda published: text(200, f"{i}\n"))(i) for i in range(count)}
    routes["/lazy"] = lambda published: (200, LazyPage(lambda: (b"lazy\n", "text/plain")), ())
    return Server(Published(), "127.0.0.1", 0, routes=routes).start()


class Responses:
    """HTTP/1.1 responses read off a raw socket one after another: the answers of pipelined requests."""

    def __init__(self, sock, timeout=30.0):
        self.sock, self.data = sock, b""
        sock.settimeout(timeout)

    def next(self):
        """(status, body) of the next response; None once the server has closed the connection."""
        while True:
            head, found, rest = self.data.partition(b"\r\n\r\n")
            if found:
                lines = head.split(b"\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
                length = int(headers[b"content-length"])
                if len(rest) >= length:
                    self.data = rest[length:]
                    return int(lines[0].split()[1]), rest[:length]
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.data += chunk


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_two_thousand_pipelined_requests_get_their_answers_in_order():
    """Each answer used to call the next: about 246 pipelined requests reached the recursion limit (a 500, a
    closed connection). Now any number is answered in order on the one connection."""
    count = 2000
    s = numbered(count)
    try:
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sender = threading.Thread(target=sock.sendall, args=(b"".join(get(f"/{i}") for i in range(count)),))
            sender.start()  # all at once, read meanwhile: the answers may fill the socket buffers first
            responses = Responses(sock)
            got = [responses.next() for _ in range(count)]
            sender.join()
        assert got == [(200, f"{i}\n".encode()) for i in range(count)]
        assert scrape(s.port, path="/7")[2] == b"7\n"  # and the server goes on
    finally:
        s.stop()


def test_pipelined_answers_that_finish_in_a_callback_keep_their_order():
    """Every 10th request is a page built in the worker thread: its answer ends in a callback, which goes on
    with the requests buffered meanwhile."""
    paths = ["/lazy" if i % 10 == 5 else f"/{i}" for i in range(300)]
    s = numbered(300)
    try:
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(b"".join(get(p) for p in paths))
            responses = Responses(sock)
            assert [responses.next() for _ in paths] == [(200, f"{p[1:]}\n".encode()) for p in paths]
    finally:
        s.stop()


def test_pipelined_requests_are_answered_up_to_a_bad_one_then_the_connection_closes():
    s = numbered(3)
    try:
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(get("/0") + get("/lazy") + get("/1") + b"NOT HTTP AT ALL\r\n\r\n" + get("/2"))
            responses = Responses(sock)
            assert [responses.next() for _ in range(3)] == [(200, b"0\n"), (200, b"lazy\n"), (200, b"1\n")]
            assert responses.next() == (400, b"400 Bad Request\n")
            assert responses.next() is None  # what follows a request that cannot be read is not guessed at
        with socket.create_connection(("127.0.0.1", s.port)) as sock:
            sock.sendall(get("/0") + b"GET /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + get("/2"))
            responses = Responses(sock)
            assert responses.next() == (200, b"0\n")
            assert responses.next()[0] == 413 and responses.next() is None
    finally:
        s.stop()


# -- keep-alive --


class FakeClock:
    """The server's clock, moved by the test: deadlines pass without waiting for them."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_keep_alive_connection_idle_longer_than_a_scrape_interval_still_answers(server):
    """Idle 2 minutes (twice the 60 s the server used to wait, a common scrape interval) then asked again: the
    connection answers. Past `IDLE_TIMEOUT` (longer than the 5 minutes after which Prometheus closes its own
    idle connections), the server closes it."""
    clock = FakeClock()
    s = server(clock=clock)
    port = s.port

    def idle() -> bool:  # the answer is all sent before the server arms the idle deadline: move the clock after
        return all(c.state is State.IDLE for c in list(s.connections))

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok\n"
    first = conn.sock
    for seconds in (61.0, 120.0, IDLE_TIMEOUT - 1):
        assert eventually(idle)
        clock.now += seconds
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok\n")
        assert conn.sock is first and response.getheader("Connection") is None  # the same connection, kept
    assert IDLE_TIMEOUT >= 300 + 60
    assert eventually(idle)
    clock.now += IDLE_TIMEOUT + 1
    assert scrape(port)[0] == 200  # any I/O wakes the server's loop, which then sees the deadline passed
    assert closed_by_server(conn.sock)
    conn.close()


# -- the connection cap --


def keep_alive(port):
    """A connection that has been answered once and stays open, idle."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(get("/healthz"))
    assert Responses(sock).next() == (200, b"ok\n")
    return sock


def test_at_the_cap_the_least_recently_active_idle_connection_is_closed(server):
    s = server(max_connections=4)
    idle = [keep_alive(s.port) for _ in range(4)]
    try:
        idle[0].sendall(get("/healthz"))  # the oldest is used again: the second one is now the least recent
        assert Responses(idle[0]).next() == (200, b"ok\n")
        assert scrape(s.port)[0] == 200  # a fifth connection: one idle connection makes room
        assert closed_by_server(idle[1])
        for sock in (idle[0], idle[2], idle[3]):
            sock.sendall(get("/healthz"))
            assert Responses(sock).next() == (200, b"ok\n")
        assert (s.evicted, s.refused) == (1, 0) and len(s.connections) <= 4
    finally:
        for sock in idle:
            sock.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused(server):
    s = server(max_connections=2)
    busy = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
    try:
        for sock in busy:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # requests under way: not to be dropped for a newcomer
        assert eventually(lambda: all(not c.waiting for c in list(s.connections)) and len(s.connections) == 2)
        with socket.create_connection(("127.0.0.1", s.port)) as refused:
            assert closed_by_server(refused)
        assert s.refused == 1
        for sock in busy:
            sock.sendall(b"Host: x\r\n\r\n")
            assert Responses(sock).next()[0] == 200
    finally:
        for sock in busy:
            sock.close()


def test_the_cap_keeps_half_the_open_file_limit_and_at_least_64_descriptors_for_the_exporter():
    assert connection_cap(256) == 128
    assert connection_cap(1024) == 512
    assert connection_cap(100) == 36
    assert connection_cap(64) == 16  # a floor: some clients are served under any limit
