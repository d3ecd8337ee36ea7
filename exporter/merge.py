"""Merging image reference reports into a release list (REFERENCE.md §5, `merge_image_refs.py`).

Lists are unioned and sorted, dicts merged recursively, and keys starting with one of the removed
prefixes (by default `ReplicaSet/` and `Pod/`) are dropped with their subtree: a release list keeps which
unit and controller need an image, not which pod happened to run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_REMOVE_KEYS = ("ReplicaSet/", "Pod/")


class MergeError(ValueError):
    """Two reports disagree on the shape of a key (a list in one, a dict in the other)."""


def merge(reports: Iterable[dict[str, Any]], remove_keys: Sequence[str] = DEFAULT_REMOVE_KEYS) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for report in reports:
        merged = _merge(merged, _strip(report, tuple(remove_keys)), path="")
    return merged


def _strip(value: Any, prefixes: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, prefixes) for k, v in value.items() if not (prefixes and k.startswith(prefixes))}
    return value


def _merge(a: Any, b: Any, path: str) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(out[key], value, f"{path}/{key}") if key in out else _merge_new(value)
        return {k: out[k] for k in sorted(out)}
    if isinstance(a, list) and isinstance(b, list):
        return sorted(set(map(_hashable, a)) | set(map(_hashable, b)))
    if a == b:
        return a
    raise MergeError(f"cannot merge {type(a).__name__} with {type(b).__name__} at {path or '/'}")


def _merge_new(value: Any) -> Any:
    if isinstance(value, dict):
        return _merge({}, value, "")
    if isinstance(value, list):
        return sorted(set(map(_hashable, value)))
    return value


def _hashable(item: Any) -> Any:
    if isinstance(item, (dict, list)):
        raise MergeError("lists of reports must hold strings")
    return item
