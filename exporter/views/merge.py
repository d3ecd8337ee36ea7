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
    """A report that cannot be merged: a list of something else than strings, or two reports that disagree on
    the shape of a key (a list in one, a dict in the other). The message names the report and the key."""


def merge(
    reports: Iterable[dict[str, Any]],
    remove_keys: Sequence[str] = DEFAULT_REMOVE_KEYS,
    origins: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The merged report; `origins` (one name per report, e.g. its file) are named in a MergeError."""
    merged: dict[str, Any] = {}
    for index, report in enumerate(reports):
        try:
            merged = _merge(merged, _strip(report, tuple(remove_keys)), path="")
        except MergeError as exc:
            raise MergeError(f"{origins[index]}: {exc}" if origins else str(exc)) from None
        except RecursionError:
            where = f"{origins[index]}: " if origins else ""
            raise MergeError(f"{where}nested too deep") from None
    return merged


def _strip(value: Any, prefixes: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, prefixes) for k, v in value.items() if not (prefixes and k.startswith(prefixes))}
    return value


def _merge(a: Any, b: Any, path: str) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _merge(out[key], value, f"{path}/{key}") if key in out else _merge_new(value, f"{path}/{key}")
        return {k: out[k] for k in sorted(out)}
    if isinstance(a, list) and isinstance(b, list):
        return sorted(set(_strings(a, path)) | set(_strings(b, path)))
    if a == b:
        return a
    raise MergeError(f"cannot merge {type(a).__name__} with {type(b).__name__} at {path or '/'}")


def _merge_new(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return _merge({}, value, path)
    if isinstance(value, list):
        return sorted(set(_strings(value, path)))
    return value


def _strings(items: list, path: str) -> list[str]:
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise MergeError(f"{path or '/'}[{index}] is a {type(item).__name__}: lists of reports hold strings")
    return items
