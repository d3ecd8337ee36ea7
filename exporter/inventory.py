"""Inventory: trimmed pods and workloads of one cluster into `Reference` rows.

Pure. Pods give what runs now; workload templates give what will run (a Deployment scaled to zero, a
suspended CronJob, a Job between runs), marked inactive when nothing runs them. Replicas collapse: a
Reference has no pod in it, so 50 replicas of one Deployment are one row per container.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from exporter.images import InvalidReference, digest_of_image_id, normalize
from exporter.kube.objects import Container, Pod, Workload
from exporter.kube.owners import OwnerResolver, Resolution, Trace
from exporter.model import Reference

TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"})


def image_of(container: Container, where: str, problems: list[str]) -> str:
    """The normalized image, or the string as written (and a problem noted) when it does not parse."""
    try:
        return normalize(container.image)
    except InvalidReference as exc:
        problems.append(f"{where} container {container.name!r}: {exc}")
        return container.image


def _rows(
    cluster: str,
    namespace: str,
    resolution: Resolution,
    containers: Iterable[Container],
    where: str,
    active: bool,
    pull_secrets: tuple[str, ...],
    service_account: str,
    problems: list[str],
    image_ids: Mapping[str, str] | None = None,
) -> Iterable[Reference]:
    for container in containers:
        image = image_of(container, where, problems)
        running = digest_of_image_id(image_ids.get(container.name)) if image_ids and "@" not in image else None
        yield Reference(
            cluster=cluster,
            namespace=namespace,
            workload_kind=resolution.workload_kind,
            workload=resolution.workload,
            container=container.name,
            container_type=container.type,
            image=image,
            unit=resolution.unit,
            active=active,
            pull_secrets=pull_secrets,
            service_account=service_account,
            running_digest=running or "",
        )


class Remembered(NamedTuple):
    """What one object gave last time, and what it was computed from."""

    obj: Pod | Workload  # the very object: a reflector hands a new one for every change
    trace: Trace  # the owners its resolution read
    references: tuple[Reference, ...]
    problems: tuple[str, ...]


Memo = dict[str, Remembered]  # by object UID


def build(
    cluster: str,
    pods: Iterable[Pod],
    workloads: Iterable[Workload],
    resolver: OwnerResolver,
    memo: Memo | None = None,
) -> tuple[set[Reference], list[str]]:
    """All references of one cluster, and one problem line per container whose image does not parse.

    With `memo` (kept by the caller from one call to the next, replaced in place), an object that is the
    very same as last time and whose owners are too reuses its rows: a steady cluster costs a lookup per
    object instead of a walk of its owner chain.
    """
    refs: dict[Reference, Reference] = {}  # a set that hands back its member: equal rows share one object
    problems: list[str] = []
    previous = dict(memo or {})
    current: Memo = {}

    def add(obj: Pod | Workload, active: bool, where: str) -> None:
        entry = previous.get(obj.meta.uid)
        if entry is None or entry.obj is not obj or not resolver.unchanged(entry.trace):
            resolution, trace = resolver.resolve_traced(obj)
            found: list[str] = []
            rows = tuple(refs.setdefault(r, r) for r in _rows(
                cluster, obj.meta.namespace or "", resolution, obj.containers, where, active,
                obj.pull_secrets, obj.service_account, found, getattr(obj, "image_ids", None)))
            entry = Remembered(obj, trace, rows, tuple(found))
        else:
            refs.update((r, r) for r in entry.references if r not in refs)
        current[obj.meta.uid] = entry
        problems.extend(entry.problems)

    for pod in pods:
        add(pod, True, f"pod {pod.meta.namespace}/{pod.meta.name}")
    for workload in workloads:
        meta = workload.meta
        if meta.kind not in TEMPLATE_KINDS:
            continue
        controller = meta.controller
        if controller is not None and controller.kind in TEMPLATE_KINDS:
            continue  # a Job of a CronJob: the CronJob's template names the same images
        add(workload, workload.active, f"{meta.kind.lower()} {meta.namespace}/{meta.name}")
    if memo is not None:
        memo.clear()
        memo.update(current)
    return set(refs), problems
