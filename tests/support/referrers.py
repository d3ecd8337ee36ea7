"""A strict registry front with the OCI 1.1 referrers API, in front of a real docker-registry (which has none).

As the OCI distribution spec v1.1 says ("Listing Referrers", "Pushing Manifests with Subject"):
- a manifest pushed with a `subject` is recorded as a referrer of that digest, and the push answers with the
  `OCI-Subject` header (the registry processed the subject, so clients need not maintain the referrers tag schema);
  its descriptor carries the manifest's `artifactType`, else its config's media type, and its annotations;
- `GET /v2/<name>/referrers/<digest>` answers 200 with an image index (`Content-Type:
  application/vnd.oci.image.index.v1+json`) of those descriptors, an empty one where there are none: a registry with
  the API never answers it 404, whatever the digest;
- `?artifactType=T` filters the list and the answer says so with `OCI-Filters-Applied: artifactType`;
- a referrer deleted (`DELETE /v2/<name>/manifests/<digest>`) leaves the list.
Everything else is forwarded to the registry as it is; `requests` counts what arrived, by method and path kind.
"""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.registry import OCI_INDEX, digest_of

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class ReferrersFront:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.referrers: dict[tuple[str, str], dict[str, dict]] = {}  # (name, subject) -> referrer digest -> descriptor
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()  # (method, kind of path)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10)
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self):
                path = urlsplit(self.path)
                name, kind, reference = _split(path.path)
                with front._lock:
                    front.requests[(self.command, kind)] += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if kind == "referrers" and self.command in ("GET", "HEAD"):
                    return self._send(*front.listing(name, reference, parse_qs(path.query).get("artifactType")))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                answer = front._http.request(self.command, front.upstream + self.path, headers=headers,
                                             content=body or None)
                extra = {}
                if kind == "manifests" and self.command == "PUT" and answer.status_code == 201:
                    if front.record(name, body):
                        extra["OCI-Subject"] = json.loads(body)["subject"]["digest"]
                if kind == "manifests" and self.command == "DELETE" and answer.status_code == 202:
                    front.forget(name, reference)
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"}
                data = b"" if self.command == "HEAD" else answer.content
                self.send_response(answer.status_code)
                for key, value in {**kept, **extra}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", answer.headers.get("Content-Length", str(len(data)))
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def record(self, name: str, body: bytes) -> bool:
        """A pushed manifest with a subject becomes a referrer of it; True when it had one."""
        try:
            manifest = json.loads(body)
            subject = manifest["subject"]["digest"]
        except (ValueError, KeyError, TypeError):
            return False
        descriptor = {"mediaType": manifest.get("mediaType"), "digest": digest_of(body), "size": len(body),
                      "artifactType": manifest.get("artifactType") or manifest.get("config", {}).get("mediaType")}
        if manifest.get("annotations"):
            descriptor["annotations"] = manifest["annotations"]
        with self._lock:
            self.referrers.setdefault((name, subject), {})[descriptor["digest"]] = descriptor
        return True

    def forget(self, name: str, digest: str) -> None:
        with self._lock:
            for (repository, _), found in self.referrers.items():
                if repository == name:
                    found.pop(digest, None)

    def listing(self, name: str, subject: str, artifact_types: list[str] | None) -> tuple[int, dict, bytes]:
        with self._lock:
            descriptors = list(self.referrers.get((name, subject), {}).values())
        headers = {"Content-Type": OCI_INDEX}
        if artifact_types:
            descriptors = [d for d in descriptors if d["artifactType"] in artifact_types]
            headers["OCI-Filters-Applied"] = "artifactType"
        return 200, headers, json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                         "manifests": descriptors}).encode()

    def total(self, kind: str) -> int:
        with self._lock:
            return sum(n for (_, k), n in self.requests.items() if k == kind)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._http.close()


def _split(path: str) -> tuple[str, str, str]:
    """(name, kind, reference) of `/v2/<name>/<kind>/<reference>`; kind '' for anything else."""
    rest = path.removeprefix("/v2/")
    for kind in ("manifests", "referrers", "blobs", "tags"):
        name, found, reference = rest.partition(f"/{kind}/")
        if found:
            return name, kind, reference
    return rest, "", ""
