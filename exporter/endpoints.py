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

from exporter.exposition import CONTENT_TYPE
from exporter.redact import redact

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
    ready: bool = False
    not_ready_reason: str = "first inventory and check round not done yet"
    stale: Callable[[], str] = lambda: ""  # why the cycle is overdue, asked at request time ("" when it is not)

    def readiness(self) -> str:
        """Why the exporter is not ready now, or "" when it is."""
        return self.stale() or ("" if self.ready else self.not_ready_reason)


# -- routes: a path to what answers it, from the published state alone --

Answer = tuple[int, Page | LazyPage]


def text(status: int, body: str) -> Answer:
    return status, Page(body.encode(), "text/plain; charset=utf-8")


def _readyz(published: Published) -> Answer:
    reason = redact(published.readiness())  # reasons quote API errors, which may quote URLs
    return text(503, f"not ready: {reason}\n") if reason else text(200, "ready\n")


ROUTES: dict[str, Callable[[Published], Answer]] = {
    "/metrics": lambda published: (200, published.metrics),
    "/report": lambda published: (200, published.report),
    "/healthz": lambda published: text(200, "ok\n"),
    "/readyz": _readyz,
    "/": lambda published: text(200, "kube-image-exporter: /metrics /report /healthz /readyz\n"),
}


# -- the server --


class _Closed(Exception):
    """The connection is done with: closed by the client, timed out, or broken."""


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    idle_since: float | None  # monotonic time it started waiting for a request; None while one is handled


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
        self._connections: set[_Connection] = set()
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
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, sock=self._socket, backlog=BACKLOG))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for connection in list(self._connections):
                connection.writer.transport.abort()  # their tasks end on the EOF this gives them
            tasks = asyncio.all_tasks(self._loop)
            if tasks:
                self._loop.run_until_complete(asyncio.wait(tasks, timeout=1))
            for task in tasks:
                task.cancel()
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
        idle = sorted((c for c in self._connections if c.idle_since is not None), key=lambda c: c.idle_since)
        shed = idle[:max(1, len(idle) // 4)]
        log.warning("out of file descriptors with %d connections open: closing the %d longest idle",
                    len(self._connections), len(shed))
        for connection in shed:
            self._connections.discard(connection)
            connection.writer.transport.abort()

    # -- one connection --

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        connection = _Connection(writer, time.monotonic())
        self._connections.add(connection)
        try:
            first = True
            while True:
                connection.idle_since = time.monotonic()
                request = await self._request(conn, reader, first)
                connection.idle_since = None
                first = False
                await self._answer(conn, request, writer)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except _Closed:
            pass
        except h11.RemoteProtocolError as exc:
            await self._refuse(conn, writer, exc.error_status_hint)
        except (ConnectionError, h11.LocalProtocolError):
            pass
        except Exception:  # noqa: BLE001 (a handler's bug costs this request, never the server)
            log.exception("answering a request failed")
            await self._refuse(conn, writer, 500)
        finally:
            self._connections.discard(connection)
            writer.close()

    async def _request(self, conn: h11.Connection, reader: asyncio.StreamReader, first: bool) -> h11.Request:
        """The next request's head: within `header_timeout` of its first byte, after at most `idle_timeout`
        of silence (none for a new connection: it has `header_timeout` from its opening)."""
        deadline = time.monotonic() + self.header_timeout
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                if _has_body(event):
                    raise h11.RemoteProtocolError("request bodies are not accepted", error_status_hint=413)
                if not isinstance(conn.next_event(), h11.EndOfMessage):  # a request without a body ends here
                    raise h11.RemoteProtocolError("unexpected request body", error_status_hint=400)
                return event
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                raise _Closed
            waiting = not first and not conn.trailing_data[0] and conn.their_state is h11.IDLE
            timeout = self.idle_timeout if waiting else deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(timeout, 0)):
                    data = await reader.read(4096)  # small reads: h11 then caps the head at MAX_HEAD
            except TimeoutError:
                raise _Closed from None
            if waiting:
                deadline = time.monotonic() + self.header_timeout
            conn.receive_data(data)

    async def _answer(self, conn: h11.Connection, request: h11.Request, writer: asyncio.StreamWriter) -> None:
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            status, page = text(405, "only GET and HEAD\n")
            extra = [("Allow", "GET, HEAD")]
        else:
            route = self.routes.get(path)
            status, page = route(self.published) if route else text(404, "not found\n")
            extra = []
        if isinstance(page, LazyPage):
            page = page.get() if page.built else await self._build(page)
        accepts = b"gzip" in b",".join(v for k, v in request.headers if k == b"accept-encoding")
        use_gzip = accepts and bool(page.gzipped)
        body = page.gzipped if use_gzip else page.body
        headers = [("Content-Type", page.content_type), ("Content-Length", str(len(body))), *extra]
        if use_gzip:
            headers.append(("Content-Encoding", "gzip"))
        if page.gzipped:
            headers.append(("Vary", "Accept-Encoding"))
        head = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
        chunks = [memoryview(body)[i:i + WRITE_CHUNK] for i in range(0, len(body), WRITE_CHUNK)]
        if method == "HEAD" or not chunks:
            await self._write(writer, [head + conn.send(h11.EndOfMessage())])
        else:
            await self._write(writer, [head, *(conn.send(h11.Data(data=chunk)) for chunk in chunks),
                                       conn.send(h11.EndOfMessage())])
        log.debug("%s %s %d", method, path, status)

    async def _build(self, page: LazyPage) -> Page:
        if self._builder is None:
            self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-build")
        return await self._loop.run_in_executor(self._builder, page.get)

    async def _write(self, writer: asyncio.StreamWriter, parts) -> None:
        """Write `parts` one after the other, each once the previous has drained below the buffer's high-water
        mark: a client that reads slowly holds a chunk of the page, not a copy of all of it; within
        `write_timeout` in all."""
        try:
            async with asyncio.timeout(self.write_timeout):
                for part in parts:
                    writer.write(part)
                    await writer.drain()
        except TimeoutError:
            raise _Closed from None

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int) -> None:
        """Answer a request that cannot be read with its status (400, 413, 431), then close."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{status} {_reason(status).decode()}\n".encode()
        try:
            out = conn.send(h11.Response(status_code=status, reason=_reason(status), headers=[
                ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                ("Connection", "close")]))
            out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
            await self._write(writer, [out])
        except (h11.LocalProtocolError, ConnectionError, _Closed):
            pass


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
