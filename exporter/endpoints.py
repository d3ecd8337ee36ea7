"""The exporter's HTTP endpoints: /metrics, /report, /healthz, /readyz.

Handlers read one attribute of a `Published` holder — bytes rendered by the cycle — and copy them out.
They never take a lock held across I/O, never wait for a check or the Kubernetes API, so a scrape
answers in milliseconds even while a registry is timing out.
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter.exposition import CONTENT_TYPE
from exporter.page import HEADERS as PAGE_HEADERS

log = logging.getLogger(__name__)


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


class _Handler(BaseHTTPRequestHandler):
    published: Published  # set on the subclass made per server
    server_version = "kube-image-exporter"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._page(self.published.metrics)
        elif path == "/report":
            report = self.published.report
            self._page(report.get() if isinstance(report, LazyPage) else report)
        elif path == "/healthz":
            self._text(200, "ok\n")
        elif path == "/readyz":
            pub = self.published
            if pub.ready:
                self._text(200, "ready\n")
            else:
                self._text(503, f"not ready: {pub.not_ready_reason}\n")
        elif path == "/" and self.published.page is not None:
            page = self.published.page
            self._page(page.get() if isinstance(page, LazyPage) else page, PAGE_HEADERS)
        elif path == "/":
            self._text(200, "kube-image-exporter: /metrics /report /healthz /readyz\n")
        else:
            self._text(404, "not found\n")

    def _page(self, page: Page, headers: tuple[tuple[str, str], ...] = ()) -> None:
        use_gzip = "gzip" in self.headers.get("Accept-Encoding", "") and page.gzipped
        body = page.gzipped if use_gzip else page.body
        self.send_response(200)
        self.send_header("Content-Type", page.content_type)
        if use_gzip:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _text(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)


class Server:
    """A threaded HTTP server over a `Published` holder, started in a daemon thread."""

    def __init__(self, published: Published, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"published": published})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> "Server":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
