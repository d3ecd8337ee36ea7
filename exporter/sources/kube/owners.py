"""Owner chains and units: which controller runs a pod, and which unit (release piece) owns it.

The chain follows controller owner references up to the top (Pod -> ReplicaSet -> Deployment,
Job -> CronJob; static pods end at their Node). Units follow Sylva's rules (REFERENCE.md §5): a Flux
Kustomization label ends the walk; a Flux HelmRelease label jumps to that HelmRelease and continues
from it. Further unit sources (Helm release, Argo CD application, any label) are tried in the order
configured. Objects are looked up through an injected function, so the same code serves a live cluster
and a List file, and every lookup is cached: 50,000 pods of 500 ReplicaSets cost 500 lookups. The replicas of one controller walk
the same chain, so the walk is made once per controller and shared (`_signature`): the first inventory of a
generated 50,000-pod cluster took 3.0 s, now 1.05 s (`scripts/profile_serve.py --gc-threshold 50000,20,100`,
the collector out of the figure).
An owner that cannot be read (deleted, forbidden) ends the chain with what is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from exporter.model.records import Record
from exporter.sources.kube.objects import (
    ARGOCD_INSTANCE,
    ARGOCD_TRACKING_ID,
    FLUX_HELMRELEASE_NAME,
    FLUX_HELMRELEASE_NAMESPACE,
    FLUX_KUSTOMIZATION_NAME,
    FLUX_KUSTOMIZATION_NAMESPACE,
    HELM_RELEASE_NAME,
    Meta,
    OwnerRef,
    Trimmed,
)

log = logging.getLogger(__name__)

HELMRELEASE_API_VERSION = "helm.toolkit.fluxcd.io/v2"
MAX_DEPTH = 16

# (api_version, kind, namespace, name) -> trimmed object, or None when it cannot be read
Lookup = Callable[[str, str, str | None, str], Trimmed | None]


class OwnerKey(NamedTuple):
    """What a lookup is asked for."""

    api_version: str
    kind: str
    namespace: str | None
    name: str


class Read(NamedTuple):
    """One owner a resolution read, and what the lookup returned for it (the very object, or None)."""

    key: OwnerKey
    found: Trimmed | None


Trace = tuple[Read, ...]  # the owners one resolution read, in the order it read them


def label_keys(unit_sources: Sequence[str]) -> frozenset[str]:
    """Label keys that `label:KEY` unit sources read, for trimming to keep."""
    return frozenset(s.removeprefix("label:") for s in unit_sources if s.startswith("label:"))


def meta_of(obj: Trimmed) -> Meta:
    return obj if isinstance(obj, Meta) else obj.meta


class Resolution(Record):
    """Where one pod or workload sits: its top controller, unit and Sylva dependency chain."""

    workload_kind: str
    workload: str
    unit: str | None
    chain: tuple[str, ...]  # Sylva keys, top ancestor first, ending with the object itself


class OwnerResolver:
    """Resolves chains and units with a cache of looked-up owners (keep one per cluster and cycle)."""

    def __init__(self, lookup: Lookup, unit_sources: Sequence[str] = ("flux",)) -> None:
        self._lookup = lookup
        self._sources = tuple(unit_sources)
        self._cache: dict[tuple[str, str | None, str], Trimmed | None] = {}
        self._resolved: dict[str, tuple[Resolution, Trace]] = {}  # inventory and report ask for the same objects
        # the replicas of a controller walk the same chain: one walk per controller, its result shared (_signature)
        self._shared: dict[tuple, tuple[Resolution, Trace]] = {}
        self._checked: dict[int, tuple[Trace, bool]] = {}  # unchanged(), once per trace (shared by replicas)
        self._flux = "flux" in self._sources

    def _get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Trimmed | None:
        key = (kind, namespace, name)
        if key not in self._cache:
            try:
                self._cache[key] = self._lookup(api_version, kind, namespace, name)
            except Exception as exc:  # a broken lookup ends one chain, never the run
                log.warning("cannot read %s/%s/%s: %s", kind, namespace, name, exc)
                self._cache[key] = None
        return self._cache[key]

    @property
    def lookups(self) -> int:
        return len(self._cache)

    def resolve(self, obj: Trimmed) -> Resolution:
        """Walk from `obj` upwards: owners first, Flux hops where labels say so (memoized per object)."""
        return self.resolve_traced(obj)[0]

    def resolve_traced(self, obj: Trimmed) -> tuple[Resolution, Trace]:
        """The resolution and the owners it read: `unchanged(trace)` later tells whether it still holds."""
        start = meta_of(obj)
        key = start.key
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._walk_or_share(start, key)
        return found

    def unchanged(self, trace: Trace) -> bool:
        """True when every owner the trace read is still the very same object (or still absent)."""
        checked = self._checked.get(id(trace))
        if checked is None or checked[0] is not trace:
            checked = self._checked[id(trace)] = (trace, all(self._get(*read.key) is read.found for read in trace))
        return checked[1]

    def _signature(self, start: Meta) -> tuple | None:
        """What decides a walk from `start` but its own name, when the walk steps to a controller first (the
        workload is then that controller's, not `start`): objects with the same signature, the replicas of one
        ReplicaSet or Job, share one walk. None when the walk depends on the name (no controller, a Node, a
        Flux label on the object itself)."""
        labels = start.labels
        if self._flux and (FLUX_KUSTOMIZATION_NAME in labels or FLUX_HELMRELEASE_NAME in labels):
            return None
        owner = start.controller
        if owner is None or owner.kind == "Node":
            return None
        return (start.kind, start.namespace, owner, tuple(labels.items()), tuple(start.annotations.items()))

    def _walk_or_share(self, start: Meta, key: str) -> tuple[Resolution, Trace]:
        """The walk of another object of the same signature with `start`'s own key at the end of the chain, or
        a walk of its own (the first of its signature, or one whose chain passes through `start`)."""
        signature = self._signature(start)
        if signature is None:
            return self._walk(start)[:2]
        shared = self._shared.get(signature)
        if shared is not None:
            resolution, trace = shared
            if key not in resolution.chain:
                chain = (*resolution.chain[:-1], key)
                return Resolution(resolution.workload_kind, resolution.workload, resolution.unit, chain), trace
        resolution, trace, own = self._walk(start)
        if not own:
            self._shared.setdefault(signature, (resolution, trace))
        return resolution, trace

    def _read(self, trace: list[Read], key: OwnerKey) -> Trimmed | None:
        found = self._get(*key)
        trace.append(Read(key, found))
        return found

    def _walk(self, start: Meta) -> tuple[Resolution, Trace, bool]:
        """Up from `start`, one object a step, until a unit's label, a top-level object, a Node, a cycle, an owner
        that cannot be read or MAX_DEPTH; and whether it ended on a cycle back to `start` itself (then it is
        `start`'s own, never shared)."""
        walk = _Walk(start)
        for _ in range(MAX_DEPTH):
            labels = walk.current.labels
            if self._flux and FLUX_KUSTOMIZATION_NAME in labels:
                walk.to_kustomization(labels)
                break
            if self._flux and FLUX_HELMRELEASE_NAME in labels:
                key = walk.to_helmrelease(labels)
            else:
                key = walk.to_controller()
            if key is None or not walk.arrive(self._read(walk.trace, key)):
                break
        resolution = Resolution(
            workload_kind=walk.workload.kind,
            workload=walk.workload.name,
            unit=self._unit(walk.walked, walk.unit_from_flux),
            chain=tuple(reversed(walk.chain)),
        )
        return resolution, tuple(walk.trace), walk.back_to_start

    def _unit(self, walked: list[Meta], unit_from_flux: str | None) -> str | None:
        for source in self._sources:
            if source == "flux":
                unit = unit_from_flux
            elif source == "helm":
                unit = _first(walked, lambda m: m.annotations.get(HELM_RELEASE_NAME))
            elif source == "argocd":
                unit = _first(walked, _argocd_app)
            else:  # label:KEY
                key = source.removeprefix("label:")
                unit = _first(walked, lambda m, key=key: m.labels.get(key))
            if unit:
                return unit
        return None


def _first(walked: list[Meta], pick: Callable[[Meta], str | None]) -> str | None:
    for meta in walked:
        value = pick(meta)
        if value:
            return value
    return None


def _argocd_app(meta: Meta) -> str | None:
    """Argo CD's application: the instance label, or the app part of `app:group/kind:ns/name`."""
    if meta.labels.get(ARGOCD_INSTANCE):
        return meta.labels[ARGOCD_INSTANCE]
    tracking = meta.annotations.get(ARGOCD_TRACKING_ID, "")
    app = tracking.split(":", 1)[0]
    return app or None


class _Walk:
    """One walk up an owner chain: where it is, what it passed (Sylva's chain keys), what it read."""

    def __init__(self, start: Meta) -> None:
        self.trace: list[Read] = []
        self.chain: list[str] = [start.key]
        self.walked: list[Meta] = [start]
        self.workload: Meta | OwnerRef = start  # the top-level controller, as far as owner references go
        self.current = start
        self.seen = {start.key}
        self.in_owner_chain = True  # False once a Flux HelmRelease label jumped out of the owner references
        self.unit_from_flux: str | None = None
        self.back_to_start = False  # a cycle through the object the walk started from

    def _pass(self, key: str) -> bool:
        """Add `key` to the chain; False when the walk was there already (a cycle)."""
        if key in self.seen:
            self.back_to_start = self.back_to_start or key == self.chain[0]
            return False
        self.seen.add(key)
        self.chain.append(key)
        return True

    def to_kustomization(self, labels: dict[str, str]) -> None:
        """A Flux Kustomization's label ends the walk: it is the unit."""
        namespace = labels.get(FLUX_KUSTOMIZATION_NAMESPACE) or self.current.namespace
        self.unit_from_flux = labels[FLUX_KUSTOMIZATION_NAME]
        self.chain.append(f"Kustomization/{namespace}/{self.unit_from_flux}")

    def to_helmrelease(self, labels: dict[str, str]) -> OwnerKey | None:
        """A Flux HelmRelease's label: the walk jumps to that HelmRelease (the key to read), None on a cycle."""
        self.in_owner_chain = False
        namespace = labels.get(FLUX_HELMRELEASE_NAMESPACE) or self.current.namespace
        name = labels[FLUX_HELMRELEASE_NAME]
        if not self._pass(f"HelmRelease/{namespace}/{name}"):
            return None
        return OwnerKey(HELMRELEASE_API_VERSION, "HelmRelease", namespace, name)

    def to_controller(self) -> OwnerKey | None:
        """The controller owner reference (the key to read), None at the top, on a cycle or at a Node."""
        owner = self.current.controller
        if owner is None:
            return None
        namespace = None if owner.kind == "Node" else self.current.namespace
        if not self._pass(f"{owner.kind}/{namespace}/{owner.name}"):
            return None
        if owner.kind == "Node":  # a static pod's mirror: the Node is in the chain, not a workload
            return None
        if self.in_owner_chain:
            self.workload = owner
        return OwnerKey(owner.api_version, owner.kind, namespace, owner.name)

    def arrive(self, parent: Trimmed | None) -> bool:
        """Step onto the object read; False when it could not be read (the walk ends there)."""
        if parent is None:
            return False
        self.current = meta_of(parent)
        self.walked.append(self.current)
        return True
