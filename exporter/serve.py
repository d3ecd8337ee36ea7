"""The serve loop: keep the inventory current, check images, join, publish — every interval.

Reflectors keep each cluster's pods, workloads and ReplicaSets current in their own threads. One cycle
thread reads their snapshots, builds references, checks the unique images (cached, so a steady cycle
sends few requests), joins, renders and publishes by swapping attributes of `Published`. Before a check
round it publishes the new inventory with the last known statuses, so a slow registry delays statuses,
never the inventory, and a scrape never waits for either.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from cachetools import TTLCache

from exporter import __version__, inventory, report
from exporter import series as series_of
from exporter.endpoints import LazyPage, Page, Published
from exporter.events.pulls import PullTracker
from exporter.expected.sources import ExpectedLists, SourceError
from exporter.exposition import CONTENT_TYPE, render
from exporter.images import InvalidReference, normalize, parse
from exporter.join import UNCHECKED, DigestFacts, ImageState, Snapshot, join
from exporter.keyrings import KeyringSource
from exporter.kube.api import ApiError, ClusterClient
from exporter.kube.listfile import ObjectIndex
from exporter.kube.objects import Pod, Workload, trim
from exporter.kube.owners import OwnerResolver, label_keys
from exporter.kube.releases import Decoder, Release
from exporter.kube.snapshot import WORKLOAD_RESOURCES, api_lookup
from exporter.kube.watch import Reflector
from exporter.model import Reference, Status
from exporter.registry.checker import Checker, CheckResult
from exporter.registry.client import INDEX_TYPES
from exporter.registry.credentials import Keyring
from exporter.shards import Shard

log = logging.getLogger(__name__)

# Pods, the workloads with templates, and ReplicaSets (the owners of most pods); other owners are read once.
WATCHED = (("v1", "Pod"), *WORKLOAD_RESOURCES, ("apps/v1", "ReplicaSet"))


@dataclass
class Filters:
    """Which namespaces and images count (settings `namespaces`, `exclude_namespaces`, `ignore`).

    A namespace label selector is applied per cluster, by the API server: `selected` is the set of
    namespaces its Namespace reflector holds (None when no selector is configured).
    """

    namespaces: frozenset[str] = frozenset()
    exclude_namespaces: frozenset[str] = frozenset()
    ignore: tuple[re.Pattern, ...] = ()
    namespace_selector: str | None = None
    shard: Shard = Shard()  # --shard N --total-shards M: the workloads this replica holds

    def keep_namespace(self, namespace: str, selected: frozenset[str] | None = None) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        if selected is not None and namespace not in selected:
            return False
        return namespace not in self.exclude_namespaces

    def keep(self, ref: Reference, selected: frozenset[str] | None = None) -> bool:
        return (self.keep_namespace(ref.namespace, selected) and not any(p.search(ref.image) for p in self.ignore)
                and self.shard.keeps_reference(ref))


@dataclass
class ClusterWatch:
    """One cluster: its client, reflectors and credential source."""

    client: ClusterClient
    reflectors: list[Reflector]  # the inventory's objects
    keyrings: KeyringSource
    owner_lookup: Callable
    pulls: PullTracker = field(default_factory=PullTracker)
    events: Reflector | None = None  # kubelet events, fed to `pulls`
    namespaces: Reflector | None = None  # namespaces matching the label selector, when one is set
    selected: frozenset[str] | None = None  # their names, as of the last cycle
    releases: list[Reflector] = field(default_factory=list)  # Helm release storage, when rollback images are on
    decoder: Decoder = field(default_factory=Decoder)
    inventory_memo: inventory.Memo = field(default_factory=dict)  # rows of unchanged objects, kept
    # owners of kinds not watched (Node, HelmRelease): read once, then again after 15 min; bounded
    owner_cache: TTLCache = field(default_factory=lambda: TTLCache(maxsize=50_000, ttl=900))

    @property
    def all_reflectors(self) -> list[Reflector]:
        return [r for r in (*self.reflectors, self.events, self.namespaces, *self.releases) if r is not None]

    def listed(self) -> bool:
        """Every kind listed once (a kind that fails, forbidden or not served, is not waited for; Pods are)."""
        for reflector in (*self.reflectors, *self.releases):
            if not (reflector.synced.is_set() or (reflector.kind != "Pod" and reflector.stats.errors > 0)):
                return False
        return self.namespaces is None or self.namespaces.synced.is_set()

    def select_namespaces(self) -> None:
        if self.namespaces is not None:
            self.selected = frozenset(self.namespaces.snapshot().values())


@dataclass
class _Cycle:
    """What one cycle gathered before checking: the inputs of both of its publications."""

    started: float
    refs: list[tuple[Reference, Keyring]] = field(default_factory=list)
    pods_by_cluster: list[tuple[str, list[Pod], OwnerResolver]] = field(default_factory=list)
    rollback: list[tuple[tuple[str, ...], Keyring]] = field(default_factory=list)
    expected: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    expected_images: list[str] = field(default_factory=list)


def configmap_reader(client: ClusterClient):
    """Read ConfigMaps of expected lists from this cluster; API failures become the lists' SourceError."""

    def read(namespace: str, name: str):
        try:
            return client.get("v1", "ConfigMap", namespace, name)
        except ApiError as exc:
            raise SourceError(str(exc)) from None

    return read


class Exporter:
    def __init__(
        self,
        clusters: list[ClusterClient],
        checker: Checker,
        published: Published,
        expected: list[str] | None = None,
        unit_sources: tuple[str, ...] = ("flux",),
        filters: Filters | None = None,
        node_keyring: Keyring = Keyring(),
        interval: float = 60.0,
        watch_timeout: int = 300,
        watch_down_threshold: float = 300.0,
        rollback_namespaces: list[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checker = checker
        self.published = published
        self.unit_sources = tuple(unit_sources)
        self.filters = filters or Filters()
        self.interval = interval
        self.watch_down_threshold = watch_down_threshold
        self.rollback_namespaces = list(rollback_namespaces or [])
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keys = label_keys(self.unit_sources)
        self._results: dict[tuple[str, str], CheckResult] = {}
        self._digests: dict[tuple[str, str], DigestFacts] = {}
        self._first_round_done = False
        self.cycles = 0
        self.clusters = [self._watch(client, node_keyring, watch_timeout) for client in clusters]
        # ConfigMap lists are read from the first cluster (the one the exporter runs in, usually)
        self.expected = ExpectedLists.of(expected or [], read_configmap=configmap_reader(clusters[0]) if clusters else None)

    def _watch(self, client: ClusterClient, node_keyring: Keyring, watch_timeout: int) -> ClusterWatch:
        def trimmer(obj, keys=self._keys):
            return trim(obj, keys)

        def get_secret(ns, name):
            return client.get("v1", "Secret", ns, name)

        def get_account(ns, name):
            return client.get("v1", "ServiceAccount", ns, name)

        reflectors = [Reflector(client, api_version, kind, trim=trimmer, watch_timeout=watch_timeout)
                      for api_version, kind in WATCHED]
        cluster = ClusterWatch(client, reflectors, KeyringSource(get_secret, get_account, node_keyring),
                               api_lookup(client, self._keys))
        if self.filters.namespace_selector:
            cluster.selected = frozenset()  # nothing counts until the selected namespaces are known
            cluster.namespaces = Reflector(client, "v1", "Namespace", trim=lambda obj: obj["metadata"]["name"],
                                           label_selector=self.filters.namespace_selector, watch_timeout=watch_timeout)
        cluster.pulls = PullTracker(keep_namespace=lambda ns: self.filters.keep_namespace(ns, cluster.selected)
                                    and self.filters.shard.keeps(ns))  # pulls: by namespace, on one shard each
        cluster.events = Reflector(client, "v1", "Event", trim=lambda obj: True, watch_timeout=watch_timeout,
                                   on_event=cluster.pulls.apply)  # keeps only UIDs: the tracker holds what matters
        # Helm keeps revisions in Secrets (default) or ConfigMaps; only their images are kept once decoded
        cluster.releases = [Reflector(client, "v1", kind, trim=cluster.decoder, namespace=namespace,
                                      label_selector="owner=helm", watch_timeout=watch_timeout)
                            for namespace in self.rollback_namespaces for kind in ("Secret", "ConfigMap")]
        return cluster

    # -- lifecycle --

    def _all_reflectors(self) -> list[Reflector]:
        return [r for cluster in self.clusters for r in cluster.all_reflectors]

    def start(self) -> "Exporter":
        for reflector in self._all_reflectors():
            reflector.start()
        self._thread = threading.Thread(target=self._loop, name="cycle", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        reflectors = self._all_reflectors()
        for reflector in reflectors:
            reflector.request_stop()
        for reflector in reflectors:
            reflector.stop(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.expected.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.cycle()
            except Exception:  # the loop outlives any one cycle's failure
                log.exception("cycle failed; the previous snapshot stays published")
            # until the first complete inventory is published, try again soon rather than in an interval
            interval = self.interval if self._first_round_done else min(self.interval, 1.0)
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    # -- one cycle --

    def _inventory(self, cluster: ClusterWatch) -> tuple[set[Reference], list[Pod], OwnerResolver]:
        objects = []
        for reflector in cluster.reflectors:
            objects.extend(reflector.snapshot().values())
        cluster.select_namespaces()
        index = ObjectIndex(objects)
        cache = cluster.owner_cache

        def lookup(api_version, kind, namespace, name):
            found = index.lookup(api_version, kind, namespace, name)
            if found is not None:
                return found
            key = (kind, namespace, name)
            if key in cache:
                return cache[key]
            found = cache[key] = cluster.owner_lookup(api_version, kind, namespace, name)
            return found

        resolver = OwnerResolver(lookup, self.unit_sources)
        pods = [o for o in index.objects
                if isinstance(o, Pod) and self.filters.keep_namespace(o.meta.namespace, cluster.selected)]
        workloads = [o for o in index.objects if isinstance(o, Workload)]
        refs, problems = inventory.build(cluster.client.name, pods, workloads, resolver, cluster.inventory_memo)
        for problem in problems:
            log.debug("%s", problem)
        return {r for r in refs if self.filters.keep(r, cluster.selected)}, pods, resolver

    def cycle(self) -> Snapshot:
        inputs = _Cycle(started=time.monotonic())
        # a cluster counts once everything is listed: a partial list would raise false alarms (an expected image
        # "not running" because its pods are not listed yet) and cost cycles while the lists are still coming
        listed = [cluster for cluster in self.clusters if cluster.listed()]
        for cluster in listed:
            refs, pods, resolver = self._inventory(cluster)
            cluster.keyrings.new_cycle()
            for ref in refs:
                inputs.refs.append((ref, cluster.keyrings.keyring(ref.namespace, ref.pull_secrets, ref.service_account)))
            inputs.pods_by_cluster.append((cluster.client.name, pods, resolver))
            inputs.rollback.extend(row for row in self._rollback_images(cluster)  # a release belongs to one shard
                                   if self.filters.shard.keeps("/".join(row[0][:3])))
        self.expected.refresh()
        inputs.expected = self.expected.lists
        inputs.expected_images = sorted({image for images in inputs.expected.values() for image in images})

        # when checks are due, publish the inventory with what is known first: a slow registry delays statuses,
        # never the inventory
        requests = [(ref.image, keyring) for ref, keyring in inputs.refs]
        requests += [(image, Keyring()) for image in inputs.expected_images]
        requests += [(labels[4], keyring) for labels, keyring in inputs.rollback]
        self._results = self.checker.check_many(
            requests, before_round=lambda: self._publish(inputs, round_done=False))
        self._digests = self._digest_facts(inputs.refs)
        snapshot = self._publish(inputs, round_done=len(listed) == len(self.clusters))
        self.cycles += 1
        return snapshot

    def _rollback_images(self, cluster: ClusterWatch) -> list[tuple[tuple[str, ...], Keyring]]:
        """(cluster, namespace, release, revision, image) of every kept revision but the deployed one (its
        images are the running ones), with the keyring its pods would pull with."""
        rows = []
        for reflector in cluster.releases:
            for release in reflector.snapshot().values():
                if not isinstance(release, Release) or release.status == "deployed":
                    continue
                for pod in release.pods:
                    keyring = cluster.keyrings.keyring(release.namespace, pod.pull_secrets, pod.service_account)
                    for image in pod.images:
                        try:
                            image = normalize(image)
                        except InvalidReference:
                            pass  # checked as written: `invalid_reference`
                        labels = (cluster.client.name, release.namespace, release.name, str(release.revision), image)
                        rows.append((labels, keyring))
        return rows

    def _digest_facts(self, all_refs: list[tuple[Reference, Keyring]]) -> dict[tuple[str, str], DigestFacts]:
        """For running digests that differ from what their tag serves now: the index's manifests (when the tag
        is an index, one GET per index digest, kept) and whether the running digest is still in the registry."""
        candidates: dict[tuple[str, str], tuple[str, str, Keyring]] = {}  # -> (name, registry digest, keyring)
        indexes: dict[str, Keyring] = {}  # name@digest of the indexes those tags serve
        for ref, keyring in all_refs:
            if not ref.running_digest or (ref.image, ref.running_digest) in candidates:
                continue
            result = self._results.get((ref.image, keyring.fingerprint))
            if result is None or result.status != Status.AVAILABLE or not result.digest:
                continue
            if result.digest != ref.running_digest:
                name = parse(ref.image).name
                candidates[(ref.image, ref.running_digest)] = (name, result.digest, keyring)
                if result.media_type in INDEX_TYPES:
                    indexes[f"{name}@{result.digest}"] = keyring
        if not candidates:
            return {}
        children = self.checker.index_children(indexes.items())
        running = self.checker.check_many([(f"{name}@{running}", keyring)
                                           for (_, running), (name, _, keyring) in candidates.items()])
        facts = {}
        for (image, running_digest), (name, digest, keyring) in candidates.items():
            index = f"{name}@{digest}"
            state = running.get((f"{name}@{running_digest}", keyring.fingerprint))
            facts[(image, running_digest)] = DigestFacts(
                digest, children.get(index) if index in indexes else frozenset(),
                state.status if state is not None else Status.UNCHECKED)
        return facts

    def _state(self, image: str, keyring: Keyring) -> ImageState:
        result = self._results.get((image, keyring.fingerprint))
        if result is None:
            return UNCHECKED
        return ImageState(result.status, result.endpoint, result.digest, result.checked_at)

    def _health_series(self) -> tuple[dict, dict]:
        """Rows describing the sources: registry requests, pulls, watches, expected lists, pull secrets."""
        series, histograms = series_of.registry(self.checker.stats)
        pull_rows, pull_histograms = series_of.pulls((c.client.name, c.pulls.snapshot()) for c in self.clusters)
        series.update(pull_rows)
        histograms.update(pull_histograms)
        series.update(series_of.watches(
            (c.client.name, r.kind, r.stats, len(r.snapshot())) for c in self.clusters for r in c.all_reflectors))
        series.update(series_of.expected_lists(self.expected.states.values()))
        series.update(series_of.pull_secrets((c.client.name, c.keyrings.unusable) for c in self.clusters))
        series.update(series_of.release_errors((c.client.name, c.decoder.counts()) for c in self.clusters))
        if self.checker.shared is not None:  # --cache-url: whether the shared cache answers (probed once a cycle)
            series["kube_image_shared_cache_up"] = (((), float(self.checker.shared.probe())),)
        return series, histograms

    def _readiness(self) -> str:
        """Why the exporter is not ready now, or "" when it is."""
        if not self._first_round_done:
            return "first inventory and check round not done yet"
        now = self._clock()
        for cluster in self.clusters:
            for reflector in cluster.all_reflectors:
                down = reflector.stats.down_for(now)
                if down > self.watch_down_threshold:
                    return (f"{cluster.client.name} {reflector.kind} list/watch failing for {down:.0f}s "
                            f"(threshold {self.watch_down_threshold:.0f}s): {reflector.stats.last_error}")
        return ""

    def _publish(self, inputs: "_Cycle", round_done: bool) -> Snapshot:
        pairs = [(ref, self._state(ref.image, keyring)) for ref, keyring in inputs.refs]
        expected_states = {image: self._state(image, Keyring()) for image in inputs.expected_images}
        rollback = [(labels, self._state(labels[4], keyring)) for labels, keyring in inputs.rollback]
        snapshot = join(pairs, inputs.expected, expected_states, [name for name, _, _ in inputs.pods_by_cluster],
                        time.time(), self._digests, rollback)
        series = dict(snapshot.series)
        health, histograms = self._health_series()
        series.update(health)
        series["kube_image_build_info"] = (((__version__,), 1.0),)
        series["kube_image_cycle_duration_seconds"] = (((), time.monotonic() - inputs.started),)
        series["kube_image_last_cycle_timestamp_seconds"] = (((), time.time()),)
        self.published.metrics = Page.of(render(series, histograms), CONTENT_TYPE)
        if round_done:  # the report of this round's statuses, built if and when /report is asked for
            statuses = {ref.image: state.status.value for ref, state in pairs}
            self.published.report = LazyPage(
                lambda: (_report_body(inputs.pods_by_cluster, statuses), "application/json"))
            self._first_round_done = True
        reason = self._readiness()
        self.published.not_ready_reason = reason
        self.published.ready = not reason
        return snapshot


def _report_body(pods_by_cluster, statuses: dict[str, str]) -> bytes:
    """/report: one cluster's Sylva report, or each cluster's under its name; with registry statuses."""
    reports = {name: report.build(pods, resolver)[0] for name, pods, resolver in pods_by_cluster}
    body = next(iter(reports.values())) if len(reports) == 1 else {"clusters": reports}
    body = {**body, "registry_status": dict(sorted(statuses.items()))}
    return orjson.dumps(body)  # compact: 20x faster than indented json
