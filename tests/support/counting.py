"""A counting front for a real registry: forwards every request on 127.0.0.1 and counts manifest requests.

What the fleet tests and the benchmark measure is the load the registry sees, from every process together:
exporters talk to `front.host` and each `HEAD|GET /v2/<name>/manifests/<ref>` is counted by image.
"""

from __future__ import annotations

import collections
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class CountingFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.manifests: collections.Counter[str] = collections.Counter()  # "name:ref" -> requests
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10)
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                if "/manifests/" in self.path:
                    name, _, reference = self.path.removeprefix("/v2/").partition("/manifests/")
                    with front._lock:
                        front.manifests[f"{name}:{reference}"] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                answer = front._http.request(self.command, front.upstream + self.path, headers=headers, content=body)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_HEADERS and key.lower() != "content-encoding":
                        self.send_header(key, value)
                data = b"" if self.command == "HEAD" else answer.content
                self.send_header("Content-Length", answer.headers.get("Content-Length", str(len(data)))
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def total(self) -> int:
        with self._lock:
            return sum(self.manifests.values())

    def reset(self) -> None:
        with self._lock:
            self.manifests.clear()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._http.close()
