"""The exporter's HTTP endpoints: /metrics, /report, /healthz, /readyz — and the server that answers them.

Why this server and not a kept one (hypercorn 0.18, uvicorn 0.55): measured in one run of
`scripts/bench_servers.py --repeats 5` (2 cores shared with other work, load about 2), each candidate its own
process answering the same `Published` through the same route table, self-metrics shared per wake-up alike.
- Latency, 200 concurrent scrapes of a 50,000-pod /metrics (1.4 MB, gzip), `ab -c 200`, 1,000 scrapes, medians of
  5 repeats (2026-12-04, load 0.9): this server p50 53 ms, p99 60 ms; uvicorn 67 ms, 87 ms; hypercorn 113 ms,
  146 ms. Server CPU per scrape (`--only cpu`: `ab -c 20`, read from /proc, medians of 3): this server 0.26 ms user
  + 0.08 ms system, uvicorn 0.37 + 0.12: its answers go through h11's writer (a tenth of the CPU in header
  validation and state events).
- The contract, each point checked against each (deadlines scaled down: head 2 s, idle 20 s, write 2 s):
  head deadline: uvicorn has none (its keep-alive timeout is armed only after an answer), so a silent connection
  or a head trickled a line at a time stays open; hypercorn has one deadline for a connection waiting for a head,
  before its first request and between requests alike (`keep_alive_timeout`): at the idle timeout a slowloris
  client is kept that long, at the head deadline every keep-alive connection is closed that soon, the race with
  Prometheus' reuse of idle connections that the 10-minute idle timeout below ended (`read_timeout` is per read,
  and the connection is closed only when the keep-alive task ends). Slow reader: neither has a write deadline; a
  client asking 20 pages pipelined and reading nothing kept its connection (all 29 MB written once it read). Head
  cap: both answered a 17 KiB head sent in one piece (h11's limit bounds only what waits incomplete); this server
  answers 431. Descriptors: under a 256-file limit with 300 idle keep-alive clients, both ran out (0 free) and
  the next scrape was not answered within 10 s (hypercorn with a 2 s keep-alive: in 2.1 s, still 0 free); this
  server answered at once with 121 free, closing the least recently active idle connection under its cap.
So both would need most of this module around them to keep the contract, for no gain in latency: kept as it is.

Handlers read one attribute of a `Published` holder — bytes rendered by the cycle — and copy them out.
They never take a lock held across I/O, never wait for a check or the Kubernetes API, so a scrape
answers in milliseconds even while a registry is timing out.

The server is an asyncio event loop in one thread. h11 (httpx's own HTTP/1.1 parser) reads the requests; an
answer is the server's own status line and headers followed by the page's bytes, written in one send when the page
fits in a chunk. Against clients that misbehave it keeps what production servers keep:
- a connection costs a file descriptor, not a thread: a thousand idle connections block nothing;
- the request head must arrive whole within `HEADER_TIMEOUT` of its first byte (of the connection, for
  the first request), so a slowloris client is dropped; a keep-alive connection idle for `IDLE_TIMEOUT`
  is closed; a client that does not read its answer within `WRITE_TIMEOUT` is dropped;
- pipelined requests are answered in order, in a loop: any number of them on one connection;
- heads are capped at 16 KiB (h11's limit) and request bodies are not read: a body gets 413;
- the listen backlog is 1,024 (the kernel caps it at `net.core.somaxconn`);
- client connections are capped at half the open-file limit (`connection_cap`), so scrapers never take the
  descriptors the exporter's own work needs; at the cap the least recently active idle connection is closed;
- when accept() fails for want of file descriptors anyway, the server stops accepting for a second instead of
  spinning on the error, and closes its longest idle connections to make room;
- the one handler that may work for long (the first /report after a cycle, built on demand) runs in a
  single worker thread, so it never holds up a scrape.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import gzip
import http
import logging
import math
import resource
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import h11

from exporter.common.redact import redact
from exporter.views.exposition import CONTENT_TYPE, MetricsPage
from exporter.views.page import HEADERS as PAGE_HEADERS

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 5.0  # from a request's first byte (or the connection) to its last header line
# A keep-alive connection waiting for its next request. Well above any scrape interval (Prometheus' default is
# 1 m, common ones reach 2 m), and above the 5 m after which Prometheus closes its own idle connections
# (prometheus/common config/http_config.go, `idleConnTimeout`): the scraper closes first, so a scrape never
# races the server's close on a reused connection (60 s, equal to a common interval, did). Idle connections
# cost a descriptor each, bounded by `connection_cap`.
IDLE_TIMEOUT = 600.0
WRITE_TIMEOUT = 30.0  # a client that reads its answer no faster than this is dropped
BACKLOG = 1024
MAX_HEAD = 16 * 1024
WRITE_CHUNK = 64 * 1024  # a slow reader holds at most about this much of a page in its buffer
RESERVE = 64  # descriptors never given to clients, whatever the limit: the exporter's own work needs them
MIN_CONNECTIONS = 16  # clients served even under a tiny open-file limit
UNLIMITED_CONNECTIONS = 1 << 20  # under no open-file limit at all
ACCEPT_BATCH = 16  # connections accepted per wake-up: the cap may be passed by this many while evicted ones close
ACCEPT_RETRY_DELAY = 1.0  # accept() out of descriptors: wait this long before trying again
FULL_LOG_INTERVAL = 60.0  # at most one warning a minute about connections closed at the cap


@dataclass(frozen=True, slots=True)
class Page:
    """One rendered body and its gzip form (compressed once per cycle, not per scrape)."""

    body: bytes
    content_type: str
    gzipped: bytes = b""

    @classmethod
    def of(cls, body: bytes, content_type: str) -> "Page":
        return cls(body, content_type, gzip.compress(body, compresslevel=5))


class LazyPage:
    """A page built on its first request, once: for a page rarely asked for and costly to build.

    The lock is held while the page is built from data already in memory (never across I/O), so a second
    request at the same moment waits for that build instead of repeating it.
    """

    def __init__(self, build: Callable[[], tuple[bytes, str]]) -> None:
        self._build: Callable[[], tuple[bytes, str]] | None = build
        self._page: Page | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._page is not None

    def get(self) -> Page:
        with self._lock:
            if self._page is None:
                self._page = Page.of(*self._build())
                self._build = None  # let go of what it was built from
            return self._page


@dataclass
class Published:
    """What the endpoints serve. The cycle replaces whole attributes; readers never see a half update."""

    metrics: Page = field(default_factory=lambda: Page.of(b"", CONTENT_TYPE))
    report: Page | LazyPage = field(default_factory=lambda: Page.of(b"{}", "application/json"))
    page: Page | LazyPage | None = None  # the status page at `/`; None: plain links (web UI off, or no cycle yet)
    ready: bool = False
    not_ready_reason: str = "first inventory and check round not done yet"
    stale: Callable[[], str] = lambda: ""  # why the cycle is overdue, asked at request time ("" when it is not)

    def readiness(self) -> str:
        """Why the exporter is not ready now, or "" when it is."""
        return self.stale() or ("" if self.ready else self.not_ready_reason)


# -- routes: a path to what answers it, from the published state alone --

Answer = tuple[int, Page | LazyPage, tuple[tuple[str, str], ...]]  # status, page, extra headers


def text(status: int, body: str) -> Answer:
    return status, Page(body.encode(), "text/plain; charset=utf-8"), ()


def _readyz(published: Published) -> Answer:
    reason = redact(published.readiness())  # reasons quote API errors, which may quote URLs
    return text(503, f"not ready: {reason}\n") if reason else text(200, "ready\n")


def _root(published: Published) -> Answer:
    """The status page, or the plain list of endpoints (web UI off, or before the first cycle)."""
    if published.page is not None:
        return 200, published.page, PAGE_HEADERS
    return text(200, "kube-image-exporter: /metrics /report /healthz /readyz\n")


ROUTES: dict[str, Callable[[Published], Answer]] = {
    "/metrics": lambda published: (200, published.metrics, ()),
    "/report": lambda published: (200, published.report, ()),
    "/healthz": lambda published: text(200, "ok\n"),
    "/readyz": _readyz,
    "/": _root,
}


# -- the server --


def connection_cap(nofile: int) -> int:
    """How many client connections the server holds under an open-file limit of `nofile`.

    Half the limit, and never the last `RESERVE` descriptors: the rest is the exporter's own (API watches,
    registry connections, the shared cache, files). Idle scrapers holding every descriptor would otherwise
    make the next registry check fail for want of a socket.
    """
    if nofile < 0 or nofile == resource.RLIM_INFINITY:
        return UNLIMITED_CONNECTIONS
    return max(MIN_CONNECTIONS, min(nofile // 2, nofile - RESERVE))


class Bodies:
    """The body of each answer: a Page's bytes, or a MetricsPage's made once per wake-up of the loop.

    A MetricsPage makes its self-metrics (and compresses them) at each read: 0.3-0.5 ms, more than the rest of a
    scrape. Scrapes answered in one wake-up of the loop, microseconds apart, share one reading: 200 scrapes arriving
    at once cost a few readings instead of 200 (p99 of 200 concurrent scrapes of a 50,000-pod page: 140 ms to 60 ms).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._made: dict[tuple[int, bool], tuple[MetricsPage, bytes]] = {}  # (id, gzip) -> (page, bytes)

    def of(self, page: "Page | MetricsPage", use_gzip: bool) -> bytes:
        if not isinstance(page, MetricsPage):
            return page.gzipped if use_gzip else page.body
        key = (id(page), use_gzip)
        made = self._made.get(key)
        if made is None or made[0] is not page:
            if not self._made:
                self._loop.call_soon(self._made.clear)  # once this wake-up's callbacks have run
            made = self._made[key] = (page, page.gzipped if use_gzip else page.body)
        return made[1]


class _Loop(asyncio.SelectorEventLoop):
    """The server's event loop, its timers on `clock`: a test moves a fake clock instead of sleeping."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self._clock = clock

    def time(self) -> float:
        return self._clock()


class Server:
    """The endpoints over HTTP/1.1 on HOST:PORT, served by an event loop in a daemon thread.

    `max_connections` defaults to `connection_cap` of this process's open-file limit; `clock` drives the
    deadlines (time.monotonic; tests pass a fake one).
    """

    def __init__(self, published: Published, host: str, port: int, routes=None,
                 header_timeout: float = HEADER_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT, max_connections: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.published = published
        self.routes = dict(ROUTES if routes is None else routes)
        self.header_timeout, self.idle_timeout, self.write_timeout = header_timeout, idle_timeout, write_timeout
        self.max_connections = max_connections or connection_cap(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=BACKLOG)  # binds now: errors here
        self._socket.setblocking(False)
        self._loop = _Loop(clock)
        self._builder: ThreadPoolExecutor | None = None  # the worker thread of slow pages, made on first use
        self.connections: OrderedDict[_Connection, None] = OrderedDict()  # least recently active first
        self._accepted = 0  # sockets accepted whose connection is not made yet
        self.evicted = self.refused = 0  # connections closed to stay under `max_connections`
        self._full_logged_at = -math.inf
        self.bodies = Bodies(self._loop)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._started = threading.Event()

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def start(self) -> "Server":
        self._thread.start()
        self._started.wait()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        elif not self._loop.is_closed():
            self._loop.close()  # never started
        self._socket.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.add_reader(self._socket.fileno(), self._accept)
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.remove_reader(self._socket.fileno())
            for connection in list(self.connections):
                connection.close(abort=True)
            self._loop.run_until_complete(asyncio.sleep(0))  # let the aborted transports close their sockets
            self._loop.close()
            if self._builder is not None:
                self._builder.shutdown(wait=False, cancel_futures=True)

    def _accept(self) -> None:
        """Take connections from the backlog, `ACCEPT_BATCH` at most per wake-up, making room under the cap
        before each (asyncio's own server accepts up to the backlog at once, past any cap)."""
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors()
                else:
                    log.warning("accepting a connection failed: %s", exc)
                return
            if not self._make_room():
                sock.close()  # every connection is busy: this one is refused before a byte is read
                continue
            self._accepted += 1
            self._loop.create_task(self._connect(sock))

    async def _connect(self, sock: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(lambda: _Connection(self), sock)
        except OSError as exc:  # the client was gone before its transport was made
            self._accepted -= 1
            sock.close()
            log.debug("a connection closed before it was served: %s", exc)

    def _out_of_descriptors(self) -> None:
        """accept() failed for want of descriptors (taken by the rest of the process): close the longest idle
        connections, and stop accepting for a second instead of spinning on the error (as asyncio does)."""
        self._shed_idle()
        fd = self._socket.fileno()
        self._loop.remove_reader(fd)
        self._loop.call_later(ACCEPT_RETRY_DELAY, self._loop.add_reader, fd, self._accept)

    # -- the connection table: at most `max_connections`, least recently active first --

    def _make_room(self) -> bool:
        """Whether one more connection fits under the cap, closing the least recently active connection
        that waits for a request (idle, or connected and silent) to make room; False when every one is busy."""
        if len(self.connections) + self._accepted < self.max_connections:
            return True
        oldest = next((c for c in self.connections if c.waiting), None)
        if oldest is not None:
            self.evicted += 1
            oldest.close(abort=True)
        else:
            self.refused += 1
        now = self._loop.time()
        if now - self._full_logged_at >= FULL_LOG_INTERVAL:
            self._full_logged_at = now
            log.warning("%d client connections, the most this server holds (the rest of the open-file limit is kept "
                        "for the exporter's own work): %d idle ones closed, %d new ones refused so far",
                        self.max_connections, self.evicted, self.refused)
        return oldest is not None

    def admit(self, connection: "_Connection") -> None:
        """A connection accepted by `_accept` is made: count it among the connections."""
        self._accepted -= 1
        self.connections[connection] = None

    def touch(self, connection: "_Connection") -> None:
        """`connection` has just been answered: it is now the most recently active."""
        if connection in self.connections:
            self.connections.move_to_end(connection)

    def forget(self, connection: "_Connection") -> None:
        self.connections.pop(connection, None)

    def _shed_idle(self) -> None:
        """Close the longest idle quarter of the connections (at least one) to free file descriptors.

        The cap keeps the server below the limit; this is for descriptors the rest of the process took.
        """
        idle = [c for c in self.connections if c.waiting]  # least recently active first
        shed = idle[:max(1, len(idle) // 4)]
        log.warning("out of file descriptors with %d connections open: closing the %d longest idle",
                    len(self.connections), len(shed))
        for connection in shed:
            connection.close(abort=True)

    # -- answers --

    def answer(self, request: h11.Request) -> tuple[str, str, int, Page | LazyPage, list[tuple[str, str]]]:
        """(method, path, status, page, extra headers) for a request, from the route table."""
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            status, page, _ = text(405, "only GET and HEAD\n")
            return method, path, status, page, [("Allow", "GET, HEAD")]
        route = self.routes.get(path)
        status, page, headers = route(self.published) if route else text(404, "not found\n")
        return method, path, status, page, list(headers)

    def build(self, page: LazyPage) -> asyncio.Future:
        """Build a lazy page in the worker thread (never on the loop, which keeps answering scrapes)."""
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-build")
        return self._loop.run_in_executor(self._builder, page.get)


class State(enum.Enum):
    """Where a connection is. Each state has its one deadline, armed on entering it (`_Connection._enter`)."""

    READING_HEAD = "reading a request head"  # header_timeout, from the connection or from the request's first byte
    ANSWERING = "answering"  # write_timeout; when the answer waits, reading pauses and pipelined requests wait
    IDLE = "idle"  # idle_timeout: keep-alive, nothing of the next request received yet
    CLOSING = "closing"  # no deadline: the transport is closed or closing


class _Connection(asyncio.Protocol):
    """One client connection: h11 parses, `state` says what the connection waits for.

        connection made -> READING_HEAD -> (a whole request) -> ANSWERING -> (answer written)
            -> READING_HEAD when a pipelined request is already buffered, IDLE otherwise
        IDLE -> (a byte) -> READING_HEAD;  any state -> (deadline, bad request, close, eviction) -> CLOSING

    `_pump` answers requests in a loop, as many as h11 holds: pipelined requests cost no stack. An answer that
    cannot be finished at once (a page built in the worker thread, a client reading slowly) returns to the
    loop from its callback (`_resume`).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.state = State.READING_HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._body: memoryview | None = None  # what is left to write of the current answer (None: no answer)
        self._close_after = False  # the current answer is the connection's last
        self._paused = False  # the transport's buffer is above its high-water mark

    @property
    def waiting(self) -> bool:
        """Holding a descriptor with no request under way: idle, or connected and silent. First to be closed
        when the server needs room."""
        return self.state is State.IDLE or (self.state is State.READING_HEAD and not self.conn.trailing_data[0])

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._enter(State.READING_HEAD)  # the head deadline of the first request runs from the connection
        self.server.admit(self)

    def data_received(self, data: bytes) -> None:
        if self.state is State.CLOSING:
            return
        if self.state is State.IDLE:
            self._enter(State.READING_HEAD)  # the first byte of a request after a keep-alive pause
        self.conn.receive_data(data)
        self._pump()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._pump()
        return True  # the transport is closed by us, once any answer in progress is written

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._write_body():
            self._resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter(State.CLOSING)
        self.server.forget(self)

    # -- states --

    def _enter(self, state: State) -> None:
        """Move to `state` and arm its deadline (none for CLOSING)."""
        self.state = state
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        seconds = {State.READING_HEAD: self.server.header_timeout, State.ANSWERING: self.server.write_timeout,
                   State.IDLE: self.server.idle_timeout}.get(state)
        if seconds is not None:
            self._timer = self.server._loop.call_later(seconds, self._expire)

    def _expire(self) -> None:
        log.debug("closing a connection %s for too long", self.state.value)
        self.close(abort=True)

    def close(self, abort: bool = False) -> None:
        """Enter CLOSING and close the transport: once what is written is sent, or at once (`abort`)."""
        self._enter(State.CLOSING)
        self.server.forget(self)
        if self.transport is not None:
            self.transport.abort() if abort else self.transport.close()

    # -- requests --

    def _pump(self) -> None:
        """Answer every whole request h11 holds, one after another, until one must wait or more bytes are needed."""
        while self.state in (State.READING_HEAD, State.IDLE):
            try:
                request = self._next_request()
                if request is None:
                    return
                self._answer(request)
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint)
            except Exception:  # noqa: BLE001 (a handler's bug costs this request, never the server)
                log.exception("answering a request failed")
                self._refuse(500)
        if self.state is State.ANSWERING and self.transport.is_reading():
            self.transport.pause_reading()  # one answer at a time: further requests wait in the socket

    def _resume(self) -> None:
        """Back to the requests after an answer finished in a callback."""
        if self.state is State.CLOSING:
            return
        if not self.transport.is_reading():
            self.transport.resume_reading()
        self._pump()

    def _next_request(self) -> h11.Request | None:
        """The next whole request h11 holds; None when it needs more bytes, or the client has closed."""
        buffered = len(self.conn.trailing_data[0])
        event = self.conn.next_event()
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, h11.Request) and buffered - len(self.conn.trailing_data[0]) > MAX_HEAD:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)  # came in one piece
        if isinstance(event, h11.ConnectionClosed):
            self.close()
            return None
        if not isinstance(event, h11.Request):
            raise h11.RemoteProtocolError("unexpected request data", error_status_hint=400)
        if _has_body(event):
            raise h11.RemoteProtocolError("request bodies are not accepted", error_status_hint=413)
        if not isinstance(self.conn.next_event(), h11.EndOfMessage):  # a request without a body ends here
            raise h11.RemoteProtocolError("unexpected request body", error_status_hint=400)
        return event

    def _answer(self, request: h11.Request) -> None:
        self._enter(State.ANSWERING)
        method, path, status, page, extra = self.server.answer(request)
        if isinstance(page, LazyPage) and not page.built:
            future = self.server.build(page)
            future.add_done_callback(lambda f: self._built(request, method, path, status, f, extra))
            return
        self._send(request, method, path, status, page, extra)

    def _built(self, request: h11.Request, method: str, path: str, status: int, future: asyncio.Future,
               extra) -> None:
        """A lazy page is built in the worker thread: send it, then go on with the requests."""
        if self.state is not State.ANSWERING:  # closed meanwhile: deadline, client gone, server stopping
            return
        try:
            self._send(request, method, path, status, future.result(), extra)
        except Exception:  # noqa: BLE001
            log.exception("building a page failed")
            self._refuse(500)
        if self.state is not State.ANSWERING:
            self._resume()

    def _send(self, request: h11.Request, method: str, path: str, status: int, page: Page | LazyPage,
              extra) -> None:
        if isinstance(page, LazyPage):
            page = page.get()
        accepts = b"gzip" in b",".join(v for k, v in request.headers if k == b"accept-encoding")
        # each read of a MetricsPage's `gzipped` or `body` makes its self-metrics anew: at most one read per answer
        compressed = isinstance(page, MetricsPage) or bool(page.gzipped)
        use_gzip = accepts and compressed
        body = self.server.bodies.of(page, use_gzip)
        headers = [("Content-Type", page.content_type), ("Content-Length", str(len(body))), *extra]
        if use_gzip:
            headers.append(("Content-Encoding", "gzip"))
        if compressed:
            headers.append(("Vary", "Accept-Encoding"))
        self._close_after = not _keep_alive(request)
        if self._close_after:
            headers.append(("Connection", "close"))
        body = memoryview(b"" if method == "HEAD" else body)
        self._body = body[WRITE_CHUNK:]
        self.transport.write(_head(status, headers) + body[:WRITE_CHUNK])  # one send for a page of one chunk
        log.debug("%s %s %d", method, path, status)
        self._write_body()

    def _write_body(self) -> bool:
        """Write the rest of the answer a chunk at a time while the transport takes it: a client that reads slowly
        holds a chunk of the page in its buffer, not a copy of all of it. True once the answer is all written."""
        if self._body is None or self.state is not State.ANSWERING:
            return False
        while self._body and not self._paused:
            chunk, self._body = self._body[:WRITE_CHUNK], self._body[WRITE_CHUNK:]
            self.transport.write(chunk)
        if self._body or self._paused:
            return False
        self._body = None
        if self._close_after:
            self.close()
            return True
        self._next_cycle()
        self.server.touch(self)
        self._enter(State.READING_HEAD if self.conn.trailing_data[0] else State.IDLE)
        return True

    def _next_cycle(self) -> None:
        """A new parser for the next request, given what the client sent after the one answered (h11's own
        `start_next_cycle` needs its answer written through h11, which answers cost a tenth of their CPU)."""
        data, closed = self.conn.trailing_data
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        if data:
            self.conn.receive_data(data)
        if closed:
            self.conn.receive_data(b"")

    def _refuse(self, status: int) -> None:
        """Answer a request that cannot be read with its status (400, 413, 431, 500), then close."""
        if self._body is None:  # no other answer under way on this connection
            body = f"{status} {_reason(status).decode()}\n".encode()
            self.transport.write(_head(status, [("Content-Type", "text/plain; charset=utf-8"),
                                                ("Content-Length", str(len(body))), ("Connection", "close")]) + body)
        self.close()


def _keep_alive(request: h11.Request) -> bool:
    """Whether the connection stays open after this request's answer: HTTP/1.1 without `Connection: close`
    (h11's rule: HTTP/1.0 clients are answered and closed)."""
    if request.http_version != b"1.1":
        return False
    return not any(name == b"connection" and b"close" in [token.strip() for token in value.lower().split(b",")]
                   for name, value in request.headers)


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """An answer's status line and headers. The values are the server's own (content types, lengths, the page's
    policy headers), never a client's: nothing of a request is echoed here."""
    lines = [f"HTTP/1.1 {status} {_reason(status).decode()}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def _has_body(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
