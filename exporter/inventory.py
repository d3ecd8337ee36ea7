"""Inventory: trimmed pods and workloads of one cluster into `Reference` rows.

Pure. Pods give what runs now; workload templates give what will run (a Deployment scaled to zero, a
suspended CronJob, a Job between runs), marked inactive when nothing runs them. Replicas collapse: a
Reference has no pod in it, so 50 replicas of one Deployment are one row per container.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.images import InvalidReference, normalize
from exporter.kube.objects import Container, Pod, Workload
from exporter.kube.owners import OwnerResolver, Resolution
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
) -> Iterable[Reference]:
    for container in containers:
        yield Reference(
            cluster=cluster,
            namespace=namespace,
            workload_kind=resolution.workload_kind,
            workload=resolution.workload,
            container=container.name,
            container_type=container.type,
            image=image_of(container, where, problems),
            unit=resolution.unit,
            active=active,
            pull_secrets=pull_secrets,
            service_account=service_account,
        )


def build(
    cluster: str,
    pods: Iterable[Pod],
    workloads: Iterable[Workload],
    resolver: OwnerResolver,
) -> tuple[set[Reference], list[str]]:
    """All references of one cluster, and one problem line per container whose image does not parse."""
    refs: set[Reference] = set()
    problems: list[str] = []
    for pod in pods:
        meta = pod.meta
        where = f"pod {meta.namespace}/{meta.name}"
        refs.update(
            _rows(cluster, meta.namespace or "", resolver.resolve(pod), pod.containers, where, True,
                  pod.pull_secrets, pod.service_account, problems)
        )
    for workload in workloads:
        meta = workload.meta
        if meta.kind not in TEMPLATE_KINDS:
            continue
        controller = meta.controller
        if controller is not None and controller.kind in TEMPLATE_KINDS:
            continue  # a Job of a CronJob: the CronJob's template names the same images
        where = f"{meta.kind.lower()} {meta.namespace}/{meta.name}"
        refs.update(
            _rows(cluster, meta.namespace or "", resolver.resolve(workload), workload.containers, where,
                  workload.active, workload.pull_secrets, workload.service_account, problems)
        )
    return refs, problems
