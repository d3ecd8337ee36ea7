"""The exporter's HTTP endpoints: /metrics, /report, /healthz, /readyz — and the server that answers them.

Handlers read one attribute of a `Published` holder — bytes rendered by the cycle — and copy them out.
They never take a lock held across I/O, never wait for a check or the Kubernetes API, so a scrape
answers in milliseconds even while a registry is timing out.

The server is an asyncio event loop in one thread, with h11 (httpx's own HTTP/1.1 parser) speaking the
protocol. Against clients that misbehave it keeps what production servers keep:
- a connection costs a file descriptor, not a thread: a thousand idle connections block nothing;
- the request head must arrive whole within `HEADER_TIMEOUT` of its first byte (of the connection, for
  the first request), so a slowloris client is dropped; a keep-alive connection idle for `IDLE_TIMEOUT`
  is closed; a client that does not read its answer within `WRITE_TIMEOUT` is dropped;
- heads are capped at 16 KiB (h11's limit) and request bodies are not read: a body gets 413;
- the listen backlog is 1,024 (the kernel caps it at `net.core.somaxconn`);
- when accept() fails for want of file descriptors, asyncio stops accepting for a second instead of
  spinning on the error, and the server closes its longest idle connections to make room;
- the one handler that may work for long (the first /report after a cycle, built on demand) runs in a
  single worker thread, so it never holds up a scrape.
"""

from __future__ import annotations

import asyncio
import gzip
import http
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import h11

from exporter.common.redact import redact
from exporter.views.exposition import CONTENT_TYPE
from exporter.views.page import HEADERS as PAGE_HEADERS

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 5.0  # from a request's first byte (or the connection) to its last header line
IDLE_TIMEOUT = 60.0  # a keep-alive connection waiting for its next request (Prometheus scrapes every 15-60 s)
WRITE_TIMEOUT = 30.0  # a client that reads its answer no faster than this is dropped
BACKLOG = 1024
MAX_HEAD = 16 * 1024
WRITE_CHUNK = 64 * 1024  # a slow reader holds at most about this much of a page in its buffer


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


class Server:
    """The endpoints over HTTP/1.1 on HOST:PORT, served by an event loop in a daemon thread."""

    def __init__(self, published: Published, host: str, port: int, routes=None,
                 header_timeout: float = HEADER_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT) -> None:
        self.published = published
        self.routes = dict(ROUTES if routes is None else routes)
        self.header_timeout, self.idle_timeout, self.write_timeout = header_timeout, idle_timeout, write_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=BACKLOG)  # binds now: errors here
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._loop_exception)
        self._builder: ThreadPoolExecutor | None = None  # the worker thread of slow pages, made on first use
        self.connections: set[_Connection] = set()
        self._shed_at = 0.0
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
        server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Connection(self), sock=self._socket, backlog=BACKLOG))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for connection in list(self.connections):
                connection.abort()
            self._loop.run_until_complete(asyncio.sleep(0))  # let the aborted transports close their sockets
            self._loop.close()
            if self._builder is not None:
                self._builder.shutdown(wait=False, cancel_futures=True)

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if "out of system resource" in context.get("message", ""):  # accept() hit EMFILE/ENFILE
            self._shed_idle()
            return
        loop.default_exception_handler(context)

    def _shed_idle(self) -> None:
        """Close the longest idle quarter of the connections (at least one) to free file descriptors.

        asyncio reports every failed accept() of a burst and retries a second later: shed once per retry.
        """
        now = time.monotonic()
        if now - self._shed_at < 0.5:
            return
        self._shed_at = now
        idle = sorted((c for c in self.connections if c.idle_since is not None), key=lambda c: c.idle_since)
        shed = idle[:max(1, len(idle) // 4)]
        log.warning("out of file descriptors with %d connections open: closing the %d longest idle",
                    len(self.connections), len(shed))
        for connection in shed:
            connection.abort()

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


class _Connection(asyncio.Protocol):
    """One client connection: h11 parses, callbacks move it along, one timer bounds each phase.

    Phases: waiting for a request head (`header_timeout` from the connection, or from the first byte after a
    keep-alive pause), idle between requests (`idle_timeout`), answering (`write_timeout`; reading paused).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.idle_since: float | None = time.monotonic()  # None while a request is being answered
        self._timer: asyncio.TimerHandle | None = None
        self._body: memoryview | None = None  # what is left to write of the current answer
        self._paused = False  # the transport's buffer is above its high-water mark

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self._arm(self.server.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.idle_since is not None and self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self._arm(self.server.header_timeout)  # the first byte of a request after a keep-alive pause
        self.conn.receive_data(data)
        self._next()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        self._next()
        return True  # the transport is closed by us, once any answer in progress is written

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._write_body()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()

    # -- moving along --

    def abort(self) -> None:
        self.server.connections.discard(self)
        if self.transport is not None:
            self.transport.abort()

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.server._loop.call_later(seconds, self.abort)

    def _next(self) -> None:
        """Handle what h11 has parsed, unless an answer is being written."""
        if self.idle_since is None or self.transport is None or self.transport.is_closing():
            return
        try:
            buffered = len(self.conn.trailing_data[0])
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Request) and buffered - len(self.conn.trailing_data[0]) > MAX_HEAD:
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)  # came in one piece
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                self.transport.close()
                return
            if not isinstance(event, h11.Request):
                raise h11.RemoteProtocolError("unexpected request data", error_status_hint=400)
            if _has_body(event):
                raise h11.RemoteProtocolError("request bodies are not accepted", error_status_hint=413)
            if not isinstance(self.conn.next_event(), h11.EndOfMessage):  # a request without a body ends here
                raise h11.RemoteProtocolError("unexpected request body", error_status_hint=400)
            self._answer(event)
        except h11.RemoteProtocolError as exc:
            self._refuse(exc.error_status_hint)
        except Exception:  # noqa: BLE001 (a handler's bug costs this request, never the server)
            log.exception("answering a request failed")
            self._refuse(500)

    def _answer(self, request: h11.Request) -> None:
        self.idle_since = None
        self.transport.pause_reading()  # one request at a time: pipelined ones wait in the socket
        self._arm(self.server.write_timeout)
        method, path, status, page, extra = self.server.answer(request)
        if isinstance(page, LazyPage) and not page.built:
            future = self.server.build(page)
            future.add_done_callback(lambda f: self._send(request, method, path, status, f, extra))
            return
        self._send(request, method, path, status, page, extra)

    def _send(self, request: h11.Request, method: str, path: str, status: int, page, extra) -> None:
        if isinstance(page, asyncio.Future):  # a lazy page built in the worker thread
            if self.transport.is_closing():
                return
            try:
                page = page.result()
            except Exception:  # noqa: BLE001
                log.exception("building a page failed")
                self._refuse(500)
                return
        if isinstance(page, LazyPage):
            page = page.get()
        accepts = b"gzip" in b",".join(v for k, v in request.headers if k == b"accept-encoding")
        use_gzip = accepts and bool(page.gzipped)
        body = page.gzipped if use_gzip else page.body
        headers = [("Content-Type", page.content_type), ("Content-Length", str(len(body))), *extra]
        if use_gzip:
            headers.append(("Content-Encoding", "gzip"))
        if page.gzipped:
            headers.append(("Vary", "Accept-Encoding"))
        self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status))))
        self._body = memoryview(b"" if method == "HEAD" else body)
        log.debug("%s %s %d", method, path, status)
        self._write_body()

    def _write_body(self) -> None:
        """Write the answer a chunk at a time while the transport takes it: a client that reads slowly holds
        a chunk of the page in its buffer, not a copy of all of it."""
        if self._body is None or self.transport is None or self.transport.is_closing():
            return
        while self._body and not self._paused:
            chunk, self._body = self._body[:WRITE_CHUNK], self._body[WRITE_CHUNK:]
            for part in self.conn.send_with_data_passthrough(h11.Data(data=chunk)):
                self.transport.write(part)
        if self._body or self._paused:
            return
        self._body = None
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        self.conn.start_next_cycle()
        self.idle_since = time.monotonic()
        self._arm(self.server.header_timeout if self.conn.trailing_data[0] else self.server.idle_timeout)
        self.transport.resume_reading()
        self._next()  # a pipelined request already received

    def _refuse(self, status: int) -> None:
        """Answer a request that cannot be read with its status (400, 413, 431, 500), then close."""
        body = f"{status} {_reason(status).decode()}\n".encode()
        try:
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.transport.write(self.conn.send(h11.Response(status_code=status, reason=_reason(status), headers=[
                    ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                    ("Connection", "close")])) + self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass
        self.transport.close()


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
