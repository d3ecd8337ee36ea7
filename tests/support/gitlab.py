"""A GitLab REST API emulator on 127.0.0.1: the calls a retention forecast reads, as GitLab serves them
(docs.gitlab.com `api/projects.md`, `api/container_registry.md`, `api/rest/index.md` "Pagination"; gitlab-org/gitlab
`lib/api/entities/project.rb`, `lib/api/container_repositories.rb`, `lib/api/project_container_repositories.rb`):

- `GET /api/v4/projects/{id}` (a numeric id or the URL-encoded full path, `group%2Fsub%2Fproject`) → the project;
  a member's token sees the full entity (`container_registry_access_level`, and `container_expiration_policy` where
  the project has one), a non-member's only the basic details; 404 `{"message": "404 Project Not Found"}` for a
  path that is not a project or that the token cannot see (GitLab hides a private project behind a 404);
- `GET …/registry/repositories` → `[{id, name, path, project_id, location, created_at}]`;
- `GET …/registry/repositories/{repository_id}/tags` → `[{name, path, location}]` (no `created_at`);
- `GET …/registry/repositories/{repository_id}/tags/{tag_name}` → `{name, path, location, revision, short_revision,
  digest, created_at, total_size}`; 404 `{"message": "404 Tag Not Found"}`;
- listings paged with `page` and `per_page` (default 20, at most 100: more is served as 100), `X-Next-Page` (empty
  on the last page), `X-Page`, `X-Per-Page`, `X-Total`, `X-Total-Pages`;
- `PRIVATE-TOKEN` auth: 401 `{"message": "401 Unauthorized"}` without a valid token; 403 where a path prefix is
  withheld (`forbid`).
Its registry (`/v2/`) answers on the same server, anonymously (a public project's images), serving the manifests of
the tags listed; real GitLab serves the registry on its own host with token auth. Faults for tests: `forbid`,
`endless` (a project whose tag listings always have a next page), `garbage` (a tag whose `created_at` is given as is).
"""

from __future__ import annotations

import collections
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def expiration(enabled=True, keep_n=None, older_than=None, name_regex=".*", name_regex_keep=None,
               cadence="1d", next_run_at="2027-01-16T03:00:00.000Z") -> dict:
    """A `container_expiration_policy` as the project API shows it."""
    return {"cadence": cadence, "enabled": enabled, "keep_n": keep_n, "older_than": older_than,
            "name_regex": name_regex, "name_regex_keep": name_regex_keep, "next_run_at": next_run_at}


class GitLab:
    def __init__(self, token: str = "glpat-canary-0123456789") -> None:
        self.projects: dict[str, dict] = {}  # full path -> {"id", "policy", "member"}
        self.repositories: dict[str, list[dict]] = {}  # project path -> [{"id", "path"}]
        self.tags: dict[int, dict[str, dict]] = {}  # repository id -> tag name -> {"digest", "created_at"}
        self.forbid: set[str] = set()
        self.endless = ""  # a project path whose tag listings never end
        self.requests: collections.Counter[str] = collections.Counter()
        self._token = token
        gitlab = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

            def log_message(self, *args):
                pass

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_HEAD(self):  # noqa: N802
                self.do_GET()

            def do_GET(self):  # noqa: N802
                url = urlsplit(self.path)
                gitlab.requests[url.path] += 1
                if url.path.startswith("/v2/"):
                    return self._registry(url.path)
                if self.headers.get("PRIVATE-TOKEN") != gitlab._token:
                    return self._send(401, {"message": "401 Unauthorized"})
                if any(url.path.startswith(prefix) for prefix in gitlab.forbid):
                    return self._send(403, {"message": "403 Forbidden"})
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                parts = url.path.removeprefix("/api/v4/").split("/")
                if parts[0] != "projects" or len(parts) < 2:
                    return self._send(404, {"error": "404 Not Found"})
                path = gitlab._path(unquote(parts[1]))
                if path is None:
                    return self._send(404, {"message": "404 Project Not Found"})
                found = gitlab.projects[path]
                if len(parts) == 2:
                    return self._project(path, found)
                if parts[2:4] != ["registry", "repositories"]:
                    return self._send(404, {"error": "404 Not Found"})
                if len(parts) == 4:
                    return self._paged([{"id": r["id"], "name": r["path"].removeprefix(path).lstrip("/"),
                                         "path": r["path"], "project_id": found["id"],
                                         "location": f"{gitlab.host}/{r['path']}",
                                         "created_at": "2026-01-01T00:00:00.000Z"}
                                        for r in gitlab.repositories.get(path, ())], query)
                repository = next((r for r in gitlab.repositories.get(path, ()) if str(r["id"]) == parts[4]), None)
                if repository is None or len(parts) < 6 or parts[5] != "tags":
                    return self._send(404, {"message": "404 Repository Not Found"})
                tags = gitlab.tags.get(repository["id"], {})
                if len(parts) == 6:
                    if gitlab.endless == path:
                        page = int(query.get("page", 1))
                        return self._send(200, [{"name": f"t{page}-{i}"} for i in range(100)],
                                          {"X-Next-Page": str(page + 1), "X-Page": str(page)})
                    return self._paged([{"name": n, "path": f"{repository['path']}:{n}",
                                         "location": f"{gitlab.host}/{repository['path']}:{n}"} for n in sorted(tags)],
                                       query)
                tag = tags.get(unquote(parts[6]))
                if tag is None:
                    return self._send(404, {"message": "404 Tag Not Found"})
                name = unquote(parts[6])
                return self._send(200, {"name": name, "path": f"{repository['path']}:{name}",
                                        "location": f"{gitlab.host}/{repository['path']}:{name}",
                                        "revision": tag["digest"].removeprefix("sha256:"),
                                        "short_revision": tag["digest"].removeprefix("sha256:")[:9],
                                        "digest": tag["digest"], "created_at": tag["created_at"],
                                        "total_size": 1024})

            def _project(self, path: str, found: dict):
                body = {"id": found["id"], "path_with_namespace": path, "name": path.rsplit("/", 1)[-1],
                        "visibility": "private"}
                if found["member"]:
                    body["container_registry_access_level"] = "enabled"
                    if found["policy"] is not None:
                        body["container_expiration_policy"] = found["policy"]
                return self._send(200, body)

            def _paged(self, items: list, query: dict):
                page, size = int(query.get("page", 1)), min(int(query.get("per_page", 20)), 100)
                pages = max(1, -(-len(items) // size))
                headers = {"X-Page": str(page), "X-Per-Page": str(size), "X-Total": str(len(items)),
                           "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else ""}
                return self._send(200, items[(page - 1) * size: page * size], headers)

            def _registry(self, path: str):
                if path == "/v2/":
                    return self._send(200, {})
                name, _, reference = path.removeprefix("/v2/").partition("/manifests/")
                for repositories in gitlab.repositories.values():
                    for repository in repositories:
                        if repository["path"] != name:
                            continue
                        for tag, found in gitlab.tags.get(repository["id"], {}).items():
                            if reference in (tag, found["digest"]):
                                return self._send(200, {"schemaVersion": 2}, {
                                    "Docker-Content-Digest": found["digest"],
                                    "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
                return self._send(404, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.api = f"http://{self.host}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()  # stop() waits one poll

    def _path(self, id_or_path: str) -> str | None:
        if id_or_path.isdigit():
            return next((p for p, f in self.projects.items() if str(f["id"]) == id_or_path), None)
        return id_or_path if id_or_path in self.projects else None

    def project(self, path: str, policy: dict | None = None, member: bool = True) -> None:
        self.projects[path] = {"id": len(self.projects) + 11, "policy": policy, "member": member}

    def repository(self, project: str, name: str = "", tags: dict[str, tuple[str, str]] | None = None) -> str:
        """A registry repository of `project` (its root one for no name) with tags `{name: (digest, created_at)}`;
        returns its path."""
        path = f"{project}/{name}" if name else project
        rid = sum(len(r) for r in self.repositories.values()) + 101
        self.repositories.setdefault(project, []).append({"id": rid, "path": path})
        self.tags[rid] = {t: {"digest": d, "created_at": c} for t, (d, c) in (tags or {}).items()}
        return path

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
