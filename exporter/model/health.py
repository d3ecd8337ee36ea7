"""The sources' own health as plain figures: copied once per cycle, handed to the join, rendered by views.

Registry requests, kubelet pulls, each list/watch, each expected list, unusable pull secrets and release
decoding failures. The cycle reads each source through its public read and fills a `Health`; nothing
here holds a lock or a reference to a live source, so a view of it can never wait on one.
"""

from __future__ import annotations

from dataclasses import dataclass

Counts = tuple[tuple[tuple[str, ...], int], ...]  # (labels, count), in the order they are to be shown


@dataclass(frozen=True, slots=True)
class Histogram:
    """One histogram series: cumulative counts per upper bound (ascending, +Inf implied by `count`)."""

    labels: tuple[str, ...]
    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class WatchHealth:
    """One list/watch (cluster, kind[, namespace]) as of the cycle."""

    cluster: str
    kind: str
    up: bool  # listed once, and no error since the last success
    errors: int
    skipped: int  # objects that could not be trimmed
    objects: int  # held now
    last_error: str = ""  # why it is failing now; "" while it is not
    relists: tuple[tuple[str, int], ...] = ()  # (reason, count): lists again after expiry, a version reset, errors


@dataclass(frozen=True, slots=True)
class ListHealth:
    """One source of one expected list."""

    name: str
    up: bool
    errors: int
    images: frozenset[str]  # of its last good content
    source: str = ""  # where it is read (a URL redacted)
    loading: bool = False  # its first reading is under way: no content and no failure known yet


@dataclass(frozen=True, slots=True)
class RegistryLimit:
    """One registry host's limits as of the cycle: a pause running now, and a rate its 429s taught."""

    host: str
    paused_until: float = 0.0  # Unix time no request goes before; 0 when it is not paused
    reason: str = ""  # what caused the pause (redacted and escaped by views like any outside text)
    rate_limited: bool = False  # the registry asked for the pause (429, Retry-After); else a backoff after failures
    learned_rate: float | None = None  # requests a second the exporter slowed to after 429s; None: not slowed


@dataclass(frozen=True, slots=True)
class LastPull:
    """The last pull the kubelet reported of one image on one node."""

    cluster: str
    namespace: str
    node: str
    image: str
    seconds: float
    size_bytes: int | None


@dataclass(frozen=True, slots=True)
class PolicyHealth:
    """One registry cleanup policy read for a retention forecast: read at its last reading or not, and its next run."""

    policy: str
    up: bool
    next_run: float | None = None


@dataclass(frozen=True)
class Health:
    """Every health figure of one cycle."""

    registry_requests: Counts = ()  # (host, method, code)
    registry_durations: tuple[Histogram, ...] = ()  # labels (host,)
    registry_limits: tuple[RegistryLimit, ...] = ()  # hosts paused or slowed now, by host
    pulls: tuple[LastPull, ...] = ()
    pull_durations: tuple[Histogram, ...] = ()  # labels (cluster, registry)
    pull_failures: Counts = ()  # (cluster, registry, reason)
    watches: tuple[WatchHealth, ...] = ()
    lists: tuple[ListHealth, ...] = ()
    unusable_secrets: tuple[tuple[str, str, str, str], ...] = ()  # (cluster, namespace, secret, reason)
    release_errors: Counts = ()  # (cluster, namespace, reason)
    inventory_errors: Counts = ()  # (cluster,): inventories that failed (the cluster's last one was kept)
    cycle_failures: int = 0  # cycles that ended in an exception since start
    shared_cache_up: bool | None = None  # whether the shared cache (--cache-url) answers; None when none is set
    shared_cache_errors: Counts = ()  # (reason,): calls that failed, locks lost to a peer, lock keeper failures
    cycle_seconds: float = 0.0  # what gathering and checking took this cycle
    retention: tuple[PolicyHealth, ...] = ()  # cleanup policies read (--retention-source)
    retention_errors: Counts = ()  # (source, reason)
