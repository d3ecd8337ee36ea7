"""Inventory: trimmed pods and workloads of one cluster into `Reference` rows and the pods' `PodChain`s.

Pure. Pods give what runs now; workload templates give what will run (a Deployment scaled to zero, a
suspended CronJob, a Job between runs), marked inactive when nothing runs them. Replicas collapse: a
Reference has no pod in it, so 50 replicas of one Deployment are one row per container. Each pod's chain
(its owners up to the top and its unit) is what the Sylva report is made of (`chains`: those alone).

Replicas share what they repeat: the owners' walk (`owners.OwnerResolver`), their records (`objects`) and here
their rows, made once for all the pods of one template. `serve`'s first full inventory of 50,000 pods took 8.9 s
and 251 MB before these, the typed lists and the collector's settings, 4.5 s and 198 MB after (medians of 3 and 5
runs of `scripts/bench.py --sections registry --sizes 50000` on a shared 2-core machine);
`report --from-file` 3.56 s before `chains`, 2.68 s with it (`scripts/bench_report_file.py --pods 50000`, medians
of 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from exporter.model.images import InvalidReference, digest_of_image_id, normalize
from exporter.model.platforms import Constraint
from exporter.model.records import PodChain, Reference
from exporter.sources.kube.objects import Container, Pod, Workload
from exporter.sources.kube.owners import OwnerResolver, Resolution, Trace

TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"})


def normalized(container: Container, where: str, problems: list[str]) -> str | None:
    """The normalized image, or None (and a problem noted) when it does not parse."""
    try:
        return normalize(container.image)
    except InvalidReference as exc:
        problems.append(f"{where} container {container.name!r}: {exc}")
        return None


def _rows(
    cluster: str,
    namespace: str,
    resolution: Resolution,
    containers: Iterable[tuple[Container, str | None]],
    active: bool,
    pull_secrets: tuple[str, ...],
    service_account: str,
    image_ids: Mapping[str, str] | None = None,
) -> Iterable[Reference]:
    for container, image in containers:
        image = image or container.image  # one that does not parse is kept as written (without user info)
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
    chain: PodChain | None  # a pod's; None for a workload


Memo = dict[str, Remembered]  # by object UID


Placement = str | Constraint  # a scheduled pod's node name, or what a template (or a pod still pending) allows


class Inventory(NamedTuple):
    """One cluster's inventory."""

    references: set[Reference]
    chains: tuple[PodChain, ...]  # one per pod, in the order given
    problems: list[str]  # one line per container whose image does not parse
    # where each reference runs or may run: its pods' nodes (and what its pending pods allow); a template's
    # constraint only where no pod of the reference exists (a workload scaled to zero, a CronJob between runs); each
    # place once, in no particular order (a tuple: a third of a frozenset's memory, 50,000 pods' 5.2 MB to 1.6 MB)
    placements: dict[Reference, tuple[Placement, ...]] = {}


def build(
    cluster: str,
    pods: Iterable[Pod],
    workloads: Iterable[Workload],
    resolver: OwnerResolver,
    memo: Memo | None = None,
) -> Inventory:
    """All references and pod chains of one cluster, and what could not be read.

    With `memo` (kept by the caller from one call to the next, replaced in place), an object that is the
    very same as last time and whose owners are too reuses its rows: a steady cluster costs a lookup per
    object instead of a walk of its owner chain.
    """
    gathered = _Gathered(cluster, resolver)
    previous = dict(memo or {})
    current: Memo = {}
    pods_at: dict[Reference, set[Placement]] = {}
    templates_at: dict[Reference, set[Placement]] = {}

    def add(obj: Pod | Workload, active: bool, where: str) -> None:
        entry = previous.get(obj.meta.uid)
        if entry is None or entry.obj is not obj or not resolver.unchanged(entry.trace):
            entry = gathered.remember(obj, active, where)
        else:
            gathered.reuse(entry)
        current[obj.meta.uid] = entry
        place: Placement = obj.node or obj.constraint if isinstance(obj, Pod) else obj.constraint
        placed = pods_at if isinstance(obj, Pod) else templates_at
        for ref in entry.references:
            placed.setdefault(ref, set()).add(place)
        gathered.problems.extend(entry.problems)
        if entry.chain is not None:
            gathered.chains.append(entry.chain)

    for pod in pods:
        add(pod, True, f"pod {pod.meta.namespace}/{pod.meta.name}")
    for workload in _templates(workloads):
        meta = workload.meta
        add(workload, workload.active, f"{meta.kind.lower()} {meta.namespace}/{meta.name}")
    if memo is not None:
        memo.clear()
        memo.update(current)
    placements = {ref: tuple(places) for ref, places in templates_at.items() if ref not in pods_at}
    placements.update((ref, tuple(places)) for ref, places in pods_at.items())
    return Inventory(set(gathered.refs), tuple(gathered.chains), gathered.problems, placements)


def chains(pods: Iterable[Pod], resolver: OwnerResolver) -> tuple[tuple[PodChain, ...], list[str]]:
    """The pods' chains, in the order given, and what could not be read: `build`'s chains and problems of the same
    pods, without the references (what the report is made of; a third of the time of `build`)."""
    out: list[PodChain] = []
    problems: list[str] = []
    made: dict[int, tuple] = {}  # by containers (the very tuple, shared by replicas): what their images pair to
    shared: dict[tuple, tuple] = {}
    for pod in pods:
        resolution = resolver.resolve(pod)
        pairs = made.get(id(pod.containers))
        if pairs is None or pairs[0] is not pod.containers:
            found: list[str] = []
            images = [(c, normalized(c, f"pod {pod.meta.namespace}/{pod.meta.name}", found)) for c in pod.containers]
            paired = tuple((c.name, image) for c, image in images if image is not None)
            pairs = (pod.containers, shared.setdefault(paired, paired), tuple(found))
            if not found:  # a problem names its pod: noted again for each
                made[id(pod.containers)] = pairs
        problems.extend(pairs[2])
        out.append(PodChain(resolution.chain, resolution.unit, pairs[1]))
    return tuple(out), problems


def _templates(workloads: Iterable[Workload]) -> Iterator[Workload]:
    """The workloads whose template names images of their own: not a Job a CronJob made (the CronJob's template
    names the same images), nor kinds without a template."""
    for workload in workloads:
        meta = workload.meta
        controller = meta.controller
        if meta.kind in TEMPLATE_KINDS and not (controller is not None and controller.kind in TEMPLATE_KINDS):
            yield workload


class _Gathered:
    """What one build gathers: the references (equal rows share one object), the pods' chains, the problems."""

    def __init__(self, cluster: str, resolver: OwnerResolver) -> None:
        self.cluster = cluster
        self.resolver = resolver
        self.refs: dict[Reference, Reference] = {}  # a set that hands back its member
        self.chains: list[PodChain] = []
        self.problems: list[str] = []
        self._containers: dict[tuple, tuple] = {}  # replicas name the same containers: one tuple for all of them
        self._made: dict[tuple, tuple] = {}  # rows made, by what they are made of (`remember`)

    def remember(self, obj: Pod | Workload, active: bool, where: str) -> Remembered:
        """Resolve `obj`'s owners and build its rows (and a pod's chain), to be kept for the next build."""
        resolution, trace = self.resolver.resolve_traced(obj)
        image_ids = getattr(obj, "image_ids", None)
        # replicas share their containers and image IDs (the very objects, see objects.py) and their resolution's
        # workload and unit: their rows are made once (what does not parse is noted for each, naming it)
        key = (type(obj), id(obj.containers), id(image_ids), obj.meta.namespace, resolution.workload_kind,
               resolution.workload, resolution.unit, active, obj.pull_secrets, obj.service_account)
        made = self._made.get(key)
        if made is None or made[0] is not obj.containers or made[1] is not image_ids:
            found: list[str] = []
            images = [(c, normalized(c, where, found)) for c in obj.containers]
            rows = tuple(self.refs.setdefault(r, r) for r in _rows(
                self.cluster, obj.meta.namespace or "", resolution, images, active,
                obj.pull_secrets, obj.service_account, image_ids))
            pairs = tuple((c.name, image) for c, image in images if image is not None)
            made = (obj.containers, image_ids, rows, self._containers.setdefault(pairs, pairs), tuple(found))
            if not found:
                self._made[key] = made
        rows, pairs, problems = made[2:]
        chain = PodChain(resolution.chain, resolution.unit, pairs) if isinstance(obj, Pod) else None
        return Remembered(obj, trace, rows, problems, chain)

    def reuse(self, entry: Remembered) -> None:
        """An object unchanged since the last build, owners included: its rows as they were."""
        self.refs.update((r, r) for r in entry.references if r not in self.refs)


