"""Where expected lists come from — files, directories, http(s) URLs, ConfigMaps — and reloading them.

A source spec is `[NAME=]SOURCE`: a file or directory path, an `http(s)://` URL, or
`configmap:NAMESPACE/NAME[/KEY]`. Each source is one list, named by NAME, else the file stem or the
ConfigMap name; a directory gives one list per file (`*.txt`, `*.list`, `*.json`), named by stem.

`ExpectedLists.refresh_spec()` re-reads one source, cheaply (the loader, `loader.py`, calls it for each source
on its own schedule, off the serve cycle; `refresh()` reads them all now): a file only when its mtime, size or
inode changed, a URL with a conditional GET, a ConfigMap only when its resourceVersion changed. A source
that fails — unreadable, unparseable, of the wrong shape, empty, too large, too slow — keeps its last good
content, is marked down with its reason and counts an error: a broken list never empties the expectations
(which would silence `expected_missing` alarms and raise `unexpected` ones for everything), and never
stops the cycle. Every read is bounded: regular files only, `MAX_LIST_BYTES` at most, a URL within `timeout`
seconds in all.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from exporter.common.files import MAX_LIST_BYTES, ReadError, read_file
from exporter.common.redact import redact, redact_url, split_userinfo
from exporter.sources.expected.formats import ListFormatError, ParsedList, parse_list

log = logging.getLogger(__name__)

LIST_SUFFIXES = (".txt", ".list", ".json")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Images = dict[str, frozenset[str]]
# (namespace, name) -> the ConfigMap object, or None when it is absent or not readable; SourceError on failure
ConfigMapReader = Callable[[str, str], Mapping[str, Any] | None]


class SourceError(Exception):
    """A source that cannot be read now, or a spec that names no source at all."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One parsed `--expected` value."""

    kind: str  # file | directory | url | configmap (a path is a file or directory when it is read)
    location: str  # path, URL, or NAMESPACE/NAME
    name: str = ""  # list name given with NAME=
    key: str = ""  # ConfigMap data key

    @property
    def display(self) -> str:
        """The source as logs, metrics and errors show it: a URL without user info or query values."""
        if self.kind == "url":
            return redact_url(self.location)
        if self.kind == "configmap":
            return f"configmap:{self.location}" + (f"/{self.key}" if self.key else "")
        return redact(self.location)  # a path may read as user:pass@host


def parse_spec(text: str) -> Spec:
    """`[NAME=]SOURCE` into a Spec; SourceError when it cannot name a source."""
    name, sep, rest = text.partition("=")
    if not (sep and _NAME.fullmatch(name)):
        name, rest = "", text
    rest = rest.strip()
    if not rest:
        raise SourceError(f"expected list {redact(text)!r}: no source after the name")
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", rest)
    if scheme and scheme.group(1).lower() in ("http", "https"):  # schemes are case-insensitive (RFC 3986)
        return Spec("url", scheme.group(1).lower() + rest[len(scheme.group(1)):], name)
    if rest[:len("configmap:")].lower() == "configmap:":
        parts = rest[len("configmap:"):].split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SourceError(f"expected list {redact(text)!r}: write configmap:NAMESPACE/NAME or configmap:NAMESPACE/NAME/KEY")
        return Spec("configmap", f"{parts[0]}/{parts[1]}", name, parts[2] if len(parts) == 3 else "")
    if scheme:
        raise SourceError(f"expected list {redact(text)!r}: only http(s) URLs are read")
    return Spec("file", rest, name)


@dataclass
class ListState:
    """One list: its last good content and how loading it went (the `kube_image_expected_list_*` series)."""

    name: str
    source: str
    images: Images | None = None  # last good content; None until a load succeeds
    up: bool = False
    errors: int = 0
    loaded_at: float | None = None  # wall time of the last successful load
    version: Any = None  # what tells a change: file stat, ETag, resourceVersion
    last_error: str = ""  # why the last reading failed ("" while up)
    loading: bool = False  # its first reading is under way: neither content nor a failure is known yet


@dataclass
class ExpectedLists:
    """All configured lists, refreshed in place (one reading of a source at a time; readings of different sources
    may run at once, in the loader's threads, while the cycle reads `lists` and `health()`)."""

    specs: list[Spec]
    read_configmap: ConfigMapReader | None = None
    transport: httpx.BaseTransport | None = None  # tests inject one; None means the network
    timeout: float = 15.0
    states: dict[tuple[str, str | None], ListState] = field(default_factory=dict)  # (spec source, list name) -> state

    @classmethod
    def of(cls, sources: Iterable[str], **kwargs) -> "ExpectedLists":
        return cls([parse_spec(s) for s in sources], **kwargs)

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=self.timeout, follow_redirects=True, transport=self.transport)
        self._lock = threading.Lock()  # over `states`: a reading fetches without it, then updates under it
        self._closed = False
        for spec in self.specs:  # shown as loading until its first reading ends
            key = (spec.display, None) if spec.kind == "file" and Path(spec.location).is_dir() else None
            name = redact(Path(spec.location).name) if key else _list_name(spec)
            self.states[key or (spec.display, name)] = ListState(name, spec.display, loading=True)

    def close(self) -> None:
        self._closed = True  # a reading cut short by the close is no failure of its source
        self._client.close()

    @property
    def lists(self) -> dict[str, Images]:
        """{list name: {image: units}} of every list that has loaded once (a later failure keeps it)."""
        merged: dict[str, Images] = {}
        with self._lock:
            for state in self.states.values():
                if state.images is not None:
                    merged[state.name] = {**merged.get(state.name, {}), **state.images}
        return merged

    def health(self) -> list[ListState]:
        """A copy of every list's state, as it is now."""
        with self._lock:
            return [replace(state) for state in self.states.values()]

    def loading(self) -> list[str]:
        """The lists whose first reading is still under way."""
        with self._lock:
            return sorted({state.name for state in self.states.values() if state.loading})

    def refresh(self) -> None:
        """Re-read every source whose content may have changed; failures are logged and counted, never raised."""
        for spec in self.specs:
            self.refresh_spec(spec)

    def refresh_spec(self, spec: Spec) -> None:
        """Re-read one source if its content may have changed; failures are logged and counted, never raised."""
        if spec.kind == "url":
            self._load(spec, _list_name(spec), self._fetch_url)
        elif spec.kind == "configmap":
            self._load(spec, _list_name(spec), self._fetch_configmap)
        elif Path(spec.location).is_dir():
            self._refresh_directory(spec)
        else:
            self._load(spec, _list_name(spec), lambda s, v: _read_file(Path(s.location), v))

    # -- one list --

    def _state(self, spec: Spec, name: str) -> ListState:
        key = (spec.display, name)
        with self._lock:
            if key not in self.states:
                self.states[key] = ListState(name, spec.display, loading=True)
            return self.states[key]

    def _load(self, spec: Spec, name: str, fetch: Callable[[Spec, Any], tuple[Any, list[tuple[bytes, str]]] | None],
              origin: str | None = None) -> None:
        state = self._state(spec, name)
        try:
            fetched = fetch(spec, state.version)
            if fetched is None:  # unchanged since the last good load
                with self._lock:
                    state.up = True
                return
            version, documents = fetched
            images = _parse_all(documents)
        except (SourceError, ListFormatError) as exc:
            self._failed(state, name, origin or spec.display, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 (a source never stops the cycle; the reason is kept)
            self._failed(state, name, origin or spec.display, f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            state.images, state.version, state.up, state.loaded_at = images, version, True, time.time()
            state.last_error, state.loading = "", False
        log.info("expected list %s loaded from %s: %d images", name, origin or spec.display, len(images))

    def _failed(self, state: ListState, name: str, origin: str, reason: str) -> None:
        if self._closed:
            return
        with self._lock:
            state.up, state.errors, state.last_error, state.loading = False, state.errors + 1, redact(reason), False
        kept = "keeping the last good content" if state.images is not None else "no content yet"
        log.error("expected list %s (%s) not loaded: %s; %s", name, origin, state.last_error, kept)

    def _refresh_directory(self, spec: Spec) -> None:
        directory = Path(spec.location)
        own_key = (spec.display, None)  # the directory's own state: up unless it cannot be read
        try:
            files = sorted(p for p in directory.iterdir()
                           if p.suffix in LIST_SUFFIXES and not p.name.startswith(".") and p.is_file())
        except OSError as exc:
            with self._lock:
                state = self.states.setdefault(own_key, ListState(directory.name, spec.display))
                state.up, state.errors, state.loading = False, state.errors + 1, False
            log.error("expected lists in %s not read: %s", directory, exc.strerror)
            return
        present = {p.stem for p in files}
        with self._lock:
            self.states.pop(own_key, None)
            for key, state in list(self.states.items()):
                if key[0] == spec.display and state.name not in present:
                    log.info("expected list %s removed: %s/%s is gone", state.name, directory, state.name)
                    del self.states[key]  # a file deleted from the directory is a list withdrawn on purpose
        for path in files:
            self._load(spec, path.stem, lambda s, v, path=path: _read_file(path, v), origin=str(path))

    # -- fetching: (new version, [(content, origin)]) or None when unchanged --

    def _fetch_url(self, spec: Spec, version: Any) -> tuple[Any, list[tuple[bytes, str]]] | None:
        headers = {}
        if version:
            etag, modified = version
            if etag:
                headers["If-None-Match"] = etag
            if modified:
                headers["If-Modified-Since"] = modified
        url, user, password = split_userinfo(spec.location)  # the user info is sent as auth, never in a URL
        auth = (user, password or "") if user else None
        deadline = time.monotonic() + self.timeout  # in all: a server dripping a byte at a time is cut off too
        try:
            with self._client.stream("GET", url, headers=headers, auth=auth) as response:
                if response.status_code == 304:
                    return None
                if response.status_code != 200:
                    raise SourceError(f"HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_LIST_BYTES:
                        raise SourceError(f"larger than {MAX_LIST_BYTES // (1024 * 1024)} MiB")
                    if time.monotonic() > deadline:
                        raise SourceError(f"not read within {self.timeout:g}s")
                new_version = (response.headers.get("ETag"), response.headers.get("Last-Modified"))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SourceError(f"{type(exc).__name__}: {redact(str(exc))}") from None
        return new_version, [(bytes(body), spec.display)]

    def _fetch_configmap(self, spec: Spec, version: Any) -> tuple[Any, list[tuple[bytes, str]]] | None:
        if self.read_configmap is None:
            raise SourceError("ConfigMap lists need a cluster")
        namespace, name = spec.location.split("/")
        obj = self.read_configmap(namespace, name)
        if obj is None:
            raise SourceError(f"ConfigMap {namespace}/{name} not found or not readable")
        resource_version = (obj.get("metadata") or {}).get("resourceVersion") or None
        if version is not None and resource_version == version:
            return None
        entries = _configmap_entries(obj)
        if spec.key:
            if spec.key not in entries:
                raise SourceError(f"ConfigMap {namespace}/{name} has no key {spec.key!r}")
            entries = {spec.key: entries[spec.key]}
        if not entries:
            raise SourceError(f"ConfigMap {namespace}/{name} has no data")
        return resource_version, [(content, f"{spec.display} key {key}") for key, content in sorted(entries.items())]


def _read_file(path: Path, version: Any) -> tuple[Any, list[tuple[bytes, str]]] | None:
    try:
        stat = path.stat()  # never blocks, not even on a FIFO
    except OSError as exc:
        raise SourceError(exc.strerror or str(exc)) from None
    if (stat.st_mtime_ns, stat.st_size, stat.st_ino) == version:
        return None
    try:
        stat, content = read_file(path, MAX_LIST_BYTES)
    except ReadError as exc:
        raise SourceError(str(exc)) from None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino), [(content, str(path))]


def _configmap_entries(obj: Mapping[str, Any]) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        if isinstance(value, str):
            entries[key] = value.encode()
    for key, value in (obj.get("binaryData") or {}).items():
        try:
            entries[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise SourceError(f"binaryData key {key!r} is not base64") from None
    return entries


def _parse_all(documents: list[tuple[bytes, str]]) -> Images:
    images: Images = {}
    for content, origin in documents:
        parsed: ParsedList = parse_list(content, origin)
        for problem in parsed.problems:
            log.warning("%s", problem)
        for image, units in parsed.images.items():
            images[image] = images.get(image, frozenset()) | units
    if not images:
        raise SourceError("no image in it (an empty list is treated as a failed load)")
    return images


def _list_name(spec: Spec) -> str:
    """The name of a source's list (a directory's lists are named by their files)."""
    if spec.name:
        return spec.name
    if spec.kind == "url":
        return _url_stem(spec.location)
    if spec.kind == "configmap":
        return spec.location.split("/")[1]
    return redact(Path(spec.location).stem)


def _url_stem(url: str) -> str:
    bare = split_userinfo(url)[0].partition("://")[2]
    host, _, path = bare.split("?", 1)[0].split("#", 1)[0].partition("/")
    return Path(path.rstrip("/")).stem or host.rsplit(":", 1)[0] or "list"
