"""One watched cluster: the reflectors that keep its objects current, its keyrings, pulls and release decoder.

`watch` wires them for one client; once per cycle the serve loop takes what they hold (`take_inventory`,
`releases_now`) and their health (`watch_health`, `pull_health`) as plain data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cachetools import TTLCache

from exporter.model.health import Histogram, LastPull, WatchHealth
from exporter.model.admission import Policy
from exporter.model.records import NodeImages
from exporter.sources import inventory
from exporter.sources.events.pulls import PULL_BUCKETS, PullTracker
from exporter.sources.expected.sources import SourceError
from exporter.sources.keyrings import KeyringSource
from exporter.sources.kube.api import ApiError, ClusterClient
from exporter.sources.kube.listfile import ObjectIndex
from exporter.sources.kube.nodes import trim_node
from exporter.sources.kube.objects import ObjectFields, trim
from exporter.sources.kube.policies import SIGSTORE_INCLUDE, trim_policy
from exporter.sources.kube.policies import WATCHED as POLICY_KINDS
from exporter.sources.kube.owners import OwnerResolver
from exporter.sources.kube.releases import Decoder, Release
from exporter.sources.kube.snapshot import WORKLOAD_RESOURCES, api_lookup
from exporter.sources.kube.watch import Reflector
from exporter.sources.registry.credentials import Keyring

KeepNamespace = Callable[[str, frozenset[str] | None], bool]  # (namespace, selected namespaces) -> counts

# Pods, the workloads with templates, and ReplicaSets (the owners of most pods); other owners are read once.
WATCHED = (("v1", "Pod"), *WORKLOAD_RESOURCES, ("apps/v1", "ReplicaSet"))


@dataclass
class ClusterWatch:
    """One cluster: its client, reflectors, credential source, and what is kept from cycle to cycle."""

    client: ClusterClient
    reflectors: list[Reflector]  # the inventory's objects
    keyrings: KeyringSource
    owner_lookup: Callable
    pulls: PullTracker = field(default_factory=PullTracker)
    events: Reflector | None = None  # kubelet events, fed to `pulls`
    nodes: Reflector | None = None  # the images each node holds (the last copies of an image gone from its registry)
    namespaces: Reflector | None = None  # namespaces matching the label selector, when one is set
    selected: frozenset[str] | None = None  # their names, as of the last cycle
    releases: list[Reflector] = field(default_factory=list)  # Helm release storage, when rollback images are on
    policies: list[Reflector] = field(default_factory=list)  # verifying admission policies (CRDs; optional)
    included: Reflector | None = None  # namespaces opted in to policy-controller (`policy.sigstore.dev/include`)
    decoder: Decoder = field(default_factory=Decoder)
    gathered: tuple | None = None  # the last inventory's (references, chains, rollback rows, placements): kept if
    # one fails
    inventory_errors: int = 0
    inventory_memo: inventory.Memo = field(default_factory=dict)  # rows of unchanged objects, kept
    # owners of kinds not watched (Node, HelmRelease): read once, then again after 15 min; bounded
    owner_cache: TTLCache = field(default_factory=lambda: TTLCache(maxsize=50_000, ttl=900))

    @property
    def all_reflectors(self) -> list[Reflector]:
        return [r for r in (*self.reflectors, self.events, self.namespaces, self.nodes, *self.releases,
                            *self.policies, self.included) if r is not None]

    @property
    def required_reflectors(self) -> list[Reflector]:
        """Those whose failure makes the cluster not servable: all but the optional ones — nodes and policies add
        to what is served; an exporter given no right to read them still does its main job."""
        optional = {id(r) for r in (self.nodes, self.included, *self.policies) if r is not None}
        return [r for r in self.all_reflectors if id(r) not in optional]

    def admission_policies(self) -> tuple[Policy, ...]:
        """The verifying policies the cluster holds now (none where their CRDs are not installed)."""
        return tuple(p for reflector in self.policies for p in reflector.snapshot().values() if p.rules)

    def included_namespaces(self) -> frozenset[str] | None:
        """The namespaces opted in to policy-controller; None when they cannot be read."""
        if self.included is None or self.included.stats.failing_since is not None or not self.included.synced.is_set():
            return None
        return frozenset(self.included.snapshot().values())

    def node_images(self) -> tuple[NodeImages, ...]:
        """What each node holds now, as the nodes' reflector has it (none when nodes are not watched)."""
        return tuple(self.nodes.snapshot().values()) if self.nodes is not None else ()

    def listed(self) -> bool:
        """Every kind listed once (a kind that fails, forbidden or not served, is not waited for; Pods are)."""
        for reflector in (*self.reflectors, *self.releases):
            if not (reflector.synced.is_set() or (reflector.kind != "Pod" and reflector.stats.errors > 0)):
                return False
        return self.namespaces is None or self.namespaces.synced.is_set()

    def select_namespaces(self) -> None:
        if self.namespaces is not None:
            self.selected = frozenset(self.namespaces.snapshot().values())

    def objects(self) -> ObjectIndex:
        """The inventory's objects as the reflectors hold them now."""
        return ObjectIndex(obj for reflector in self.reflectors for obj in reflector.snapshot().values())

    def take_inventory(self, unit_sources: tuple[str, ...], keep_namespace: KeepNamespace) -> inventory.Inventory:
        """References and pod chains of what the reflectors hold now, pods of namespaces that count only."""
        index = self.objects()
        self.select_namespaces()
        resolver = OwnerResolver(index.lookup_or(self.owner_lookup, self.owner_cache), unit_sources)
        pods = [pod for pod in index.pods if keep_namespace(pod.meta.namespace, self.selected)]
        self.pulls.forget_unused((pod.meta.namespace, pod.node, c.image) for pod in pods for c in pod.containers)
        return inventory.build(self.client.name, pods, index.workloads, resolver, self.inventory_memo)

    def releases_now(self) -> Iterator[Release | None]:
        """Kept Helm revisions as decoded (None for one that did not decode)."""
        for reflector in self.releases:
            yield from reflector.snapshot().values()

    def watch_health(self) -> list[WatchHealth]:
        name = self.client.name
        return [WatchHealth(name, r.kind, r.stats.failing_since is None and r.stats.lists > 0 and not r.stats.ended,
                            r.stats.errors,
                            r.stats.skipped, len(r.snapshot()),
                            r.stats.last_error if r.stats.failing_since is not None else "",
                            (("expired", r.stats.relists_after_expiry), ("version_reset", r.stats.relists_after_reset),
                             ("errors", r.stats.relists_after_errors)))
                for r in self.all_reflectors if self._shown(r)]

    def _shown(self, reflector: Reflector) -> bool:
        """Whether a watch has a health row: not a CRD that is not installed (nothing to watch), nor an optional kind
        before its first answer (whether it exists is not known yet: no row rather than a false 'down')."""
        if reflector.stats.not_installed:
            return False
        optional = reflector in (self.nodes, self.included, *self.policies)
        return not optional or reflector.stats.lists > 0 or reflector.stats.errors > 0

    def pull_health(self) -> tuple[list[LastPull], list[Histogram], list[tuple[tuple[str, ...], int]]]:
        """Last pulls, pull durations by registry and failures, as the kubelet's events told them."""
        name = self.client.name
        last, by_registry, failed = self.pulls.snapshot()
        return ([LastPull(name, namespace, node, image, pull.seconds, pull.size_bytes)
                 for (namespace, node, image), pull in sorted(last.items())],
                [Histogram((name, host), PULL_BUCKETS, tuple(h.buckets), h.sum, h.count)
                 for host, h in sorted(by_registry.items())],
                [((name, host, reason), n) for (host, reason), n in sorted(failed.items())])


def watch(client: ClusterClient, label_keys: frozenset[str], node_keyring: Keyring, watch_timeout: int,
          namespace_selector: str | None, keep_pulls: KeepNamespace,
          rollback_namespaces: list[str], service_account_tokens: bool = False) -> ClusterWatch:
    """The reflectors, keyrings and trackers of one cluster, not started yet.

    With `service_account_tokens`, node credential providers that ask for one get the workload's ServiceAccount
    token (TokenRequest API).
    """

    def trimmer(obj, keys=label_keys):
        return trim(obj, keys)

    def get_secret(ns, name):
        return client.get("v1", "Secret", ns, name)

    def get_account(ns, name):
        return client.get("v1", "ServiceAccount", ns, name)

    # the fields `trim` reads are decoded, the rest of each object skipped as it is read
    reflectors = [Reflector(client, api_version, kind, trim=trimmer, watch_timeout=watch_timeout, fields=ObjectFields)
                  for api_version, kind in WATCHED]
    get_token = client.create_token if service_account_tokens else None
    cluster = ClusterWatch(client, reflectors, KeyringSource(get_secret, get_account, node_keyring, get_token=get_token),
                           api_lookup(client, label_keys))
    if namespace_selector:
        cluster.selected = frozenset()  # nothing counts until the selected namespaces are known
        cluster.namespaces = Reflector(client, "v1", "Namespace", trim=lambda obj: obj["metadata"]["name"],
                                       label_selector=namespace_selector, watch_timeout=watch_timeout)
    cluster.pulls = PullTracker(keep_namespace=lambda ns: keep_pulls(ns, cluster.selected))
    cluster.nodes = Reflector(client, "v1", "Node", trim=trim_node, watch_timeout=watch_timeout, optional=True)
    cluster.policies = [Reflector(client, api_version, kind, trim=trim_policy, watch_timeout=watch_timeout,
                                  optional=True) for api_version, kind in POLICY_KINDS]
    cluster.included = Reflector(client, "v1", "Namespace", trim=lambda obj: obj["metadata"]["name"],
                                 label_selector=f"{SIGSTORE_INCLUDE}=true", watch_timeout=watch_timeout, optional=True)
    cluster.events = Reflector(client, "v1", "Event", trim=lambda obj: True, watch_timeout=watch_timeout,
                               on_event=cluster.pulls.apply)  # keeps only UIDs: the tracker holds what matters
    # Helm keeps revisions in Secrets (default) or ConfigMaps; only their images are kept once decoded
    cluster.releases = [Reflector(client, "v1", kind, trim=cluster.decoder, namespace=namespace,
                                  label_selector="owner=helm", watch_timeout=watch_timeout)
                        for namespace in rollback_namespaces for kind in ("Secret", "ConfigMap")]
    return cluster


def configmap_reader(client: ClusterClient):
    """Read ConfigMaps of expected lists from this cluster; API failures become the lists' SourceError."""

    def read(namespace: str, name: str):
        try:
            return client.get("v1", "ConfigMap", namespace, name)
        except ApiError as exc:
            raise SourceError(str(exc)) from None

    return read
