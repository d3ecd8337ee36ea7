"""One cluster's API, read as raw JSON through the official client's authenticated transport.

The kubernetes client handles kubeconfig auth (tokens, client certificates, exec plugins, CA); this
module only asks it for raw responses: building model objects for 50,000 pods is far too slow, and the
exporter keeps a few fields of each anyway. Client and urllib3 errors become `ApiError` here, with a few
words for the cause (never urllib3's 300-character repr), so callers never see a library exception. The
client library's own retries are off (see `kube.clusters`): the reflector backs off, and retries under it
only multiplied the time and the log lines of an outage.

Given `fields` (a TypedDict: `objects.ObjectFields`, what `trim` reads), list pages and watch events are decoded with
those fields only (msgspec; the rest skipped, never built), and what does not fit them is parsed whole and judged as
before. Listing and inventorying a generated 50,000-pod cluster peaked at 197 MB parsed whole, 172 MB decoded so
(`scripts/profile_serve.py --pods 50000`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict

import msgspec
import orjson
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from exporter.sources.kube.errors import ApiError

log = logging.getLogger(__name__)

CORE_GROUP = ""


class Expired(ApiError):
    """The server cannot serve from the resourceVersion asked for: list again.

    410 Gone: the version or continue token is older than the server's history. 504 "Too large resource
    version": it is newer than anything the server has, as after a restore of etcd from a backup.
    """


class Garbled(ApiError):
    """The server answered with something that is not what the API sends: a line of a watch that is not an
    event, a list that is not a list. The message says what was wrong, never the content."""


EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def _shape(value: object) -> str:
    return "null" if value is None else type(value).__name__


@lru_cache(maxsize=8)
def _decoders(fields: type) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """Decoders of a list page and of a watch event whose objects are read as `fields` (a TypedDict) says."""
    page = TypedDict("Page", {"metadata": Any, "items": list[fields]}, total=False)  # type: ignore[misc,valid-type]
    event = TypedDict("Event", {"type": Any, "object": fields}, total=False)  # type: ignore[misc,valid-type]
    return msgspec.json.Decoder(page), msgspec.json.Decoder(event)


def _partial(decoder: msgspec.json.Decoder | None, data: bytes) -> Any:
    """`data` decoded as `decoder`'s types say (the fields wanted only), or None when it does not fit them (then it is
    parsed whole, and what is wrong with it said as it always was)."""
    if decoder is None:
        return None
    try:
        return decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _event(where: str, line: bytes, fields: type | None = None) -> tuple[str, dict]:
    """(type, object) of one line of a watch; Garbled for anything an apiserver would not send. With `fields`, the
    object holds those fields only (an ERROR event's status is read whole)."""
    event = _partial(_decoders(fields)[1] if fields else None, line)
    if event is None or event.get("type") == "ERROR":
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise Garbled(f"{where}: a line of the stream is not JSON") from None
    if not isinstance(event, dict):
        raise Garbled(f"{where}: a line of the stream is a JSON {_shape(event)}, not an event")
    kind_of_event, obj = event.get("type"), event.get("object")
    if kind_of_event not in EVENT_TYPES:
        shown = repr(kind_of_event)[:40] if isinstance(kind_of_event, str) else _shape(kind_of_event)
        raise Garbled(f"{where}: an event of unknown type {shown}")
    if not isinstance(obj, dict):
        raise Garbled(f"{where}: an event of type {kind_of_event} whose object is {_shape(obj)}, not an object")
    if not isinstance(obj.get("metadata", {}), dict):
        raise Garbled(f"{where}: an event of type {kind_of_event} whose metadata is {_shape(obj['metadata'])}, "
                      "not a mapping")
    return kind_of_event, obj


def _page(where: str, page: object) -> tuple[list[dict], dict]:
    """(items, metadata) of one page of a list; Garbled when it is not shaped as a list."""
    if not isinstance(page, dict):
        raise Garbled(f"{where}: the answer is a JSON {_shape(page)}, not a list")
    items, metadata = page.get("items") or [], page.get("metadata") or {}
    if not isinstance(items, list) or not isinstance(metadata, dict):
        raise Garbled(f"{where}: the answer is not shaped as a list (items {_shape(items)}, "
                      f"metadata {_shape(metadata)})")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("metadata", {}), dict):
            raise Garbled(f"{where}: an item of the list is {_shape(item)}, not an object")
    return items, metadata


def _too_large(status: int, message: str, body: dict) -> bool:
    """The apiserver's ResourceVersionTooLarge answer (client-go's `IsTooLargeResourceVersion`)."""
    causes = ((body.get("details") or {}).get("causes") or []) if isinstance(body, dict) else []
    return status == 504 and ("Too large resource version" in message
                              or any(isinstance(c, dict) and c.get("reason") == "ResourceVersionTooLarge"
                                     for c in causes))


def _error(prefix: str, status: int, message: str, body: dict | None = None) -> ApiError:
    error = Expired if status == 410 or _too_large(status, message, body or {}) else ApiError
    return error(f"{prefix}: {status} {message}", status)


def _why(exc: BaseException) -> str:
    """A few words for a transport failure ("connection refused", "timed out"): the socket's own error where the
    chain of causes has one, else urllib3's short message, never its 300-character repr."""
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__, getattr(current, "reason", None),
                                *current.args) if isinstance(e, BaseException))
    for current in chain:
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({current.reason or current.strerror})"
        if isinstance(current, socket.gaierror):
            return "host name not resolved"
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
    for current in chain:
        if isinstance(current, urllib3.exceptions.TimeoutError):
            return "timed out"
        if isinstance(current, urllib3.exceptions.HTTPError) and current.args and isinstance(current.args[0], str):
            return current.args[0].split(":")[0].lower().rstrip(".")
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    api_version: str
    kind: str
    plural: str
    namespaced: bool


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = []
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


class ClusterClient:
    """Raw GET/LIST/WATCH against one cluster; `name` is the `cluster` label of its metrics."""

    def __init__(self, name: str, api_client: ApiClient, timeout: float = 30.0) -> None:
        self.name = name
        self._api = api_client
        self._timeout = timeout
        self._resources: dict[tuple[str, str], ResourceInfo | None] = {}

    # -- transport --

    def _request(self, path: str, query: list[tuple[str, Any]] | None = None, stream_timeout: float | None = None):
        method, url, headers, body, post = self._api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        timeout = (10.0, stream_timeout) if stream_timeout is not None else self._timeout
        try:
            response = self._api.call_api(method, url, headers, body, post, _request_timeout=timeout)
        except ApiException as exc:
            raise ApiError(f"{self.name}: GET {path}: {exc.reason}", exc.status or 0) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"{self.name}: GET {path}: cannot reach the API server ({_why(exc)})") from None
        except ValueError:  # http.client refuses a header (its message quotes the value: a token, never logged)
            raise ApiError(f"{self.name}: GET {path}: the request cannot be sent (a header value is not valid: "
                           f"the kubeconfig's credentials?)") from None
        raw = response.response
        if raw.status >= 400:
            body: dict = {}
            try:
                body = orjson.loads(raw.data)
                message = body.get("message") or raw.reason
            except (orjson.JSONDecodeError, AttributeError, urllib3.exceptions.HTTPError, OSError):
                body, message = {}, raw.reason
            finally:
                raw.release_conn()
            raise _error(f"{self.name}: GET {path}", raw.status, str(message), body)
        return raw

    def _get_json(self, path: str, query: list[tuple[str, Any]] | None = None,
                  decoder: msgspec.json.Decoder | None = None) -> dict:
        raw = self._request(path, query)
        try:
            data = raw.data
            partial = _partial(decoder, data)
            return partial if partial is not None else orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ApiError(f"{self.name}: GET {path}: the answer is not JSON") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"{self.name}: GET {path}: connection lost ({_why(exc)})") from None
        finally:
            raw.release_conn()

    # -- discovery --

    def resource(self, api_version: str, kind: str) -> ResourceInfo | None:
        """Plural and scope of a kind, from discovery (cached); None when the API does not serve it."""
        key = (api_version, kind)
        if key not in self._resources:
            group, version = _split_api_version(api_version)
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                listing = self._get_json(path)
            except ApiError as exc:
                if exc.status in (403, 404):
                    self._resources[key] = None
                    return None
                raise
            for item in listing.get("resources", []):
                if "/" not in item.get("name", ""):
                    info = ResourceInfo(api_version, item["kind"], item["name"], bool(item.get("namespaced")))
                    self._resources[(api_version, item["kind"])] = info
            self._resources.setdefault(key, None)
        return self._resources[key]

    def forget_resource(self, api_version: str, kind: str) -> bool:
        """Drop a kind the API did not serve from discovery's cache, so the next use looks it up again (a CRD
        installed later is found); True when the kind was not served."""
        if (api_version, kind) in self._resources and self._resources[(api_version, kind)] is None:
            del self._resources[(api_version, kind)]
            return True
        return False

    def _path(self, info: ResourceInfo, namespace: str | None, name: str | None = None) -> str:
        group, version = _split_api_version(info.api_version)
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if info.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{info.plural}"
        return f"{base}/{name}" if name else base

    def _info(self, api_version: str, kind: str) -> ResourceInfo:
        info = self.resource(api_version, kind)
        if info is None:
            raise ApiError(f"{self.name}: the API serves no {kind} in {api_version}", 404)
        return info

    # -- ServiceAccount tokens (the node view's credential providers with tokenAttributes) --

    def create_token(self, namespace: str, name: str, audience: str, seconds: int = 600) -> str:
        """A short-lived token of a ServiceAccount for one audience (TokenRequest); ApiError on failure."""
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience], "expirationSeconds": seconds}}
        method, url, headers, data, post = self._api.param_serialize(
            method="POST", resource_path=path, body=body, auth_settings=["BearerToken"],
            header_params={"Accept": "application/json", "Content-Type": "application/json"})
        try:
            response = self._api.call_api(method, url, headers, data, post, _request_timeout=self._timeout)
        except ApiException as exc:
            raise ApiError(f"{self.name}: create token of {namespace}/{name}: {exc.reason}", exc.status or 0) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiError(f"{self.name}: create token of {namespace}/{name}: cannot reach the API server "
                           f"({type(exc).__name__})") from None
        except ValueError:  # a header refused (its message quotes the value): never logged
            raise ApiError(f"{self.name}: create token of {namespace}/{name}: the request cannot be sent "
                           f"(a header value is not valid)") from None
        raw = response.response
        try:
            if raw.status >= 400:
                raise ApiError(f"{self.name}: create token of {namespace}/{name}: {raw.status} {raw.reason}", raw.status)
            answer = orjson.loads(raw.data)
            status = answer.get("status") if isinstance(answer, dict) else None
            token = status.get("token") if isinstance(status, dict) else None
        except orjson.JSONDecodeError:
            raise ApiError(f"{self.name}: create token of {namespace}/{name}: the answer is not JSON") from None
        finally:
            raw.release_conn()
        if not isinstance(token, str) or not token:
            raise ApiError(f"{self.name}: create token of {namespace}/{name}: no token in the answer")
        return token

    # -- reads --

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """One object, or None when it is absent, forbidden or its kind is not served."""
        info = self.resource(api_version, kind)
        if info is None:
            return None
        try:
            return self._get_json(self._path(info, namespace, name))
        except ApiError as exc:
            if exc.status in (403, 404):
                log.debug("%s", exc)
                return None
            raise

    def list_pages(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        fields: type | None = None,
    ) -> Iterator[tuple[list[dict], str]]:
        """Pages of raw items with the list's resourceVersion; items get their kind and apiVersion back.

        With `fields` (a TypedDict), items hold those fields only: the rest of each object is skipped as it is
        decoded, never built; a page that does not fit them is parsed whole.
        """
        decoder = _decoders(fields)[0] if fields else None
        info = self._info(api_version, kind)
        path = self._path(info, namespace)
        token = None
        while True:
            query = [("limit", page_size), *_selectors(label_selector, field_selector)]
            if token:
                query.append(("continue", token))
            items, metadata = _page(f"{self.name}: GET {path}", self._get_json(path, query, decoder))
            for item in items:
                item["kind"] = info.kind
                item["apiVersion"] = info.api_version
            yield items, str(metadata.get("resourceVersion", ""))
            token = metadata.get("continue")
            if not token:
                return

    def list(self, api_version: str, kind: str, **kwargs) -> tuple[list[dict], str]:
        """Every item (all pages) and the resourceVersion to watch from."""
        items: list[dict] = []
        version = ""
        for page, version in self.list_pages(api_version, kind, **kwargs):
            items.extend(page)
        return items, version

    def watch(
        self,
        api_version: str,
        kind: str,
        resource_version: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        fields: type | None = None,
    ) -> "WatchStream":
        """An open watch from `resource_version`: iterate it for (type, object) events until the server ends it.

        Raises Expired when the server cannot serve from that version (410, or 504 "Too large resource version",
        as an answer or an ERROR event), ApiError when the connection fails, Garbled (an ApiError) at a line that
        is not a watch event. BOOKMARK events are passed on so
        callers can advance their version. `close()` from another thread ends it at once. With `fields`, objects
        hold those fields only, as `list_pages` reads them.
        """
        info = self._info(api_version, kind)
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout_seconds),
            *_selectors(label_selector, field_selector),
        ]
        raw = self._request(self._path(info, namespace), query, stream_timeout=timeout_seconds + 30)
        return WatchStream(f"{self.name}: watch {info.plural}", info, raw, fields)


class WatchStream:
    """The events of one open watch. A server that sends nothing leaves a reader blocked in a socket read for
    up to the watch's timeout; `close()` shuts the socket for reading so that reader wakes up now (a stop)."""

    def __init__(self, where: str, info: ResourceInfo, raw, fields: type | None = None) -> None:
        self._where = where
        self._fields = fields
        self._info = info
        self._raw = raw
        self._lock = threading.Lock()
        self._done = False
        self.closed = False

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if not self._done:
                try:
                    self._raw.shutdown()  # wakes a read blocked in another thread
                except (ValueError, RuntimeError, OSError):
                    pass  # already released or never had a socket: nothing is blocked on it

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        info, raw = self._info, self._raw
        try:
            for line in raw:
                if self.closed:
                    return
                if not line.strip():
                    continue
                kind_of_event, obj = _event(self._where, line, self._fields)
                if kind_of_event == "ERROR":
                    code = obj.get("code")
                    code = code if isinstance(code, int) and not isinstance(code, bool) else 0
                    raise _error(self._where, code, str(obj.get("message", "error"))[:200], obj)
                if kind_of_event != "BOOKMARK":
                    obj["kind"] = info.kind
                    obj["apiVersion"] = info.api_version
                yield kind_of_event, obj
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self.closed:
                return
            raise ApiError(f"{self._where}: connection lost ({_why(exc)})") from None
        finally:
            with self._lock:
                self._done = True
            if self.closed:
                raw.close()  # half shut: never back into the pool
            else:
                raw.release_conn()
