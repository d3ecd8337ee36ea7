"""Helm release storage: the images every kept revision of a release would run if rolled back to.

Helm 3 keeps each revision in a Secret (default driver) or a ConfigMap of the same name and labels
(`owner=helm`, `name`, `version`, `status`); its `release` key holds base64 of gzip of the release JSON
(a Secret's `data` adds the API's own base64 on top). The JSON's `manifest` is the rendered YAML. This module
decodes one such object into the images of its pod templates and nothing else, with bounded work: the
decompressed release is capped, and only YAML documents that mention containers are parsed. The decoded
release is dropped as soon as its images are extracted. Every field read is checked for its type first
(an object of another shape is `corrupt`, counted and skipped, never a crash of the reflector or a
dict turned into an "image" string), and nesting deeper than Python's recursion limit is `corrupt` too.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from exporter.sources.kube.objects import CONTAINER_KEYS, pod_spec

log = logging.getLogger(__name__)

MAX_RELEASE_BYTES = 32 * 1024 * 1024  # decompressed; Kubernetes caps the stored object at 1 MiB compressed
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: ~20x faster


class ReleaseError(ValueError):
    """A release object that cannot be decoded; `reason` is `too_large` or `corrupt`."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PodImages:
    """One pod template's images and what the kubelet would pull them with."""

    images: tuple[str, ...]
    pull_secrets: tuple[str, ...] = ()
    service_account: str = "default"


@dataclass(frozen=True, slots=True)
class Release:
    """One kept revision of one release: what a rollback to it would pull."""

    namespace: str
    name: str
    revision: int
    status: str
    pods: tuple[PodImages, ...]


def decode(obj: Mapping[str, Any], max_bytes: int = MAX_RELEASE_BYTES) -> Release:
    """A release Secret or ConfigMap into its revision's pod images; ReleaseError when it cannot be."""
    meta = _mapping(obj.get("metadata"), "object", "metadata")
    where = f"{obj.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')}"
    labels = _mapping(meta.get("labels"), where, "labels")
    encoded = _mapping(obj.get("data"), where, "data").get("release")
    if not isinstance(encoded, str):
        raise ReleaseError(f"{where}: no release key", "corrupt")
    release = _release_json(_inflate(_unbase64(encoded, obj.get("kind") == "Secret", where), max_bytes, where), where)
    manifest = _text(release.get("manifest"), where, "manifest")
    info = _mapping(release.get("info"), where, "info")
    return Release(
        namespace=_text(release.get("namespace") or meta.get("namespace"), where, "namespace"),
        name=_text(release.get("name") or labels.get("name"), where, "name"),
        revision=_revision(release.get("version") or labels.get("version") or 0, where),
        status=_text(info.get("status") or labels.get("status"), where, "status"),
        pods=tuple(pod_images(manifest, where)),
    )


def _unbase64(encoded: str, secret: bool, where: str) -> bytes:
    """Helm's base64 (and the API's around it for a Secret's data)."""
    try:
        raw = encoded.encode()
        if secret:
            raw = base64.b64decode(raw, validate=True)
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ReleaseError(f"{where}: release is not base64", "corrupt") from None


def _inflate(compressed: bytes, max_bytes: int, where: str) -> bytes:
    """Gzip undone, never past `max_bytes` (a small Secret may inflate to gigabytes); plain JSON as it is."""
    if compressed[:2] != b"\x1f\x8b":  # Helm only compresses when it helps; plain JSON is valid too
        if len(compressed) > max_bytes:
            raise ReleaseError(f"{where}: release larger than {max_bytes // (1024 * 1024)} MiB", "too_large")
        return compressed
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(compressed, max_bytes + 1)
    except zlib.error as exc:
        raise ReleaseError(f"{where}: release is not gzip ({exc})", "corrupt") from None
    if len(text) > max_bytes or inflater.unconsumed_tail:
        raise ReleaseError(f"{where}: release larger than {max_bytes // (1024 * 1024)} MiB decoded", "too_large")
    return text


def _release_json(text: bytes, where: str) -> dict:
    try:
        release = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ReleaseError(f"{where}: release is not JSON", "corrupt") from None
    if not isinstance(release, dict):
        raise ReleaseError(f"{where}: release is not a JSON object", "corrupt")
    return release


def _revision(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ReleaseError(f"{where}: revision {value!r} is not a number", "corrupt")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ReleaseError(f"{where}: revision {value!r} is not a number", "corrupt") from None


def _mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    """`value` when it is a mapping, {} when absent; ReleaseError for any other type."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReleaseError(f"{where}: {what} is a {type(value).__name__}, not an object", "corrupt")
    return value


def _text(value: Any, where: str, what: str) -> str:
    """`value` when it is a string, "" when absent; ReleaseError for any other type."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReleaseError(f"{where}: {what} is a {type(value).__name__}, not a string", "corrupt")
    return value


def pod_images(manifest: str, where: str = "manifest") -> Iterator[PodImages]:
    """The pod specs of a rendered manifest: any object holding a `containers` list, at any depth."""
    for document in manifest.split("\n---"):
        if "containers:" not in document and "Containers:" not in document:
            continue  # most documents (Services, ConfigMaps, RBAC) have no pod spec: not parsed at all
        try:
            data = yaml.load(document, Loader=_Loader)  # noqa: S506 (a safe loader)
            pods = list(_walk(data, where))
        except yaml.YAMLError as exc:
            raise ReleaseError(f"{where}: manifest is not YAML ({str(exc).splitlines()[0]})", "corrupt") from None
        except RecursionError:
            raise ReleaseError(f"{where}: manifest nested too deep", "corrupt") from None
        yield from pods


def _walk(node: Any, where: str) -> Iterator[PodImages]:
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            _check_shapes(node, where)
            spec = pod_spec(node)
            images = tuple(c.image for c in spec.containers if c.image)
            if images:
                yield PodImages(images, spec.pull_secrets, spec.service_account)
        for value in node.values():
            yield from _walk(value, where)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, where)


def _check_shapes(spec: Mapping[str, Any], where: str) -> None:
    """ReleaseError when the parts of a pod spec that are read have another type than the API allows (a
    rendered manifest is not validated by an API server: a map where an image belongs must not become one)."""
    for key, _ in CONTAINER_KEYS:
        for container in _list(spec.get(key), where, key):
            if isinstance(container, dict) and container.get("image") is not None:
                _image(container["image"], where)
    _list(spec.get("imagePullSecrets"), where, "imagePullSecrets")
    _text(spec.get("serviceAccountName") or spec.get("serviceAccount"), where, "serviceAccountName")


def _list(value: Any, where: str, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReleaseError(f"{where}: {what} is a {type(value).__name__}, not a list", "corrupt")
    return value


def _image(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ReleaseError(f"{where}: an image is a {type(value).__name__}, not a string", "corrupt")
    return value


class Decoder:
    """`decode` as a reflector's trim: failures are logged, counted by (namespace, reason), and kept as None
    (the object stays known, so a later fix of it is decoded again). Safe across reflector threads."""

    def __init__(self, max_bytes: int = MAX_RELEASE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.errors: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, obj: Mapping[str, Any]) -> Release | None:
        try:
            return decode(obj, self.max_bytes)
        except Exception as exc:  # noqa: BLE001 (one release never stops the others; counted as corrupt)
            reason = exc.reason if isinstance(exc, ReleaseError) else "corrupt"
            meta = obj.get("metadata") if isinstance(obj, Mapping) else None
            namespace = meta.get("namespace") if isinstance(meta, Mapping) else ""
            with self._lock:
                self.errors[(str(namespace or ""), reason)] += 1
            log.warning("release skipped: %s", exc if isinstance(exc, ReleaseError) else f"{type(exc).__name__}: {exc}")
            return None

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.errors)
