"""Objects from a file instead of a cluster: `kubectl get pods,replicasets,... -A -o json` output.

Accepts a List (`{"kind": "List", "items": [...]}`), a single object, a JSON array, or several JSON
documents one after the other (several `kubectl get -o json` outputs concatenated). Owners found in the
file are looked up from it; owners absent from it end their chain, as a forbidden owner would.

Only the fields `trim` reads are decoded (msgspec, `objects.ObjectFields`), or those a report reads
(`objects.ReportFields`, what `report --from-file` asks for); an item with a field of another shape is parsed whole and
read as before, so `trim` stays the one definition of what is kept. `report --from-file` of a generated 50,000-pod
List (`scripts/bench_report_file.py --pods 50000`, medians of 5 runs on a 2-core machine): 7.6 s and 478 MB parsed
whole, 3.9 s and 341 MB decoded typed (2.0x `json.load` of the same 51 MB file), 2.7 s and 330 MB with owners walked
once per controller, replicas' records shared and the report's chains made without the inventory's rows; 1.9 s and
237 MB (1.27x `json.load`'s 1.5 s) decoding only what a report reads, with records made in C (msgspec Structs) and
the common image shape normalized without the library.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, TypedDict

import msgspec
import orjson

from exporter.common.files import Malformed, ReadError, TooLarge, check_json_depth, decode, read_file
from exporter.sources.kube.objects import (
    CONTAINER_KEYS,
    ObjectFields,
    Pod,
    ReportFields,
    Trimmed,
    Workload,
    pod_spec_path,
    trim,
)
from exporter.sources.kube.owners import Lookup, meta_of

# `kubectl get pods -A -o json` prints a few KB a pod: 1 GiB holds far more than the largest clusters; a larger
# file (or a device that never ends) is refused unread rather than read into memory
MAX_BYTES = 1024 * 1024 * 1024


class ListFileError(ValueError):
    """The file is not a Kubernetes object list; the message says where it goes wrong."""


# Items decoded as `objects.ObjectFields` says (what `trim` reads, the rest skipped), or `objects.ReportFields` (what a
# report reads); one that does not fit is parsed whole and read as before.
class _List(ObjectFields, total=False):
    items: list[ObjectFields]


class _ReportList(ReportFields, total=False):
    items: list[ReportFields]


class _RawList(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: Any
    items: list[msgspec.Raw]


class _Decoders:
    """The decoders of one set of fields: the whole file, when every item fits the types; an item, a list."""

    def __init__(self, fields: type, list_type: type) -> None:
        self.document = msgspec.json.Decoder(list_type | list[list_type])
        self.object = msgspec.json.Decoder(fields)
        self.list = msgspec.json.Decoder(list_type)


_DECODERS = {ObjectFields: _Decoders(ObjectFields, _List), ReportFields: _Decoders(ReportFields, _ReportList)}
_raw_document = msgspec.json.Decoder(_RawList | list[msgspec.Raw])  # the items left unparsed, one by one after


def _documents(content: bytes, origin: str, fields: type = ObjectFields) -> Iterator[Any]:
    """The documents of the file, each object holding at least `fields` (only those, mostly)."""
    decoders = _DECODERS[fields]
    try:
        yield decoders.document.decode(content)
        return
    except msgspec.ValidationError:
        pass  # some item has a field of another shape: decode the others typed, parse it whole
    except msgspec.DecodeError:
        yield from _parsed_documents(decode(content), origin)  # not one JSON document: several, or none
        return
    try:
        document = _raw_document.decode(content)
    except msgspec.ValidationError:
        yield orjson.loads(content)  # `items` is not a list (or not there): read as it is
        return
    if isinstance(document, list):
        yield [_typed_or_whole(decoders.list, raw) for raw in document]
    elif "items" in document:
        yield {**document, "items": [_typed_or_whole(decoders.object, raw) for raw in document["items"]]}
    else:
        yield orjson.loads(content)


def _typed_or_whole(decoder: msgspec.json.Decoder, raw: msgspec.Raw) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        return orjson.loads(memoryview(raw))


def _parsed_documents(text: str, origin: str) -> Iterator[Any]:
    """Every document of a text that is not one JSON document, parsed whole (several `kubectl` outputs in a row)."""
    try:
        yield orjson.loads(text)
        return
    except orjson.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    position, length = 0, len(text)
    while position < length:
        while position < length and text[position].isspace():
            position += 1
        if position >= length:
            break
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ListFileError(f"{origin} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        yield document


def _items(document: Any, origin: str) -> Iterator[dict]:
    if isinstance(document, list):
        for item in document:
            yield from _items(item, origin)
    elif isinstance(document, dict):
        if isinstance(document.get("items"), list):
            list_kind = str(document.get("kind", ""))
            item_kind = list_kind[:-4] if list_kind.endswith("List") and list_kind != "List" else None
            for index, item in enumerate(document["items"]):
                if not isinstance(item, dict):
                    raise ListFileError(f"{origin}: item {index} is a {type(item).__name__}, not an object")
                if item_kind and "kind" not in item:  # typed lists (PodList) leave kind out of items
                    item = {**item, "kind": item_kind, "apiVersion": document.get("apiVersion", "")}
                yield item
        elif "kind" in document and "metadata" in document:
            yield document
        else:
            raise ListFileError(f"{origin} holds neither a List with items nor a Kubernetes object")
    else:
        raise ListFileError(f"{origin} holds a {type(document).__name__}, not Kubernetes objects")


def load(path: str | Path, label_keys: Iterable[str] = (), fields: type = ObjectFields) -> "ObjectIndex":
    """Read and trim every object of the file, decoding `fields` of each (`objects.ObjectFields`: all `trim` reads;
    `objects.ReportFields`: what a report reads); ListFileError when the file cannot be used."""
    path = Path(path)
    try:
        content = read_file(path, MAX_BYTES)[1]
        decode(content)  # binary content says so before a parser does
        check_json_depth(content)  # before any parser, or `_items`, recurses into it
    except TooLarge as exc:
        raise ListFileError(f"{path}: {exc}, the most a pod list may hold") from None
    except Malformed as exc:
        raise ListFileError(f"{path}: {exc} (expected kubectl JSON output)") from None
    except ReadError as exc:
        raise ListFileError(f"cannot read {path}: {exc}") from None
    keys = tuple(label_keys)
    objects, skipped = [], []
    for document in _documents(content, str(path), fields):
        for item in _items(document, str(path)):
            problem = _malformed(item)
            if problem:
                meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
                skipped.append(f"{item.get('kind')} {meta.get('namespace')}/{meta.get('name')}: {problem}")
            else:
                objects.append(trim(item, keys))
    return ObjectIndex(objects, skipped)


def _malformed(item: dict) -> str | None:
    """Why an object cannot be read as the kind it says it is (None when it can): a pod spec whose containers are
    not a list of objects with string images would otherwise vanish from the report without a word."""
    if not isinstance(item.get("metadata"), dict):
        return "metadata is not an object"
    path = pod_spec_path(item.get("kind"))
    if path is None:
        return None
    spec: Any = item
    for depth, key in enumerate(path):
        spec = spec.get(key)
        if spec is None:
            return None
        if not isinstance(spec, dict):
            return f"{'.'.join(path[:depth + 1])} is a {type(spec).__name__}, not an object"
    where = ".".join(path)
    for key, _ in CONTAINER_KEYS:
        containers = spec.get(key)
        if containers is None:
            continue
        if not isinstance(containers, list):
            return f"{where}.{key} is a {type(containers).__name__}, not a list"
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                return f"{where}.{key}[{index}] is a {type(container).__name__}, not an object"
            if "image" in container and not isinstance(container["image"], str):
                return f"{where}.{key}[{index}].image is not a string"
    return None


class ObjectIndex:
    """Trimmed objects by (kind, namespace, name), with the lookup an OwnerResolver takes."""

    def __init__(self, objects: Iterable[Trimmed], skipped: Iterable[str] = ()) -> None:
        self.objects = list(objects)
        self.skipped = list(skipped)  # objects left out as unreadable, one line each
        # owners are what is looked up, and pods own nothing but in a broken cluster: pods are indexed when first
        # asked for (serve builds an index every cycle: 50,000 pods' keys were 9 MB and 0.1 s of each)
        self._by_key: dict[tuple[str, str | None, str], Trimmed] = {}
        for obj in self.objects:
            meta = meta_of(obj)
            if meta.kind != "Pod":
                self._by_key[(meta.kind, meta.namespace, meta.name)] = obj
        self._pods: dict[tuple[str, str | None, str], Trimmed] | None = None

    def lookup(self, api_version: str, kind: str, namespace: str | None, name: str) -> Trimmed | None:
        if kind != "Pod":
            return self._by_key.get((kind, namespace, name))
        if self._pods is None:
            self._pods = {}
            for obj in self.objects:
                meta = meta_of(obj)
                if meta.kind == "Pod":
                    self._pods[("Pod", meta.namespace, meta.name)] = obj
        return self._pods.get((kind, namespace, name))

    def lookup_or(self, fallback: Lookup, cache: MutableMapping | None = None) -> Lookup:
        """A lookup that reads owners held here, and asks `fallback` (the API) for the others.

        With `cache` (kept by the caller across calls), what `fallback` answered is remembered in it, None
        included: an owner of a kind that is not listed is read once, not once per cycle.
        """

        def lookup(api_version: str, kind: str, namespace: str | None, name: str) -> Trimmed | None:
            found = self.lookup(api_version, kind, namespace, name)
            if found is not None:
                return found
            if cache is None:
                return fallback(api_version, kind, namespace, name)
            key = (kind, namespace, name)
            if key in cache:
                return cache[key]
            found = cache[key] = fallback(api_version, kind, namespace, name)
            return found

        return lookup

    @property
    def pods(self) -> list[Pod]:
        return [o for o in self.objects if isinstance(o, Pod)]

    @property
    def workloads(self) -> list[Workload]:
        return [o for o in self.objects if isinstance(o, Workload)]
