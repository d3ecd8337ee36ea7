"""Read a whole cluster once: the pods, the workloads with templates, and an owner lookup over the API.

Used by the one-shot `report`; `serve` keeps the same objects current with reflectors instead.
Kinds the API does not serve or that are forbidden are skipped with a warning, not a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from exporter.sources.kube.api import ApiError, ClusterClient
from exporter.sources.kube.listfile import ObjectIndex
from exporter.sources.kube.objects import ReportFields, Trimmed, trim
from exporter.sources.kube.owners import Lookup

log = logging.getLogger(__name__)

WORKLOAD_RESOURCES = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)
# Owners most pods point at: one paginated list costs less than a GET per ReplicaSet.
OWNER_RESOURCES = (
    ("apps/v1", "ReplicaSet"),
    ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
)


def read(client: ClusterClient, label_keys: Iterable[str] = (), namespace: str | None = None) -> ObjectIndex:
    """Pods (required), workloads and common owners (best effort) of the cluster, trimmed to what a report reads
    (`objects.ReportFields`).

    The kinds are listed in parallel (one thread each: the time is spent waiting on the API server).
    """
    keys = tuple(label_keys)

    def pods() -> list[Trimmed]:
        return [trim(item, keys) for page, _ in client.list_pages("v1", "Pod", namespace=namespace, fields=ReportFields)
                for item in page]

    def others(api_version: str, kind: str) -> list[Trimmed]:
        if client.resource(api_version, kind) is None:
            return []  # not served here (no Flux, say): owners of that kind are looked up one by one
        try:
            return [trim(item, keys) for page, _ in client.list_pages(api_version, kind, namespace=namespace,
                                                                      fields=ReportFields)
                    for item in page]
        except ApiError as exc:
            log.warning("%s: %s not listed: %s", client.name, kind, exc)
            return []

    kinds = WORKLOAD_RESOURCES + OWNER_RESOURCES
    with ThreadPoolExecutor(max_workers=1 + len(kinds)) as pool:
        listed = [pool.submit(pods)] + [pool.submit(others, api_version, kind) for api_version, kind in kinds]
        objects = [obj for future in listed for obj in future.result()]
    return ObjectIndex(objects)


def api_lookup(client: ClusterClient, label_keys: Iterable[str] = ()) -> Lookup:
    """An owner lookup that GETs from the API (the resolver caches it); None for absent or forbidden."""
    keys = tuple(label_keys)

    def lookup(api_version: str, kind: str, namespace: str | None, name: str) -> Trimmed | None:
        obj = client.get(api_version, kind, namespace, name)
        return None if obj is None else trim({**obj, "kind": kind, "apiVersion": api_version}, keys)

    return lookup
