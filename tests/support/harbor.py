"""A Harbor 2.x API emulator on 127.0.0.1: the calls a retention forecast reads, as Harbor's API serves them
(goharbor/harbor `api/v2.0/swagger.yaml`; `src/server/v2.0/handler`):

- `GET /api/v2.0/projects/{project_name_or_id}` → the project, `metadata.retention_id` a string when a policy is set;
  404 for an unknown project;
- `GET /api/v2.0/retentions/{id}` → the policy (`algorithm`, `rules`, `trigger`, `scope`);
- `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts?with_tag=true&page=&page_size=` → artifacts with
  `digest`, `push_time`, `pull_time`, `tags[]` (`name`, `push_time`, `pull_time`); `{r}` with its slashes encoded
  twice (`a%252Fb`), as Harbor requires; `page_size` at most 100 (more is a 400, as Harbor's `page_size` maximum);
  `X-Total-Count` and a `Link` header to the next page; 404 for an unknown repository;
- HTTP Basic auth (a robot account): 401 without it, 403 where a permission is withheld (`forbid`).
Its registry (`/v2/`) answers on the same host, serving the manifests of the artifacts listed (by tag or digest). Faults for tests: `forbid` (a path prefix answers 403), `endless` (a project whose every page is full, for ever).
"""

from __future__ import annotations

import base64
import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def artifact(digest: str, tags=(), pushed="2026-11-01T00:00:00.000Z", pulled="0001-01-01T00:00:00.000Z") -> dict:
    return {"digest": digest, "push_time": pushed, "pull_time": pulled,
            "tags": [{"name": t, "push_time": pushed, "pull_time": pulled} for t in tags] or None}


def policy(*rules, cron="0 0 3 * * *") -> dict:
    return {"id": 7, "algorithm": "or", "rules": list(rules),
            "trigger": {"kind": "Schedule", "settings": {"cron": cron}}, "scope": {"level": "project", "ref": 1}}


def rule(template, value=None, repos="**", tags="**", untagged=False, decoration="matches", disabled=False):
    return {"disabled": disabled, "action": "retain", "template": template,
            "params": {template: value} if value is not None else {},
            "tag_selectors": [{"kind": "doublestar", "decoration": decoration, "pattern": tags,
                               "extras": json.dumps({"untagged": untagged})}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": repos}]}}


class Harbor:
    def __init__(self, user: str = "robot$exporter", password: str = "s3cret") -> None:
        self.projects: dict[str, dict] = {}  # name -> {"retention_id": str | None}
        self.policies: dict[str, dict] = {}  # retention id -> policy
        self.artifacts: dict[tuple[str, str], list[dict]] = {}  # (project, repository) -> artifacts
        self.forbid: set[str] = set()  # path prefixes answered 403
        self.endless = ""  # a project whose artifact listings never end
        self.requests: collections.Counter[str] = collections.Counter()
        self._credentials = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        harbor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

            def log_message(self, *args):
                pass

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                headers = {"Content-Type": "application/json", **(headers or {})}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_HEAD(self):  # noqa: N802
                self.do_GET()

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                harbor.requests[url.path] += 1
                if self.headers.get("Authorization") != harbor._credentials:
                    return self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]},
                                      {"WWW-Authenticate": 'Basic realm="harbor"'})
                if any(url.path.startswith(prefix) for prefix in harbor.forbid):
                    return self._send(403, {"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]})
                if url.path.startswith("/v2/"):  # its registry, on the same host: the artifacts listed
                    return self._registry(url.path)
                parts = url.path.removeprefix("/api/v2.0/").split("/")
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[0] == "projects" and len(parts) == 2:
                    found = harbor.projects.get(unquote(parts[1]))
                    if found is None:
                        return self._send(404, {"errors": [{"code": "NOT_FOUND", "message": "project not found"}]})
                    metadata = {"public": "false"}
                    if found.get("retention_id"):
                        metadata["retention_id"] = str(found["retention_id"])
                    return self._send(200, {"name": unquote(parts[1]), "metadata": metadata})
                if parts[0] == "retentions" and len(parts) == 2 and parts[1] in harbor.policies:
                    return self._send(200, harbor.policies[parts[1]])
                if parts[0] == "projects" and len(parts) == 5 and parts[2] == "repositories" and parts[4] == "artifacts":
                    return self._artifacts(unquote(parts[1]), unquote(unquote(parts[3])), query)
                return self._send(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})

            def _registry(self, path: str):
                if path == "/v2/":
                    return self._send(200, {})
                name, _, reference = path.removeprefix("/v2/").partition("/manifests/")
                project, _, repository = name.partition("/")
                for found in harbor.artifacts.get((project, repository), ()):
                    if reference == found["digest"] or reference in [t["name"] for t in found["tags"] or ()]:
                        return self._send(200, {"schemaVersion": 2}, {
                            "Docker-Content-Digest": found["digest"],
                            "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                return self._send(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

            def _artifacts(self, project: str, repository: str, query: dict):
                page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
                if size > 100:
                    return self._send(400, {"errors": [{"code": "BAD_REQUEST", "message": "page_size > 100"}]})
                if harbor.endless == project:
                    full = [artifact(f"sha256:{page:032x}{i:032x}", (f"t{page}-{i}",)) for i in range(size)]
                    return self._send(200, full, {"X-Total-Count": str(10 ** 9)})
                listed = harbor.artifacts.get((project, repository))
                if listed is None:
                    return self._send(404, {"errors": [{"code": "NOT_FOUND", "message": "repository not found"}]})
                chunk = listed[(page - 1) * size: page * size]
                headers = {"X-Total-Count": str(len(listed))}
                if page * size < len(listed):
                    headers["Link"] = f'</api/v2.0/projects/{project}/...?page={page + 1}&page_size={size}>; rel="next"'
                return self._send(200, chunk, headers)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()  # stop() waits one poll

    def project(self, name: str, retention: dict | None = None) -> None:
        """A project, with a retention policy when given."""
        rid = None
        if retention is not None:
            rid = str(len(self.policies) + 7)
            self.policies[rid] = retention
        self.projects[name] = {"retention_id": rid}

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
