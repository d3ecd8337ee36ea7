"""The Sylva image reference report (REFERENCE.md §5): the JSON `get_image_refs.py` writes, key for key.

A view over pods and their resolved chains. Images come from pods only (containers, init and ephemeral
containers), normalized as distribution/reference does, as Sylva's tool does; images that do not parse are
left out and named in the problems returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from exporter.images import InvalidReference, normalize
from exporter.model import Status
from exporter.kube.objects import Pod
from exporter.kube.owners import OwnerResolver


def build(pods: Iterable[Pod], resolver: OwnerResolver) -> tuple[dict[str, Any], list[str]]:
    """The report as a dict, and one problem line per container left out."""
    problems: list[str] = []
    units_per_image: dict[str, set[str]] = {}
    unknown: set[str] = set()
    dependencies: dict[str, dict] = {}
    for pod in pods:
        resolution = resolver.resolve(pod)
        for container in pod.containers:
            try:
                image = normalize(container.image)
            except InvalidReference as exc:
                problems.append(f"pod {pod.meta.namespace}/{pod.meta.name} container {container.name!r}: {exc}")
                continue
            units = units_per_image.setdefault(image, set())
            if resolution.unit:
                units.add(resolution.unit)
            else:
                unknown.add(image)
            node = dependencies.setdefault(image, {})
            for key in resolution.chain:
                node = node.setdefault(key, {})
            names = node.setdefault("containers", [])
            if container.name not in names:
                names.append(container.name)
                names.sort()
    images_per_unit: dict[str, set[str]] = {}
    for image, units in units_per_image.items():
        for unit in units:
            images_per_unit.setdefault(unit, set()).add(image)
    report = {
        "images": sorted(units_per_image),
        "units_per_image": {image: sorted(units) for image, units in sorted(units_per_image.items()) if units},
        "images_per_unit": {unit: sorted(images) for unit, images in sorted(images_per_unit.items())},
        "images_with_unknown_unit": sorted(unknown),
        "pod_images_dependencies": _sorted(dependencies),
    }
    return report, problems


def _sorted(tree: dict) -> dict:
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(tree.items())}


def dumps(report: dict[str, Any]) -> str:
    """Serialized as Sylva's tool writes it (`indent=4`)."""
    return json.dumps(report, indent=4) + "\n"


# worst first: what a pull with some credential set would meet; `available` only when every set finds it
SEVERITY = (Status.ABSENT, Status.UNAUTHORIZED, Status.FORBIDDEN, Status.INVALID_REFERENCE, Status.TLS_ERROR,
            Status.UNREACHABLE, Status.ERROR, Status.RATE_LIMITED, Status.UNCHECKED, Status.AVAILABLE)
_RANK = {status: rank for rank, status in enumerate(SEVERITY)}


def registry_statuses(pairs: Iterable[tuple[str, Status]]) -> dict[str, str]:
    """{image: status} for the report's `registry_status`: an image checked with several credential sets
    (pods with different pull secrets) gets the worst of its statuses, the same whatever the order."""
    worst: dict[str, Status] = {}
    for image, status in pairs:
        if image not in worst or _RANK[status] < _RANK[worst[image]]:
            worst[image] = status
    return {image: status.value for image, status in sorted(worst.items())}
