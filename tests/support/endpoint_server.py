"""The exporter's HTTP server alone, in its own process, serving a generated /metrics page.

    python -m tests.support.endpoint_server [--series N] [--nofile N] [--header-timeout S] [--idle-timeout S]
                                            [--max-connections N] [--baseline]

Prints the port on its first line, then serves until killed. Used where the process itself must be
constrained (a low open-file limit) or measured from outside: by tests and by scripts/bench.py.
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter.serve.endpoints import Page, Published, Server
from exporter.views.exposition import CONTENT_TYPE


def page(series: int) -> bytes:
    """A /metrics body of `series` reference-level lines, about 250 bytes each, like a real one."""
    lines = ["# HELP kube_image_missing 1 for each container reference whose image is not available.\n",
             "# TYPE kube_image_missing gauge\n"]
    for i in range(series):
        lines.append(f'kube_image_missing{{cluster="prod",namespace="team-{i % 50}",workload_kind="Deployment",'
                     f'workload="app-{i}",container="main",container_type="container",'
                     f'image="registry.example.com/team-{i % 50}/app-{i}:1.{i % 7}",unit="unit-{i % 40}",'
                     f'reason="absent"}} 1\n')
    return "".join(lines).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--nofile", type=int, default=0, help="the open-file limit of this process")
    parser.add_argument("--header-timeout", type=float, default=None)
    parser.add_argument("--idle-timeout", type=float, default=None)
    parser.add_argument("--max-connections", type=int, default=None, help="default: from the open-file limit")
    parser.add_argument("--baseline", action="store_true", help="serve with the former thread-per-connection server")
    args = parser.parse_args()
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    options = {k: v for k, v in (("header_timeout", args.header_timeout), ("idle_timeout", args.idle_timeout),
                                 ("max_connections", args.max_connections)) if v is not None}
    published = Published(metrics=Page.of(page(args.series), CONTENT_TYPE), ready=True)
    server = baseline(published) if args.baseline else Server(published, "127.0.0.1", 0, **options).start()
    print(server.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop()
    sys.exit(0)


class baseline:  # noqa: N801 (used like the Server class)
    """For comparison: what the endpoints were served with before, the standard library's thread per
    connection, listen backlog 5, no timeouts."""

    def __init__(self, published: Published) -> None:
        body, gzipped = published.metrics.body, published.metrics.gzipped

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                use_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
                data = gzipped if use_gzip else body
                self.send_response(200)
                if use_gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()


if __name__ == "__main__":
    main()
