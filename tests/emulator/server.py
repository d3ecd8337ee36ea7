"""A Kubernetes API emulator over real HTTP on 127.0.0.1, for the exporter's integration tests.

No apiserver installs here, so this keeps the semantics the exporter relies on, and the exporter's real
client code talks to it as to a cluster: discovery; a global resourceVersion; GET; LIST with
`limit`/`continue` (410 for an expired continue token), label and field selectors; WATCH from a
resourceVersion with `timeoutSeconds`, a 410 `ERROR` event for a version older than the retained history
and a 504 "Too large resource version" for one newer than the server has; 403 for resources marked
forbidden; 401 without the expected bearer token. A watch is silent between changes, as an apiserver's
is (it bookmarks about once a minute): `bookmark_interval` turns frequent bookmarks on.
Later pages of a paginated list are read from the current state rather than from the first page's
snapshot (an apiserver serves them from that snapshot); the exporter only relies on seeing every object
that existed throughout, which holds.

Tests change the cluster with `create`, `update`, `delete`, and cause trouble with `compact`,
`drop_watches`, `watch_error`, `forbid`, `stop`/`start`, `backup`/`restore` (an etcd restore: the objects and the
resourceVersion go back), and `inject` (a raw line, garbage or not, on the open watches of a resource).

As strict as an apiserver where a client could come to rely on leniency:
- a watch with a label or field selector sees an update that makes an object stop matching as DELETED (with the
  object as it was, at the event's version), and one that makes it start matching as ADDED (k8s.io/apiserver
  `pkg/storage/cacher/cache_watcher.go`, `convertToWatchEvent`);
- a field selector on a field the resource does not index answers 400 `field label not supported: NAME`
  (`metadata.name` and `metadata.namespace` everywhere, plus each kind's own, as `pkg/registry/*/strategy.go`
  `GetAttrs` and `AddFieldLabelConversionFunc` declare them), and so does a malformed selector;
- `limit`, `timeoutSeconds` and `resourceVersion` that are not integers answer 400, as the apiserver's query
  decoding does. `future_versions="serve"` makes a watch from a version the server never had wait
silently instead of failing, the way a server that forgot would look to a client that does not check.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import select
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTIN = [
    Resource("", "v1", "pods", "Pod"),
    Resource("", "v1", "nodes", "Node", namespaced=False),
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount"),
    Resource("", "v1", "configmaps", "ConfigMap"),
    Resource("", "v1", "events", "Event"),
    Resource("apps", "v1", "deployments", "Deployment"),
    Resource("apps", "v1", "replicasets", "ReplicaSet"),
    Resource("apps", "v1", "statefulsets", "StatefulSet"),
    Resource("apps", "v1", "daemonsets", "DaemonSet"),
    Resource("batch", "v1", "jobs", "Job"),
    Resource("batch", "v1", "cronjobs", "CronJob"),
    Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease"),
    Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization"),
    Resource("cluster.x-k8s.io", "v1beta1", "clusters", "Cluster"),
    Resource("argoproj.io", "v1alpha1", "applications", "Application"),
]


# Field selectors each kind supports beyond metadata.name and metadata.namespace (k8s.io/kubernetes
# pkg/apis/*/v1/conversion.go field label conversions).
FIELD_LABELS = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
    "Node": {"spec.unschedulable"},
    "ReplicaSet": {"status.replicas"},
    "Job": {"status.successful"},
}
COMMON_FIELD_LABELS = {"metadata.name", "metadata.namespace"}


class BadRequest(ValueError):
    """A query the apiserver answers with 400."""


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


# ---- selectors -------------------------------------------------------------------------------------

def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str):
    """A predicate for a label selector: =, ==, !=, in, notin, exists, !exists."""
    tests = []
    for term in _split_top(selector or ""):
        if " notin " in term:
            key, values = term.split(" notin ", 1)
            vals = {v.strip() for v in values.strip()[1:-1].split(",")}
            tests.append(lambda l, k=key.strip(), v=vals: l.get(k) not in v)
        elif " in " in term:
            key, values = term.split(" in ", 1)
            vals = {v.strip() for v in values.strip()[1:-1].split(",")}
            tests.append(lambda l, k=key.strip(), v=vals: l.get(k) in v)
        elif "!=" in term:
            key, value = term.split("!=", 1)
            tests.append(lambda l, k=key.strip(), v=value.strip(): l.get(k) != v)
        elif "==" in term or "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            tests.append(lambda l, k=key.strip(), v=value.strip(): l.get(k) == v)
        elif term.startswith("!"):
            tests.append(lambda l, k=term[1:].strip(): k not in l)
        else:
            tests.append(lambda l, k=term: k in l)
    return lambda labels: all(t(labels) for t in tests)


def _field(obj: dict, path: str):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def field_matcher(selector: str, kind: str = ""):
    """A predicate for a field selector (=, ==, !=); BadRequest for a field `kind` does not support."""
    supported = COMMON_FIELD_LABELS | FIELD_LABELS.get(kind, set())
    tests = []
    for term in _split_top(selector or ""):
        negate = "!=" in term
        operator = "!=" if negate else ("==" if "==" in term else "=")
        if operator not in term:
            raise BadRequest(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, value = term.split(operator, 1)
        if kind and key.strip() not in supported:
            raise BadRequest(f"field label not supported: {key.strip()}")
        tests.append((key.strip(), value.strip(), negate))

    def match(obj: dict) -> bool:
        for key, value, negate in tests:
            actual = _field(obj, key)
            actual = "" if actual is None else str(actual)
            if (actual == value) == negate:
                return False
        return True

    return match


# ---- the emulator ------------------------------------------------------------------------------------

class Emulator:
    """The cluster state and the HTTP server in front of it."""

    def __init__(self, token: str | None = None, bookmark_interval: float | None = None) -> None:
        self.token = token
        self.bookmark_interval = bookmark_interval  # None: no bookmarks, the stream is silent between changes
        self.future_versions = "reject"  # a watch from a version newer than the server's: "reject" (504) | "serve"
        self.open_watches = 0
        self.watching: Counter = Counter()  # open watches by plural
        self.watch_error: int | None = None  # answer every watch with this status (lists still work)
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.by_kind: dict[str, Resource] = {}
        for r in BUILTIN:
            self.register(r)
        self._objects: dict[str, dict[tuple[str, str], dict]] = {}
        self._sorted_keys: dict[str, list[tuple[str, str]] | None] = {}
        self._events: list[tuple[int, str, str, dict, dict | None]] = []  # (rv, type, plural, object, previous)
        self._injected: list[tuple[str, bytes]] = []  # (plural, raw line) for the watches open when injected
        self._rv = itertools.count(1000)
        self.resource_version = 999
        self.compacted = 999  # watches from a version older than this get 410
        self._cond = threading.Condition()
        self._watch_generation = 0
        self.forbidden: set[tuple[str, str | None]] = set()
        self.requests: Counter = Counter()
        self.tokens: list[tuple[str, str, list[str]]] = []  # TokenRequests served: (namespace, account, audiences)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set = set()
        self.port = 0

    # -- state changes --

    def register(self, resource: Resource) -> None:
        self.resources[(resource.group, resource.version, resource.plural)] = resource
        self.by_kind[resource.kind] = resource

    def _resource_of(self, obj: dict) -> Resource:
        return self.by_kind[obj["kind"]]

    def _record(self, kind: str, plural: str, obj: dict, previous: dict | None = None) -> None:
        self._events.append((int(obj["metadata"]["resourceVersion"]), kind, plural, obj, previous))
        self._cond.notify_all()

    def create(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        resource = self._resource_of(obj)
        meta = obj.setdefault("metadata", {})
        obj.setdefault("apiVersion", resource.api_version)
        if not resource.namespaced:
            meta.pop("namespace", None)
        else:
            meta.setdefault("namespace", "default")
        with self._cond:
            store = self._objects.setdefault(resource.plural, {})
            key = (meta.get("namespace", ""), meta["name"])
            if key in store:
                raise KeyError(f"{resource.kind} {key} exists")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.resource_version = next(self._rv)
            meta["resourceVersion"] = str(self.resource_version)
            store[key] = obj
            self._sorted_keys[resource.plural] = None
            self._record("ADDED", resource.plural, obj)
        return obj

    def create_many(self, objects) -> None:
        """Bulk load without recording watch events (a cluster that existed before anyone watched)."""
        with self._cond:
            for obj in objects:
                resource = self._resource_of(obj)
                meta = obj.setdefault("metadata", {})
                obj.setdefault("apiVersion", resource.api_version)
                meta.setdefault("namespace", "default") if resource.namespaced else meta.pop("namespace", None)
                meta.setdefault("uid", str(uuid.uuid4()))
                self.resource_version = next(self._rv)
                meta["resourceVersion"] = str(self.resource_version)
                self._objects.setdefault(resource.plural, {})[(meta.get("namespace", ""), meta["name"])] = obj
                self._sorted_keys[resource.plural] = None
            self.compacted = self.resource_version

    def update(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        resource = self._resource_of(obj)
        meta = obj["metadata"]
        with self._cond:
            store = self._objects.setdefault(resource.plural, {})
            key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
            old = store[key]
            meta["uid"] = old["metadata"]["uid"]
            meta.setdefault("namespace", old["metadata"].get("namespace")) if resource.namespaced else None
            obj.setdefault("apiVersion", resource.api_version)
            self.resource_version = next(self._rv)
            meta["resourceVersion"] = str(self.resource_version)
            store[key] = obj
            self._record("MODIFIED", resource.plural, obj, old)
        return obj

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        resource = self.by_kind[kind]
        with self._cond:
            obj = self._objects[resource.plural].pop((namespace or "" if resource.namespaced else "", name))
            self._sorted_keys[resource.plural] = None
            obj = copy.deepcopy(obj)
            self.resource_version = next(self._rv)
            obj["metadata"]["resourceVersion"] = str(self.resource_version)
            self._record("DELETED", resource.plural, obj)

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        resource = self.by_kind[kind]
        return self._objects.get(resource.plural, {}).get((namespace or "" if resource.namespaced else "", name))

    def compact(self) -> None:
        """Forget the change history: a watch or continue from an older version now gets 410 Gone."""
        with self._cond:
            self.compacted = self.resource_version
            self._events = []

    def backup(self) -> dict:
        """The objects and the resourceVersion now, as an etcd snapshot holds them."""
        with self._cond:
            return {"objects": copy.deepcopy(self._objects), "resource_version": self.resource_version}

    def restore(self, backup: dict, resource_version: int | None = None, restart: bool = True) -> None:
        """An etcd restore and apiserver restart: the objects go back to `backup`, the resourceVersion to the
        backup's (or to `resource_version`), the change history is gone and open watches end (unless not
        `restart`). A watch from a version older than the restored one gets 410, from a newer one 504 (or
        silence, see `future_versions`)."""
        with self._cond:
            version = backup["resource_version"] if resource_version is None else resource_version
            self._objects = copy.deepcopy(backup["objects"])
            self._sorted_keys = {}
            self._rv = itertools.count(version + 1)
            self.resource_version = self.compacted = version
            self._events = []
            self._watch_generation += restart
            self._cond.notify_all()

    def drop_watches(self) -> None:
        """Close every open watch connection (a load balancer or apiserver restart does this), those whose request
        the server is still reading too: after it returns, every watch a client holds was opened after it."""
        with self._cond:
            self._watch_generation += 1
            self._cond.notify_all()

    def inject(self, plural: str, line: bytes) -> int:
        """Send `line` (any bytes, a newline is added) on every watch of `plural` open now, after the events it
        was sent so far: how a broken proxy or apiserver bug would look to a client. Returns how many watches
        will get it."""
        with self._cond:
            self._injected.append((plural, line.rstrip(b"\n") + b"\n"))
            self._cond.notify_all()
            return self.watching[plural]

    def forbid(self, plural: str, namespace: str | None = None) -> None:
        self.forbidden.add((plural, namespace))

    # -- server --

    def start(self, port: int = 0) -> "Emulator":
        handler = type("Handler", (_Handler,), {"emu": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port or self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (an API outage): the port refuses connections until `start()`."""
        if self._server is not None:
            self.drop_watches()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            for connection in list(self._connections):  # keep-alive connections too: a real outage
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, contexts: dict[str, str] | None = None, token: str | None = None) -> dict:
        """A kubeconfig dict with one context per name (all pointing here)."""
        names = list(contexts or {"emulator": "default"})
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emu", "cluster": {"server": self.url}}],
            "users": [{"name": "emu", "user": {"token": token or self.token or "emulator-token"}}],
            "contexts": [{"name": n, "context": {"cluster": "emu", "user": "emu",
                                                   "namespace": (contexts or {}).get(n, "default")}} for n in names],
            "current-context": names[0],
        }

    # -- reads used by the handler --

    def _keys(self, plural: str) -> list[tuple[str, str]]:
        keys = self._sorted_keys.get(plural)
        if keys is None:
            keys = sorted(self._objects.get(plural, {}))
            self._sorted_keys[plural] = keys
        return keys


def _encode_continue(rv: int, after: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "after": list(after)}).encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    data = json.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["rv"]), tuple(data["after"])


class _Handler(BaseHTTPRequestHandler):
    emu: Emulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def setup(self) -> None:
        super().setup()
        self.emu._connections.add(self.connection)

    def finish(self) -> None:
        self.emu._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002
        pass

    # -- responses --

    def _json(self, code: int, body) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, reason: str, message: str) -> None:
        self._json(code, _status(code, reason, message))

    # -- routing --

    def do_GET(self) -> None:  # noqa: N802
        emu = self.emu
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in url.path.split("/") if p]
        if emu.token and self.headers.get("Authorization") != f"Bearer {emu.token}":
            return self._error(401, "Unauthorized", "Unauthorized")
        if parts == ["api"]:
            return self._json(200, {"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            groups = sorted({(r.group, r.version) for r in emu.resources.values() if r.group})
            return self._json(200, {"kind": "APIGroupList", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]})
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[2:]
        else:
            return self._error(404, "NotFound", f"the server could not find the requested resource {url.path}")
        version, rest = rest[0], rest[1:]
        if not rest:
            resources = [r for r in emu.resources.values() if r.group == group and r.version == version]
            if not resources:
                return self._error(404, "NotFound", f"no group version {group}/{version}")
            return self._json(200, {"kind": "APIResourceList", "groupVersion": resources[0].api_version,
                                    "resources": [{"name": r.plural, "kind": r.kind, "namespaced": r.namespaced,
                                                   "verbs": ["get", "list", "watch"]} for r in resources]})
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        resource = emu.resources.get((group, version, plural))
        if resource is None:
            return self._error(404, "NotFound", f"the server could not find the requested resource ({plural})")
        emu.requests[("watch" if query.get("watch") in ("1", "true") else "get" if name else "list", plural)] += 1
        if (plural, None) in emu.forbidden or (plural, namespace) in emu.forbidden:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            return self._error(403, "Forbidden", f'{plural} is forbidden: User "system:serviceaccount:test:exporter" '
                                                 f'cannot {"get" if name else "list"} resource "{plural}"{where}')
        if name:
            obj = emu._objects.get(plural, {}).get((namespace or "", name))
            if obj is None:
                return self._error(404, "NotFound", f'{plural} "{name}" not found')
            return self._json(200, obj)
        try:
            if query.get("watch") in ("1", "true"):
                return self._watch(resource, namespace, query)
            return self._list(resource, namespace, query)
        except BadRequest as exc:
            return self._error(400, "BadRequest", str(exc))

    def do_POST(self) -> None:  # noqa: N802
        """Only the TokenRequest subresource: POST /api/v1/namespaces/NS/serviceaccounts/NAME/token."""
        emu = self.emu
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if emu.token and self.headers.get("Authorization") != f"Bearer {emu.token}":
            return self._error(401, "Unauthorized", "Unauthorized")
        if len(parts) != 7 or parts[:3] != ["api", "v1", "namespaces"] or parts[4] != "serviceaccounts" \
                or parts[6] != "token":
            return self._error(405, "MethodNotAllowed", f"the server does not allow POST on {self.path}")
        namespace, name = parts[3], parts[5]
        emu.requests[("create", "serviceaccounts/token")] += 1
        if ("serviceaccounts/token", None) in emu.forbidden or ("serviceaccounts/token", namespace) in emu.forbidden:
            return self._error(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: cannot create resource '
                                                 f'"serviceaccounts/token" in the namespace "{namespace}"')
        if emu._objects.get("serviceaccounts", {}).get((namespace, name)) is None:
            return self._error(404, "NotFound", f'serviceaccounts "{name}" not found')
        try:
            request = json.loads(body)
            audiences = list(request["spec"]["audiences"])
        except (ValueError, KeyError, TypeError):
            return self._error(400, "BadRequest", "a TokenRequest with spec.audiences is expected")
        emu.tokens.append((namespace, name, audiences))
        token = f"emulated.{namespace}.{name}.{uuid.uuid4().hex}"
        self._json(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": request["spec"],
                         "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}})

    def _list(self, resource: Resource, namespace: str | None, query: dict) -> None:
        emu = self.emu
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""), resource.kind)
        limit = _integer(query, "limit")
        with emu._cond:
            list_rv = emu.resource_version
            after = None
            if query.get("continue"):
                try:
                    list_rv, after = _decode_continue(query["continue"])
                except (ValueError, KeyError, TypeError):
                    return self._error(400, "BadRequest", "invalid continue token")
                if list_rv < emu.compacted:
                    return self._error(410, "Expired", "The provided continue parameter is too old to display a "
                                                       "consistent list result. You can start a new list without "
                                                       "the continue parameter.")
            keys = emu._keys(resource.plural)
            store = emu._objects.get(resource.plural, {})
            start = 0
            if after is not None:
                import bisect
                start = bisect.bisect_right(keys, after)
            items, last, more = [], None, False
            for index in range(start, len(keys)):
                key = keys[index]
                if namespace and key[0] != namespace:
                    continue
                obj = store.get(key)
                if obj is None:
                    continue
                if not labels(obj["metadata"].get("labels") or {}) or not fields(obj):
                    continue
                if limit and len(items) >= limit:
                    more = True
                    break
                items.append(obj)
                last = key
        metadata = {"resourceVersion": str(list_rv)}
        if more and last is not None:
            metadata["continue"] = _encode_continue(list_rv, last)
        body = orjson.dumps({"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                             "metadata": metadata, "items": items})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _client_left(self) -> bool:
        """The client closed its end (nothing more will be read: the watch can end)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, resource: Resource, namespace: str | None, query: dict) -> None:
        emu = self.emu
        labels = label_matcher(query.get("labelSelector", ""))
        fields = field_matcher(query.get("fieldSelector", ""), resource.kind)
        timeout = float(_integer(query, "timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true") and bool(emu.bookmark_interval)
        since = _integer(query, "resourceVersion")

        def matches(obj: dict | None) -> bool:
            return (obj is not None and not (namespace and obj["metadata"].get("namespace") != namespace)
                    and labels(obj["metadata"].get("labels") or {}) and fields(obj))

        with emu._cond:  # the request is open from here: a drop_watches() from now on ends it
            generation, error = emu._watch_generation, emu.watch_error
            current = emu.resource_version
        if error:
            return self._error(error, "InternalError", "an error on the server prevented the watch")
        if since > current and emu.future_versions == "reject":  # what the apiserver's watch cache answers
            status = _status(504, "Timeout", f"Too large resource version: {since}, current: {current}")
            status["details"] = {"causes": [{"reason": "ResourceVersionTooLarge",
                                             "message": "Too large resource version"}], "retryAfterSeconds": 1}
            return self._json(504, status)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + (emu.bookmark_interval or 0)
        with emu._cond:
            emu.open_watches += 1
            emu.watching[resource.plural] += 1
            injected = len(emu._injected)
        try:
            with emu._cond:
                expired = bool(since) and since < emu.compacted
                if not since:
                    since = emu.resource_version
            if expired:
                status = _status(410, "Expired", f"too old resource version: {since} ({emu.compacted})")
                self._chunk(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            while True:
                # gather under the lock, write without it: a slow reader never blocks the cluster
                with emu._cond:
                    if emu._watch_generation != generation:
                        self.close_connection = True
                        return  # dropped: the stream ends abruptly, without the final chunk
                    pending = [e for e in emu._events if e[0] > since]
                    if pending:
                        since = pending[-1][0]
                    current_rv = emu.resource_version
                    raw = [line for plural, line in emu._injected[injected:] if plural == resource.plural]
                    injected = len(emu._injected)
                lines = []
                for rv, kind, plural, obj, previous in pending:
                    if plural == resource.plural:
                        event = _as_seen(kind, obj, previous, matches)
                        if event is not None:
                            lines.append(orjson.dumps({"type": event[0], "object": event[1]}) + b"\n")
                lines += raw
                if lines:
                    self._chunk(b"".join(lines))
                now = time.monotonic()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:  # the server's own version, as an apiserver's bookmark
                    mark = {"kind": resource.kind, "apiVersion": resource.api_version,
                            "metadata": {"resourceVersion": str(current_rv)}}
                    self._chunk(orjson.dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                    next_bookmark = now + emu.bookmark_interval
                with emu._cond:
                    if not any(e[0] > since for e in emu._events[-1:]) and emu._watch_generation == generation \
                            and len(emu._injected) == injected:
                        wait_until = min(deadline, next_bookmark) if bookmarks else deadline
                        # wake now and then to see whether the client left, as an apiserver sees a closed
                        # connection at once: `watching` counts the watches a client holds, not stale ones
                        emu._cond.wait(timeout=min(0.2, max(0.0, wait_until - time.monotonic())))
                if self._client_left():
                    self.close_connection = True
                    return
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with emu._cond:
                emu.open_watches -= 1
                emu.watching[resource.plural] -= 1


def _integer(query: dict, name: str) -> int:
    """An integer query parameter (0 when absent); BadRequest otherwise, as the apiserver's decoding answers."""
    text = query.get(name) or "0"
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name}: Invalid value: \"{text}\": must be an integer") from None


def _as_seen(kind: str, obj: dict, previous: dict | None, matches) -> tuple[str, dict] | None:
    """The event a watch with a selector sees for a change, as the apiserver's cacher converts it: an object
    that starts matching is ADDED, one that stops matching is DELETED with its previous content at the event's
    version (`convertToWatchEvent`, k8s.io/apiserver pkg/storage/cacher/cache_watcher.go)."""
    if kind == "DELETED":
        return (kind, obj) if matches(obj) else None
    now, before = matches(obj), matches(previous)
    if now:
        return ("MODIFIED" if before else "ADDED", obj)
    if before:
        gone = copy.deepcopy(previous)
        gone["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        return "DELETED", gone
    return None
