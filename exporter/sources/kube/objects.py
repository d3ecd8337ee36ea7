"""Kubernetes objects trimmed to the fields the exporter uses.

Raw API dicts are turned into small frozen records as soon as they arrive, and the raw dicts are dropped:
50,000 full pod objects would take gigabytes, their trimmed form a few tens of megabytes. Only labels and
annotations that decide units are kept. Every function here is pure and tolerates missing fields.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, TypedDict

import msgspec

from exporter.common.redact import redact_image
from exporter.model.platforms import ANYWHERE, Constraint, constraint
from exporter.model.records import Record

FLUX_KUSTOMIZATION_NAME = "kustomize.toolkit.fluxcd.io/name"
FLUX_KUSTOMIZATION_NAMESPACE = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HELMRELEASE_NAME = "helm.toolkit.fluxcd.io/name"
FLUX_HELMRELEASE_NAMESPACE = "helm.toolkit.fluxcd.io/namespace"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
ARGOCD_INSTANCE = "argocd.argoproj.io/instance"
ARGOCD_TRACKING_ID = "argocd.argoproj.io/tracking-id"
MIRROR_POD = "kubernetes.io/config.mirror"

UNIT_LABELS = frozenset(
    {
        FLUX_KUSTOMIZATION_NAME,
        FLUX_KUSTOMIZATION_NAMESPACE,
        FLUX_HELMRELEASE_NAME,
        FLUX_HELMRELEASE_NAMESPACE,
        ARGOCD_INSTANCE,
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/instance",
    }
)
UNIT_ANNOTATIONS = frozenset({HELM_RELEASE_NAME, HELM_RELEASE_NAMESPACE, ARGOCD_TRACKING_ID, MIRROR_POD})

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"})


class OwnerRef(Record):
    api_version: str
    kind: str
    name: str
    uid: str = ""
    controller: bool = False


class Meta(Record):
    """Identity, unit-deciding labels/annotations and owners of any object."""

    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str = ""
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    annotations: Mapping[str, str] = msgspec.field(default_factory=dict)
    owners: tuple[OwnerRef, ...] = ()

    @property
    def key(self) -> str:
        """`Kind/namespace/name` as the Sylva report writes it (`None` for cluster-scoped objects)."""
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def controller(self) -> OwnerRef | None:
        """The managing owner: the one marked controller, else the first one."""
        for owner in self.owners:
            if owner.controller:
                return owner
        return self.owners[0] if self.owners else None


class Container(Record):
    name: str
    image: str
    type: str  # container | init | ephemeral


class Pod(Record):
    meta: Meta
    containers: tuple[Container, ...]
    node: str = ""
    service_account: str = "default"
    pull_secrets: tuple[str, ...] = ()
    phase: str = ""
    image_ids: Mapping[str, str] = msgspec.field(default_factory=dict)  # container name -> status imageID
    waiting: Mapping[str, str] = msgspec.field(default_factory=dict)  # container name -> waiting reason
    constraint: Constraint = ANYWHERE  # the platforms it may be scheduled on (read while it waits for a node)

    @property
    def is_static(self) -> bool:
        """A mirror of a static pod: the kubelet runs it from a file, the API only reflects it."""
        return MIRROR_POD in self.meta.annotations or any(o.kind == "Node" for o in self.meta.owners)


class Workload(Record):
    """A controller with a pod template (or a CronJob's job template)."""

    meta: Meta
    containers: tuple[Container, ...]
    replicas: int | None = None
    suspended: bool = False
    service_account: str = "default"
    pull_secrets: tuple[str, ...] = ()
    constraint: Constraint = ANYWHERE  # the platforms its pods may be scheduled on

    @property
    def active(self) -> bool:
        """False when scaled to zero or suspended: its images still count, nothing runs them now."""
        return not self.suspended and self.replicas != 0


Trimmed = Meta | Pod | Workload


# The part of an object that `trim` reads (and listfile's `_malformed`, the reflector its resourceVersion), as types
# for a decoder (msgspec; `report --from-file`, and `serve`'s lists and watches): it builds plain dicts of these keys
# only and skips every other field (managedFields, env, probes, volumes, conditions...) in C, so a 100 MB list costs
# about what parsing it does, not that plus building and dropping all of it. `Any` where a value is small or where
# any shape is tolerated downstream; a typed level (an object, a list of containers) that holds something else fails
# the decoding, and what held it is then parsed whole and read as before. A field `trim` reads is added here too.
class _Container(TypedDict, total=False):
    name: Any
    image: Any


class _Containers(TypedDict, total=False):
    initContainers: list[_Container]
    containers: list[_Container]
    ephemeralContainers: list[_Container]


class _PodSpec(_Containers, total=False):
    imagePullSecrets: Any
    serviceAccountName: Any
    serviceAccount: Any
    nodeName: Any
    nodeSelector: Any
    affinity: Any


class _Template(TypedDict, total=False):
    spec: _PodSpec


class _JobSpec(TypedDict, total=False):
    template: _Template


class _JobTemplate(TypedDict, total=False):
    spec: _JobSpec


class _Spec(_PodSpec, total=False):
    replicas: Any
    suspend: Any
    template: _Template
    jobTemplate: _JobTemplate


class _ContainerStatus(TypedDict, total=False):
    name: Any
    imageID: Any
    state: Any


class _Status(TypedDict, total=False):
    phase: Any
    initContainerStatuses: list[_ContainerStatus]
    containerStatuses: list[_ContainerStatus]
    ephemeralContainerStatuses: list[_ContainerStatus]


class _Metadata(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    labels: Any
    annotations: Any
    ownerReferences: Any


class ObjectFields(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _Metadata
    spec: _Spec
    status: _Status


# What a report reads of an object (`report`, of a file or a cluster): its identity, owners and unit labels, and the
# containers of its pod spec (a template's too, so a workload with a broken one is left out as `ObjectFields` would
# have it). A pod's status, scheduling and pull secrets are not decoded: its record holds their defaults. Decoding
# 50,000 pods this way takes half the time, and trimming them a tenth less.
class _ReportTemplate(TypedDict, total=False):
    spec: _Containers


class _ReportJobSpec(TypedDict, total=False):
    template: _ReportTemplate


class _ReportJobTemplate(TypedDict, total=False):
    spec: _ReportJobSpec


class _ReportSpec(_Containers, total=False):
    template: _ReportTemplate
    jobTemplate: _ReportJobTemplate


class ReportFields(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _Metadata
    spec: _ReportSpec


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


_EMPTY: Mapping[str, str] = MappingProxyType({})  # shared by the many objects with nothing to keep


def _s(value: Any) -> str:
    """A string shared by every object that repeats it (namespaces, kinds, images: a 50,000-pod list has
    thousands of copies of each, parsed one by one)."""
    return sys.intern(str(value))


def _keep(source: Any, keys: Iterable[str]) -> Mapping[str, str]:
    if not source or not isinstance(source, dict):
        return _EMPTY
    kept = {_s(k): _s(source[k]) for k in keys if k in source}
    return kept or _EMPTY


@lru_cache(maxsize=64)
def _label_keys(extra: Iterable[str]) -> frozenset[str]:
    return UNIT_LABELS.union(extra)


def _unit_labels(extra: Iterable[str]) -> frozenset[str]:
    """The unit labels and those `label:KEY` unit sources add (one set per setting, not one per object)."""
    if not extra:
        return UNIT_LABELS
    try:
        return _label_keys(extra)
    except TypeError:  # keys given in a list
        return UNIT_LABELS.union(extra)


# Replicas repeat what their template says: equal containers, owner references, image IDs. Each of these tables makes
# one object for all of them (bounded: what no longer repeats is dropped first). A generated 50,000-pod cluster's
# inventory held 99 MB of Python objects before, 83 MB with them (`scripts/profile_serve.py --tracemalloc`).
_REPEATED = 16384


@lru_cache(maxsize=_REPEATED)
def _owners(refs: tuple[tuple[str, str, str, str, bool], ...]) -> tuple[OwnerRef, ...]:
    return tuple(OwnerRef(_s(api_version), _s(kind), _s(name), uid, controller)
                 for api_version, kind, name, uid, controller in refs)


@lru_cache(maxsize=_REPEATED)
def _containers(specs: tuple[tuple[str, str, str], ...]) -> tuple[Container, ...]:
    return tuple(Container(name=_s(name), image=_s(redact_image(image)), type=kind) for name, image, kind in specs)


@lru_cache(maxsize=_REPEATED)
def _mapping(items: tuple[tuple[str, str], ...]) -> Mapping[str, str]:
    """A read-only mapping, shared by every object that has the same items (in the same order)."""
    return MappingProxyType({_s(k): _s(v) for k, v in items}) if items else _EMPTY


def trim_meta(obj: Mapping[str, Any], label_keys: Iterable[str] = (), kind: str | None = None) -> Meta:
    """The identity part of any object; `label_keys` adds label keys a `label:KEY` unit source reads; `kind` the
    kind when the object does not say it."""
    metadata = _dict(obj.get("metadata"))
    refs = metadata.get("ownerReferences")
    owners = _owners(tuple([
        (str(o.get("apiVersion", "")), str(o["kind"]), str(o["name"]), str(o.get("uid", "")), bool(o.get("controller")))
        for o in refs if isinstance(o, dict) and o.get("kind") and o.get("name")
    ])) if refs and isinstance(refs, list) else ()
    namespace = metadata.get("namespace")
    labels, annotations = metadata.get("labels"), metadata.get("annotations")
    return Meta(
        _s(obj.get("apiVersion", "")),
        _s(kind or obj.get("kind", "")),
        _s(namespace) if namespace else None,
        str(metadata.get("name", "")),
        str(metadata.get("uid", "")),
        _keep(labels, _unit_labels(label_keys)) if labels else _EMPTY,
        _keep(annotations, UNIT_ANNOTATIONS) if annotations else _EMPTY,
        owners,
    )


CONTAINER_KEYS = (("initContainers", "init"), ("containers", "container"), ("ephemeralContainers", "ephemeral"))


class PodSpec(Record):
    """What a pod spec says of pulls: its containers, the pull secrets and the ServiceAccount the kubelet uses."""

    containers: tuple[Container, ...]
    pull_secrets: tuple[str, ...] = ()
    service_account: str = "default"
    constraint: Constraint = ANYWHERE


@lru_cache(maxsize=4096)
def _shared(value: Constraint) -> Constraint:
    """One object for every pod spec with the same constraint (the replicas of a workload)."""
    return value


def pod_spec(spec: Any) -> PodSpec:
    """The pull-relevant part of a pod spec (of a pod, a workload template or a rendered manifest)."""
    spec = _dict(spec)
    specs: list[tuple[str, str, str]] = []
    for key, kind in CONTAINER_KEYS:
        listed = spec.get(key)
        if listed and isinstance(listed, list):
            specs += [(str(c.get("name", "")), str(c.get("image") or ""), kind) for c in listed if isinstance(c, dict)]
    secrets = spec.get("imagePullSecrets")
    pull_secrets = tuple([
        _s(s["name"]) for s in secrets if isinstance(s, dict) and s.get("name")
    ]) if secrets and isinstance(secrets, list) else ()
    # `serviceAccount` is the deprecated spelling the API still accepts
    account = _s(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    return PodSpec(_containers(tuple(specs)), pull_secrets, account, _shared(constraint(spec)))


STATUS_KEYS = ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses")


def trim_pod(obj: Mapping[str, Any], label_keys: Iterable[str] = ()) -> Pod:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    image_ids: list[tuple[str, str]] = []
    waiting: list[tuple[str, str]] = []
    for key in STATUS_KEYS if status else ():
        for s in _list(status.get(key)):
            if not isinstance(s, dict) or not s.get("name"):
                continue
            if s.get("imageID"):
                image_ids.append((str(s["name"]), str(s["imageID"])))  # replicas run the same digest
            reason = _dict(_dict(s.get("state")).get("waiting")).get("reason")
            if reason:
                waiting.append((str(s["name"]), str(reason)))
    pulls = pod_spec(spec)
    return Pod(
        meta=trim_meta(obj, label_keys, kind=obj.get("kind") or "Pod"),
        containers=pulls.containers,
        node=_s(spec["nodeName"]) if spec.get("nodeName") else "",
        service_account=pulls.service_account,
        pull_secrets=pulls.pull_secrets,
        phase=_s(status["phase"]) if status.get("phase") else "",
        image_ids=_mapping(tuple(image_ids)) if image_ids else _EMPTY,
        waiting=_mapping(tuple(waiting)) if waiting else _EMPTY,
        constraint=pulls.constraint,
    )


def pod_spec_path(kind: Any) -> tuple[str, ...] | None:
    """Where an object of this kind holds its pod spec (a Pod's own, a workload's template, a CronJob's job
    template's); None for a kind without one."""
    if kind == "Pod":
        return ("spec",)
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template", "spec")
    if kind in WORKLOAD_KINDS:
        return ("spec", "template", "spec")
    return None


def trim_workload(obj: Mapping[str, Any], label_keys: Iterable[str] = ()) -> Workload:
    spec = _dict(obj.get("spec"))
    template_spec: Any = obj
    for key in pod_spec_path(obj.get("kind")) or ("spec", "template", "spec"):
        template_spec = _dict(_dict(template_spec).get(key))
    replicas = spec.get("replicas")
    if obj.get("kind") == "DaemonSet":
        replicas = None  # a DaemonSet's size is its nodes'
    elif obj.get("kind") in ("Deployment", "StatefulSet", "ReplicaSet") and replicas is None:
        replicas = 1  # the API default
    pulls = pod_spec(template_spec)
    return Workload(
        meta=trim_meta(obj, label_keys),
        containers=pulls.containers,
        replicas=replicas if isinstance(replicas, int) else None,
        suspended=bool(spec.get("suspend", False)),
        service_account=pulls.service_account,
        pull_secrets=pulls.pull_secrets,
        constraint=pulls.constraint,
    )


def trim(obj: Mapping[str, Any], label_keys: Iterable[str] = ()) -> Trimmed:
    """Trim any object: pods and workloads keep their containers, everything else only its identity."""
    kind = obj.get("kind")
    if kind == "Pod":
        return trim_pod(obj, label_keys)
    if kind in WORKLOAD_KINDS:
        return trim_workload(obj, label_keys)
    return trim_meta(obj, label_keys)
