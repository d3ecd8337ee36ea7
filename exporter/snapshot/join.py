"""The join: what the cluster uses, what registries say and what releases expect, into one Snapshot.

A pure function over plain data. The serve loop gathers its inputs (references already paired with the
registry state seen with their own credentials, expected lists, expected images' states, the pods' chains
and the sources' health) and publishes the result by swapping one reference; /metrics and /report are
views of it. Nothing here waits, locks or does I/O, so it is tested with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from exporter.model.health import Health
from exporter.model.records import NodeImages, PodChain, Reference, Status
from exporter.snapshot.admission import Missing
from exporter.snapshot.drift import DigestFacts, drifted, pinned

__all__ = ["UNCHECKED", "DigestFacts", "ImageState", "Snapshot", "join"]

Labels = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageState:
    """What the registry layer last said of one image (seen with one reference's credentials)."""

    status: Status
    registry: str
    digest: str | None = None
    checked_at: float | None = None
    lacking: tuple[str, ...] = ()  # platform_missing: the platforms needed that the image does not serve

    @property
    def registry_status(self) -> Status:
        """What the registry said: a platform missing is an image the registry has."""
        return Status.AVAILABLE if self.status == Status.PLATFORM_MISSING else self.status


UNCHECKED = ImageState(Status.UNCHECKED, registry="")


@dataclass(frozen=True)
class Snapshot:
    """Everything a scrape, a report or a status page shows, computed once per cycle; never mutated after.

    `series` maps a family name (exporter.views.families) to its rows: label values in the family's label order,
    and the sample value. Families with no rows are still declared, so HELP and TYPE always appear.
    The rest is the cycle's plain input kept for views: each reference with its image's state (the report's
    `registry_status`), each listed cluster's pod chains (the Sylva report), the sources' health. The expected
    lists are not kept: their series say all a view shows of them.
    """

    created_at: float
    series: Mapping[str, tuple[tuple[Labels, float], ...]]
    references: tuple[tuple[Reference, ImageState], ...] = ()
    chains: Mapping[str, tuple[PodChain, ...]] = field(default_factory=dict)
    health: Health = field(default_factory=Health)


def _reference_labels(ref: Reference) -> Labels:
    return (
        ref.cluster,
        ref.namespace,
        ref.workload_kind,
        ref.workload,
        ref.container,
        ref.container_type,
        ref.image,
        ref.unit or "",
    )


def join(
    references: Iterable[tuple[Reference, ImageState]],
    expected: Mapping[str, Mapping[str, frozenset[str]]],
    expected_states: Mapping[str, ImageState],
    clusters: Iterable[str],
    now: float,
    digests: Mapping[tuple[str, str], DigestFacts] | None = None,
    rollback: Iterable[tuple[Labels, ImageState]] = (),
    chains: Mapping[str, tuple[PodChain, ...]] | None = None,
    health: Health | None = None,
    expected_complete: bool = True,
    nodes: Mapping[str, Iterable[NodeImages]] | None = None,
    platforms: Mapping[Reference, tuple[str, ...]] | None = None,
    signatures: Mapping[Reference, Missing] | None = None,
    retention: Iterable[tuple[str, str, str, str]] = (),
) -> Snapshot:
    """Compute the reference-level and expected-list series of one cycle.

    `expected` maps a list name to {normalized image: units}; `expected_states` gives the registry state of
    each expected image (checked with the exporter's own credentials). `clusters` names every cluster
    watched, so `expected_not_running` is reported per cluster even when a cluster runs nothing.
    `digests` maps (image, running digest) to what the registry serves for that tag now: a running digest
    that is neither the tag's digest nor one of its index's manifests is drift, and a running digest the
    registry no longer has is a missing image (`image` written `name@digest`, reason `absent`).
    `rollback` pairs (cluster, namespace, release, revision, image) of kept Helm revisions with their state.
    `chains` (by cluster) and `health` are carried to the Snapshot as they are, for the views.
    `expected_complete` is False while a list's first reading is under way: no image is called unexpected then.
    `nodes` (by cluster) are the images nodes' kubelets hold: an image absent from its registry that a node still
    holds is that node's last copy (`kube_image_node_only`).
    `platforms` gives the platforms a reference's nodes pull that its (available) image lacks
    (exporter.snapshot.platforms): that reference is `platform_missing`, in its series and in the Snapshot's
    references; `kube_image_status` keeps what the registry said of the image.
    `signatures` gives what a reference's verifying policies require and the registry lacks
    (exporter.snapshot.admission): `kube_image_signature_missing`, one row per policy and need.
    `retention` gives (cluster, image, policy, rule) of each image in use a cleanup policy's next run deletes
    (exporter.snapshot.retention): `kube_image_retention_at_risk`.
    """
    pairs = tuple(references)
    lacking = platforms or {}
    if lacking:
        pairs = tuple((ref, replace(state, status=Status.PLATFORM_MISSING, lacking=lacking[ref]))
                      if ref in lacking and state.status == Status.AVAILABLE else (ref, state) for ref, state in pairs)
    expected_images = {image for images in expected.values() for image in images}
    rows = _reference_rows(pairs, digests or {}, expected_images if expected and expected_complete else None)
    cluster_names = sorted(set(clusters) | set(rows.running))
    expected_missing, not_running = _expected_rows(expected, expected_states, cluster_names, rows.running)
    series = {
        "kube_image_rollback_missing": _ones(labels + (state.status.value,) for labels, state in rollback
                                             if _not_available(state)),
        "kube_image_missing": _ones(rows.missing),
        "kube_image_status": _ones(rows.statuses),
        "kube_image_unknown_unit": _ones(rows.unknown_unit),
        "kube_image_unexpected": _ones(rows.unexpected),
        "kube_image_digest_drift": _ones(rows.drift),
        "kube_image_workload_inactive": _ones(rows.workloads - rows.active_workloads),
        "kube_image_expected_missing": tuple(expected_missing),
        "kube_image_expected_not_running": tuple(not_running),
        "kube_image_last_check_timestamp_seconds": tuple(sorted(rows.checked.items())),
        "kube_image_node_only": _ones(_node_only(rows.absent, nodes or {})),
        "kube_image_platform_missing": _ones(rows.platforms),
        "kube_image_retention_at_risk": _ones(retention),
        "kube_image_signature_missing": _ones(
            _reference_labels(ref) + (policy, need.kind, need.predicate_type, mode.value)
            for ref, missing in (signatures or {}).items() for policy, mode, need in missing),
    }
    return Snapshot(created_at=now, series=series, references=pairs, chains=dict(chains or {}),
                    health=health or Health())


def _not_available(state: ImageState) -> bool:
    """A problem row: every status but available, and but unchecked (not known yet is not a problem yet)."""
    return state.status not in (Status.AVAILABLE, Status.UNCHECKED)


@dataclass
class _ReferenceRows:
    """The label sets the references give. Sets: references differing only in fields that are not labels (pull
    secrets, active) are one series."""

    missing: set[Labels] = field(default_factory=set)
    unknown_unit: set[Labels] = field(default_factory=set)
    unexpected: set[Labels] = field(default_factory=set)
    drift: set[Labels] = field(default_factory=set)
    workloads: set[Labels] = field(default_factory=set)
    active_workloads: set[Labels] = field(default_factory=set)
    statuses: set[Labels] = field(default_factory=set)
    checked: dict[tuple[str, str], float] = field(default_factory=dict)  # (cluster, image) -> last check
    running: dict[str, set[str]] = field(default_factory=dict)  # cluster -> images its references name
    absent: set[tuple[str, str, str]] = field(default_factory=set)  # (cluster, image, running digest or "")
    platforms: set[Labels] = field(default_factory=set)  # (cluster, image, platform lacking)


def _reference_rows(pairs: Iterable[tuple[Reference, ImageState]], digests: Mapping[tuple[str, str], DigestFacts],
                    expected_images: set[str] | None) -> _ReferenceRows:
    """Every reference's rows; `expected_images` None when no image may be called unexpected (no list, or a
    list still loading)."""
    rows = _ReferenceRows()
    for ref, state in pairs:
        labels = _reference_labels(ref)
        rows.workloads.add(labels[:4])
        if ref.active:
            rows.active_workloads.add(labels[:4])
        rows.running.setdefault(ref.cluster, set()).add(ref.image)
        rows.statuses.add((ref.cluster, ref.image, state.registry, state.registry_status.value))
        rows.platforms.update((ref.cluster, ref.image, platform) for platform in state.lacking)
        if state.checked_at is not None:
            key = (ref.cluster, ref.image)
            rows.checked[key] = max(rows.checked.get(key, 0.0), state.checked_at)
        if _not_available(state):
            rows.missing.add(labels + (state.status.value,))
            if state.status == Status.ABSENT:
                rows.absent.add((ref.cluster, ref.image, ref.running_digest))
        if ref.unit is None:
            rows.unknown_unit.add(labels[:-1])
        if expected_images is not None and ref.image not in expected_images:
            rows.unexpected.add(labels)
        facts = digests.get((ref.image, ref.running_digest)) if ref.running_digest else None
        if facts is not None and drifted(ref.running_digest, facts):
            rows.drift.add(labels + (ref.running_digest, facts.registry_digest))
            if facts.running_status == Status.ABSENT:  # the reference written by digest, as a restart pulls it
                rows.missing.add(labels[:6] + (pinned(ref.image, ref.running_digest), labels[7], Status.ABSENT.value))
    return rows


def _node_only(absent: set[tuple[str, str, str]], nodes: Mapping[str, Iterable[NodeImages]]) -> set[Labels]:
    """(cluster, node, image) for each image absent from its registry that a node of its cluster still holds: by
    the digest its pods run (their `imageID`) where known, else by its name and tag, as the node lists them."""
    wanted: dict[str, dict[str, set[str]]] = {}  # cluster -> a name a node may list -> the images it stands for
    for cluster, image, digest in absent:
        names = wanted.setdefault(cluster, {})
        names.setdefault(image, set()).add(image)
        if digest and "@" not in image:
            names.setdefault(pinned(image, digest), set()).add(image)
    found: set[Labels] = set()
    for cluster, names in wanted.items():
        for node in nodes.get(cluster, ()):
            for name in node.images:
                if name in names:
                    found.update((cluster, node.name, image) for image in names[name])
    return found


def _expected_rows(expected: Mapping[str, Mapping[str, frozenset[str]]], states: Mapping[str, ImageState],
                   clusters: list[str], running: Mapping[str, set[str]]) -> tuple[list, list]:
    """(expected images not available, expected images a cluster does not run), one row per unit."""
    expected_missing: list[tuple[Labels, float]] = []
    not_running: list[tuple[Labels, float]] = []
    for list_name, images in sorted(expected.items()):
        for image, units in sorted(images.items()):
            unit_labels = sorted(units) or [""]
            state = states.get(image, UNCHECKED)
            if _not_available(state):
                expected_missing.extend(((list_name, image, unit, state.status.value), 1.0) for unit in unit_labels)
            for cluster in clusters:
                if image not in running.get(cluster, ()):
                    not_running.extend(((cluster, list_name, image, unit), 1.0) for unit in unit_labels)
    return expected_missing, not_running


def _ones(rows: Iterable[Labels]) -> tuple[tuple[Labels, float], ...]:
    return tuple((row, 1.0) for row in sorted(rows))
