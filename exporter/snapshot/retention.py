"""Retention forecasts against the images in use: which ones a registry's next cleanup run deletes.

Pure functions. `in_use` tells the retention reader which repositories matter (by host: only those are read);
`at_risk` matches every image in use — a workload's (running or in a template, by its tag and by the digest it
runs or pins), an expected list's, a kept Helm revision's — against the forecasts the reader holds.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.model.images import ImageRef, InvalidReference, parse
from exporter.model.records import Reference
from exporter.model.retention import Forecast, at_risk as deleted_by

Row = tuple[str, str, str, str]  # (cluster, image, policy, rule); cluster "" for an expected list's image


def _parsed(image: str) -> ImageRef | None:
    try:
        return parse(image)
    except InvalidReference:
        return None


def in_use(images: Iterable[str]) -> dict[str, frozenset[str]]:
    """The repositories the images name, by registry host."""
    out: dict[str, set[str]] = {}
    for image in images:
        ref = _parsed(image)
        if ref is not None:
            out.setdefault(ref.registry, set()).add(ref.repository)
    return {host: frozenset(repositories) for host, repositories in out.items()}


def at_risk(references: Iterable[Reference], others: Iterable[tuple[str, str]],
            forecasts: Iterable[Forecast]) -> set[Row]:
    """A row per image in use and forecast deleting it: references (with the digest they run), and `others`
    ((cluster, image): expected lists' images with cluster "", kept Helm revisions' images)."""
    forecasts = tuple(forecasts)
    if not forecasts:
        return set()
    rows: set[Row] = set()
    seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    items = [(ref.cluster, ref.image, ref.running_digest) for ref in references]
    items += [(cluster, image, "") for cluster, image in others]
    for cluster, image, running in items:
        key = (image, running)
        if key not in seen:
            ref = _parsed(image)
            seen[key] = [] if ref is None else deleted_by(ref.registry, ref.repository, ref.tag, (ref.digest, running),
                                                          forecasts)
        rows.update((cluster, image, policy, rule) for policy, rule in seen[key])
    return rows
