"""Plain data shared by every layer: what the cluster uses (`Reference`, `PodChain`) and what a registry said
(`Status`).

Sources produce these, the join consumes them, views render them. No I/O and no client types here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import msgspec


class Status(StrEnum):
    """Registry status of one image (DESIGN.md contract: dashboards and alerts match these strings)."""

    AVAILABLE = "available"
    ABSENT = "absent"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    TLS_ERROR = "tls_error"
    INVALID_REFERENCE = "invalid_reference"
    PLATFORM_MISSING = "platform_missing"  # the registry has the image, not for a platform a node of it pulls
    SIGNATURE_MISSING = "signature_missing"  # an admission policy requires a signature the registry lacks (check)
    UNCHECKED = "unchecked"
    ERROR = "error"


# What a status means, once for every surface (README "What missing means"): dashboards' headline stats, alerts,
# the status page, /report and check's summary split problems this one way. Whether a workload runs now (inactive:
# scaled to zero, suspended) is a separate dimension, never a class.
# the registry says it is gone, or it can never be pulled (on some node it would run on), or admitted
MISSING = (Status.ABSENT, Status.INVALID_REFERENCE, Status.PLATFORM_MISSING, Status.SIGNATURE_MISSING)
UNVERIFIED = tuple(s for s in Status if s is not Status.AVAILABLE and s not in MISSING)  # we could not tell


class Verdict(StrEnum):
    AVAILABLE = "available"
    MISSING = "missing"
    UNVERIFIED = "unverified"


def verdict(status: str) -> Verdict:
    """The class of a status (given as a Status or its string)."""
    if status == Status.AVAILABLE:
        return Verdict.AVAILABLE
    return Verdict.MISSING if status in MISSING else Verdict.UNVERIFIED


def reason_pattern(statuses: tuple[Status, ...]) -> str:
    """The PromQL regex matching these statuses in a `reason` label (`absent|invalid_reference`)."""
    return "|".join(s.value for s in statuses)


CONTAINER_TYPES = ("container", "init", "ephemeral")


class Record(msgspec.Struct, frozen=True, gc=False):
    """A record made once per pod or object (trimmed objects, their resolutions and chains): immutable, made in C (a
    frozen dataclass took fifteen times as long to make, 1.8 us against 0.12: a third of trimming 50,000 pods), and
    left out of the cycle collector's sight (records hold strings, tuples, mappings of strings and other records:
    never a cycle)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One container of one workload naming one image: the row behind the reference-level metrics.

    Replicas of a workload collapse into one Reference (no pod label: series follow workloads, not pods).
    `image` is the normalized reference, or the string as written when it does not parse.
    `unit` is None when no unit could be resolved. `active` is False for a workload scaled to zero or a
    suspended CronJob: its images still count, since a scale-up or the next schedule pulls them.
    `pull_secrets` are the imagePullSecrets names the kubelet would use (the pod's, else its ServiceAccount's).
    `running_digest` is the repo digest a running container reports (`imageID`) when its spec names a tag:
    replicas running different digests of one tag are separate References, the same series otherwise.
    """

    cluster: str
    namespace: str
    workload_kind: str
    workload: str
    container: str
    container_type: str
    image: str
    unit: str | None
    active: bool = True
    pull_secrets: tuple[str, ...] = ()
    service_account: str = "default"
    running_digest: str = ""


class PodChain(Record):
    """One pod's images where the Sylva report puts them: under its owner chain, counted for its unit.

    `chain` holds Sylva keys (`Kind/namespace/name`), top ancestor first, the pod itself last.
    `containers` pairs each container's name with its normalized image; images that do not parse are left out.
    """

    chain: tuple[str, ...]
    unit: str | None
    containers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class NodeImages:
    """One node: its platform (`linux/arm64`, exporter.model.platforms; '' when unknown) and the images its kubelet
    reports holding (`status.images`), normalized: `name:tag` and `name@digest` as the runtime lists them. The
    kubelet reports at most 50 per node by default (`nodeStatusMaxImages`)."""

    name: str
    images: tuple[str, ...]  # a tuple of shared strings: 5,000 nodes of 50 images are a few MB, not 80 (sets)
    platform: str = ""
