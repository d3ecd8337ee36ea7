"""The serve loop: keep the inventory current, check images, join, publish — every interval.

Reflectors keep each cluster's pods, workloads and ReplicaSets current in their own threads, and the
expected-list loader keeps the lists current in its own. One cycle thread reads their snapshots, builds
references, checks the unique images (cached, so a steady cycle sends few requests), joins, renders and
publishes by swapping attributes of `Published`. Before a check round it publishes the new inventory with the
last known statuses, so a slow registry delays statuses, never the inventory, and a scrape never waits for either.

Nothing outside holds the others up: a cluster that cannot be listed is left out of the cycle (its watches
show down) while the clusters that answer are served; a slow list server delays its own list only. Every
thread survives any exception: logged once, counted, backed off from. Ready means something can be served:
the first round is done and at least one cluster is listed with no list/watch failing past
`watch_down_threshold`, and the cycle is not stale (`cycles.CycleHealth`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from exporter.model.health import Counts, Health, ListHealth
from exporter.model.admission import Policy, flag_policy
from exporter.model.records import NodeImages, PodChain, Reference
from exporter.serve import firstseen
from exporter.common.logs import FailureLog
from exporter.serve.cycles import CycleHealth
from exporter.serve.endpoints import LazyPage, Published
from exporter.snapshot import admission, drift, platforms, retention
from exporter.snapshot.join import UNCHECKED, DigestFacts, ImageState, Snapshot, join
from exporter.sources import inventory, rollback
from exporter.sources.cluster import ClusterWatch, configmap_reader, watch
from exporter.sources.expected.loader import Loader
from exporter.sources.expected.sources import ExpectedLists
from exporter.sources.kube.api import ClusterClient
from exporter.sources.kube.owners import label_keys
from exporter.sources.kube.watch import Reflector
from exporter.sources.registry.checker import Checker, CheckResult
from exporter.sources.registry.client import INDEX_TYPES
from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.retention import Retention
from exporter.sources.registry.signatures import Signatures, Wanted
from exporter.sources.shards import Shard
from exporter.views import page, report, series
from exporter.views.exposition import MetricsPage, render

log = logging.getLogger(__name__)


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

    def keep_pulls(self, namespace: str, selected: frozenset[str] | None = None) -> bool:
        """Kubelet pull events count by namespace, each on one shard."""
        return self.keep_namespace(namespace, selected) and self.shard.keeps(namespace)

    def keep(self, ref: Reference, selected: frozenset[str] | None = None) -> bool:
        return (self.keep_namespace(ref.namespace, selected) and not any(p.search(ref.image) for p in self.ignore)
                and self.shard.keeps_reference(ref))


@dataclass
class _Cycle:
    """What one cycle gathered before checking: the inputs of both of its publications."""

    started: float
    refs: list[tuple[Reference, Keyring]] = field(default_factory=list)
    chains: dict[str, tuple[PodChain, ...]] = field(default_factory=dict)  # by listed cluster
    rollback: list[tuple[rollback.RollbackImage, Keyring]] = field(default_factory=list)
    expected: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    expected_images: list[str] = field(default_factory=list)
    lists_loading: list[str] = field(default_factory=list)  # lists whose first reading is under way
    waiting: list[str] = field(default_factory=list)  # clusters still listing for the first time, not failing
    nodes: dict[str, tuple[NodeImages, ...]] = field(default_factory=dict)  # what each listed cluster's nodes hold
    placements: dict[str, dict] = field(default_factory=dict)  # by cluster: where each reference runs or may run
    policies: dict[str, tuple[Policy, ...]] = field(default_factory=dict)  # by cluster: verifying admission policies
    included: dict[str, frozenset[str] | None] = field(default_factory=dict)  # namespaces opted in to policy-controller


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
        web_ui: bool = True,
        clock: Callable[[], float] = time.monotonic,
        service_account_tokens: bool = False,
        cycle_stale_after: float | None = None,
        require_signatures: list[str] | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.checker = checker
        self._node_keyring = node_keyring  # expected images are checked as a node would pull them
        self.published = published
        self.unit_sources = tuple(unit_sources)
        self.filters = filters or Filters()
        self.interval = interval
        self.watch_down_threshold = watch_down_threshold
        self.rollback_namespaces = list(rollback_namespaces or [])
        self.web_ui = web_ui
        self.first_seen: dict[tuple[str, ...], float] = {}  # problem -> Unix time first seen (exporter.serve.firstseen)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keys = label_keys(self.unit_sources)
        self._results: dict[tuple[str, str], CheckResult] = {}
        self._digests: dict[tuple[str, str], DigestFacts] = {}
        self._lacking: dict[Reference, tuple[str, ...]] = {}  # platforms a reference's nodes pull, its image lacks
        self._unsigned: dict[Reference, admission.Missing] = {}  # what its verifying policies require, not found
        self._flag_policies = tuple(flag_policy(glob) for glob in require_signatures or ())
        self.signatures = Signatures(checker)
        self.retention = retention  # --retention-source: cleanup policies read off the cycle
        self._first_round_done = False
        self._lists_loading: list[str] = []  # as the last cycle found them
        self.cycles = 0
        self.clusters = [
            watch(client, self._keys, node_keyring, watch_timeout, self.filters.namespace_selector,
                  self.filters.keep_pulls, self.rollback_namespaces,
                  service_account_tokens)
            for client in clusters]
        self.health = CycleHealth(interval, cycle_stale_after, pulse=self._fleet_pulse)
        published.stale = self.health.stale  # asked at each /readyz: a hung cycle publishes nothing
        self._snapshot: Snapshot | None = None  # the last published one
        # ConfigMap lists are read from the first cluster (the one the exporter runs in, usually)
        self._home = clusters[0].name if clusters else ""  # holds the expected lists' problems in the store
        self.expected = ExpectedLists.of(expected or [], read_configmap=configmap_reader(clusters[0]) if clusters else None)
        # each list read again an interval after its last reading, off the cycle; its failures counted as the cycle's
        self.loader = Loader(self.expected, interval if math.isfinite(interval) else 60.0,
                             on_failure=lambda exc: self.health.count_failure())
        # --cache-url: first-seen times kept in the shared cache too, so a restart keeps the page's "missing since"
        self._persisted = (firstseen.Persisted(checker.shared.first_seen, self._first_seen_scopes(),
                                               self._problem_scope) if checker.shared is not None else None)

    # -- lifecycle --

    def _all_reflectors(self) -> list[Reflector]:
        return [r for cluster in self.clusters for r in cluster.all_reflectors]

    def start(self) -> "Exporter":
        for reflector in self._all_reflectors():
            reflector.start()
        self.loader.start()
        if self.retention is not None:
            self.retention.start()
        self._thread = threading.Thread(target=self._loop, name="cycle", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.3) -> None:
        """Stop within `timeout` seconds in all: open watches are closed, not waited out. A thread still busy
        then (a check round, a list in flight) is a daemon thread: it ends with the process."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        reflectors = self._all_reflectors()
        for reflector in reflectors:
            reflector.request_stop()
        for reflector in reflectors:
            reflector.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.loader.close()
        if self.retention is not None:
            self.retention.close()
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.expected.close()

    def _loop(self) -> None:
        failures = FailureLog(log, "cycle", "the previous snapshot stays published")
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.health.started()
                self.cycle()
                self.health.completed()
                failures.recovered()
            except Exception as exc:  # the loop outlives any one cycle's failure
                failures.failed(exc)
                self.health.failed(exc)
                self._publish_failure()
            # until the first complete inventory is published, try again soon rather than in an interval;
            # a cycle that keeps failing is tried again less and less often, up to the interval
            interval = self.interval if self._first_round_done else min(self.interval, 1.0)
            if failures.in_a_row:
                interval = max(interval, min(2.0 ** (failures.in_a_row - 1), self.interval))
            self._wait(started + min(interval, 86400.0))

    def _wait(self, until: float) -> None:
        """Until the next cycle is due, or sooner when a cluster not listed before has just been listed, or a
        list's first reading has ended (what failed at start, or came slowly, is served within a second, not an
        interval later)."""
        while not self._stop.is_set():
            left = until - time.monotonic()
            if left <= 0 or any(c.gathered is None and c.listed() for c in self.clusters):
                return
            if self._lists_loading and self.expected.loading() != self._lists_loading:
                return
            # a cluster never gathered is looked at ten times a second: its first inventory follows its lists within
            # 0.1 s (looked at once a second, it came up to a second after them)
            waiting = any(c.gathered is None for c in self.clusters)
            self._stop.wait(min(left, 0.1 if waiting else 1.0))

    def _fleet_pulse(self) -> int:
        """Moves while a check round waits for the fleet's results (the shared store is looked at ~1/s then)."""
        shared = self.checker.shared
        return shared.counts.waited if shared is not None else 0

    def _publish_failure(self) -> None:
        """The last published snapshot with the failure counted and the sources' health as it is now."""
        try:
            health = self._health(time.monotonic())
            last = self._snapshot or join([], {}, {}, [], time.time())
            self.published.metrics = MetricsPage(render(*series.of(replace(last, health=health))))
        except Exception:  # noqa: BLE001 (never end the cycle thread; the failure is already logged)
            log.exception("publishing the failed cycle's health failed")

    # -- one cycle --

    def _inventory(self, cluster: ClusterWatch) -> inventory.Inventory:
        """The cluster's references (those the filters keep) and pod chains."""
        found = cluster.take_inventory(self.unit_sources, self.filters.keep_namespace)
        for problem in found.problems:
            log.debug("%s", problem)
        return found._replace(references={r for r in found.references if self.filters.keep(r, cluster.selected)})

    def cycle(self) -> Snapshot:
        """Gather, check, join, publish."""
        self.health.step("gathering the inventory")
        inputs = self._gather()
        # when checks are due, publish the inventory with what is known first: a slow registry delays statuses,
        # never the inventory
        requests = [(ref.image, keyring) for ref, keyring in inputs.refs]
        requests += [(image, self._node_keyring) for image in inputs.expected_images]
        requests += [(row.image, keyring) for row, keyring in inputs.rollback]
        self.health.step("checking images")
        self._results = self.checker.check_many(
            requests, progress=self.health.progressed, before_round=lambda: self._publish(inputs, round_done=False))
        self.health.step("reading digests")
        self._digests = self._digest_facts(inputs.refs)
        self.health.step("reading platforms")
        self._lacking = self._platforms_lacking(inputs)
        self.health.step("reading signatures")
        self._unsigned = self._signatures_missing(inputs)
        self.health.step("publishing")
        snapshot = self._publish(inputs, round_done=not inputs.waiting)
        self.cycles += 1
        return snapshot

    def _gather(self) -> _Cycle:
        """What the sources hold now: references with their keyrings, pod chains, rollback images, expected lists.

        A cluster counts once everything is listed: a partial list would raise false alarms (an expected image
        "not running" because its pods are not listed yet) and cost cycles while the lists are still coming. A
        cluster still listing is waited for (the round is not done) unless its lists fail: an unreachable cluster
        is left out, shown by its watches, and never holds the others back. A cluster whose inventory fails keeps
        its last one; the others go on. Expected lists are what the loader holds now.
        """
        inputs = _Cycle(started=time.monotonic())
        for cluster in self.clusters:
            if not cluster.listed():
                if cluster.gathered is None and not any(r.stats.failing_since is not None
                                                        for r in cluster.reflectors if r.kind == "Pod"):
                    inputs.waiting.append(cluster.client.name)
                continue
            try:
                cluster.gathered = self._gather_cluster(cluster)
            except Exception:  # one cluster's failure costs its freshness only
                log.exception("%s: inventory failed; its last inventory stays", cluster.client.name)
                cluster.inventory_errors += 1
            if cluster.gathered is not None:
                refs, chains, rollback_rows, placements = cluster.gathered
                inputs.refs.extend(refs)
                inputs.placements[cluster.client.name] = placements
                inputs.policies[cluster.client.name] = cluster.admission_policies() + self._flag_policies
                inputs.included[cluster.client.name] = cluster.included_namespaces()
                inputs.chains[cluster.client.name] = chains
                inputs.rollback.extend(rollback_rows)
                inputs.nodes[cluster.client.name] = cluster.node_images()
        inputs.lists_loading = self._lists_loading = self.expected.loading()
        inputs.expected = self.expected.lists
        inputs.expected_images = sorted({image for images in inputs.expected.values() for image in images})
        if self.retention is not None:  # the repositories whose policies matter, for the retention reader
            self.retention.in_use(retention.in_use([*(ref.image for ref, _ in inputs.refs), *inputs.expected_images,
                                                    *(row.image for row, _ in inputs.rollback)]))
        return inputs

    def _gather_cluster(self, cluster: ClusterWatch) -> tuple[list, tuple[PodChain, ...], list, dict]:
        """One cluster's part of a cycle: references with their keyrings, its pod chains, its rollback rows, where
        its references run."""
        found = self._inventory(cluster)
        cluster.keyrings.new_cycle()
        keyed = [(ref, cluster.keyrings.keyring(ref.namespace, ref.pull_secrets, ref.service_account))
                 for ref in found.references]
        rollback_rows = [(image, keyring) for image, keyring in rollback.images(
                             cluster.client.name, cluster.releases_now(), cluster.keyrings.keyring)
                         if self.filters.shard.keeps(f"{image.cluster}/{image.namespace}/{image.release}")]
        return keyed, found.chains, rollback_rows, found.placements  # a release belongs to one shard

    def _digest_facts(self, refs: list[tuple[Reference, Keyring]]) -> dict[tuple[str, str], DigestFacts]:
        """For running digests that differ from what their tag serves now: the index's manifests (when the tag
        is an index, one GET per index digest, kept) and whether the running digest is still in the registry."""
        candidates = drift.plan(refs, self._results, INDEX_TYPES)
        if not candidates:
            return {}
        children = self.checker.index_children(drift.indexes(candidates))
        return drift.facts(candidates, children, self.checker.check_many(drift.running(candidates)))

    def _platforms_lacking(self, inputs: _Cycle) -> dict[Reference, tuple[str, ...]]:
        """The platforms each reference's nodes pull that its image lacks: the manifests its tag serves read once
        per digest (an index's platforms; a single manifest's config blob), kept. Nothing is read for a cluster
        whose nodes are not watched."""
        needed = {}
        for cluster, placements in inputs.placements.items():
            needed.update(platforms.needs(placements, inputs.nodes.get(cluster, ())))
        if not needed:
            return {}
        manifests = self.checker.manifests(platforms.wanted(inputs.refs, needed, self._results))
        return platforms.verdicts(inputs.refs, needed, self._results, manifests)

    def _signatures_missing(self, inputs: _Cycle) -> dict[Reference, admission.Missing]:
        """The signatures and attestations each reference's verifying policies require and its registry lacks:
        read only for references some policy covers, by digest, kept (exporter.sources.registry.signatures)."""
        if not any(inputs.policies.values()):
            return {}  # no verifying policy anywhere: nothing is asked of any registry
        covering = admission.requirements((ref for ref, _ in inputs.refs), inputs.policies, inputs.included)
        if not covering:
            return {}
        wanted = admission.wanted(inputs.refs, covering, self._results)
        evidence = self.signatures.evidence(Wanted(image, keyring, host, *reads)
                                            for image, keyring, host, reads in wanted)
        return admission.verdicts(inputs.refs, covering, self._results, evidence)

    def _at_risk(self, inputs: _Cycle) -> set[retention.Row]:
        """The images in use that a cleanup policy's next run deletes, from the forecasts the reader holds now."""
        if self.retention is None:
            return set()
        others = [("", image) for image in inputs.expected_images]
        others += [(row.cluster, row.image) for row, _ in inputs.rollback]
        return retention.at_risk((ref for ref, _ in inputs.refs), others, self.retention.forecasts())

    def _state(self, image: str, keyring: Keyring) -> ImageState:
        result = self._results.get((image, keyring.fingerprint))
        if result is None:
            return UNCHECKED
        return ImageState(result.status, result.endpoint, result.digest, result.checked_at)

    def _health(self, started: float) -> Health:
        """The sources' health figures, copied through their public reads."""
        requests, durations = self.checker.stats.figures()
        pulls, pull_durations, pull_failures = [], [], []
        for cluster in self.clusters:
            last, histograms, failures = cluster.pull_health()
            pulls += last
            pull_durations += histograms
            pull_failures += failures
        return Health(
            registry_requests=requests, registry_durations=durations, registry_limits=self.checker.host_limits(),
            pulls=tuple(pulls), pull_durations=tuple(pull_durations), pull_failures=tuple(pull_failures),
            watches=tuple(w for cluster in self.clusters for w in cluster.watch_health()),
            lists=self._list_health(),
            unusable_secrets=tuple(sorted((c.client.name, namespace, secret, reason) for c in self.clusters
                                          for (namespace, secret), reason in c.keyrings.unusable.items())),
            release_errors=tuple(sorted(((c.client.name, namespace, reason), n) for c in self.clusters
                                        for (namespace, reason), n in c.decoder.counts().items())),
            inventory_errors=tuple(((c.client.name,), c.inventory_errors) for c in self.clusters),
            cycle_failures=self.health.failures,
            cycle_seconds=time.monotonic() - started,
            # --cache-url: whether the shared cache answers (probed once a cycle)
            shared_cache_up=self.checker.shared.probe() if self.checker.shared is not None else None,
            shared_cache_errors=self._shared_cache_errors(),
            retention=self.retention.health() if self.retention is not None else (),
            retention_errors=(tuple(sorted((key, n) for key, n in self.retention.errors.items()))
                              if self.retention is not None else ()),
        )

    def _shared_cache_errors(self) -> Counts:
        """What went wrong with the shared cache since start, by reason (none without --cache-url)."""
        shared = self.checker.shared
        if shared is None:
            return ()
        counts = shared.counts
        return ((("unavailable",), counts.failures), (("lock_lost",), counts.lost_locks),
                (("lock_keeper",), counts.keeper_failures))

    def _list_health(self) -> tuple[ListHealth, ...]:
        """Each list as the loader left it; every list down while the loader is gone (it reads nothing then)."""
        alive = self.loader.alive()
        return tuple(ListHealth(s.name, s.up and alive, s.errors, frozenset(s.images or ()), s.source,
                                loading=s.loading and alive)
                     for s in self.expected.health())

    def _readiness(self) -> str:
        """Why the exporter is not ready now, or "" when it is: ready while something can be served.

        A list/watch thread that ended makes it unready (its kind is frozen until a restart). With one cluster, it
        must be listed and no list/watch of it failing past `watch_down_threshold`; with several, one such cluster
        is enough (the others show down in `kube_image_watch_up` and on the page). Before the first round, a
        list/watch failing from the start is named: it is why no round completes.
        """
        ended = [r.stats.last_error for r in self._all_reflectors() if r.stats.ended]
        if ended:
            return ended[0]
        if not self.loader.alive():
            return "the expected-list loader has stopped (see the log)"
        now = self._clock()
        failing = [self._failing(cluster, now) for cluster in self.clusters]
        reasons = [fail or self._not_listed(cluster) for cluster, fail in zip(self.clusters, failing)]
        blocked = bool(reasons) and all(reasons)
        if blocked and (self._first_round_done or all(failing)):
            return reasons[0] if len(reasons) == 1 else "no cluster can be served: " + "; ".join(reasons)
        if not self._first_round_done:
            return "first inventory and check round not done yet"
        return ""

    def _failing(self, cluster: ClusterWatch, now: float) -> str:
        """The first list/watch of this cluster failing past the threshold, or ""."""
        for reflector in cluster.required_reflectors:
            down = reflector.stats.down_for(now)
            if down > self.watch_down_threshold:
                return (f"{cluster.client.name} {reflector.kind} list/watch failing for {down:.0f}s "
                        f"(threshold {self.watch_down_threshold:.0f}s): {reflector.stats.last_error}")
        return ""

    @staticmethod
    def _not_listed(cluster: ClusterWatch) -> str:
        """Why a cluster never listed cannot be served yet, or "" once it was."""
        if cluster.gathered is not None:
            return ""
        failing = next((r for r in cluster.all_reflectors if r.stats.failing_since is not None), None)
        return f"{cluster.client.name} not listed yet" + (f": {failing.kind}: {failing.stats.last_error}" if failing else "")

    def _publish(self, inputs: _Cycle, round_done: bool) -> Snapshot:
        snapshot = join(
            [(ref, self._state(ref.image, keyring)) for ref, keyring in inputs.refs],
            inputs.expected, {image: self._state(image, self._node_keyring) for image in inputs.expected_images},
            list(inputs.chains), time.time(), self._digests,
            [(row, self._state(row.image, keyring)) for row, keyring in inputs.rollback],
            chains=inputs.chains, health=self._health(inputs.started), expected_complete=not inputs.lists_loading,
            nodes=inputs.nodes, platforms=self._lacking, signatures=self._unsigned, retention=self._at_risk(inputs))
        self._snapshot = snapshot
        rows, histograms = series.of(snapshot)
        self.published.metrics = MetricsPage(render(rows, histograms))
        if round_done:  # the report of this round's statuses, built from the snapshot if and when it is asked for
            self.published.report = LazyPage(lambda: (report.page(snapshot), "application/json"))
            self._first_round_done = True
        reason = self._readiness()
        if self.web_ui:
            self.published.page = self._status_page(rows, snapshot, reason, round_done)
        self.published.not_ready_reason = reason
        self.published.ready = not reason
        return snapshot

    def _status_page(self, rows: dict, snapshot: Snapshot, not_ready_reason: str, round_done: bool) -> LazyPage:
        """The status page of this snapshot: first-seen times advanced now, its HTML built if and when `/` is opened."""
        persisted = self._persisted
        previous = persisted.merged(self.first_seen) if persisted is not None else self.first_seen
        # the problems of a cluster not listed (unreachable since the start) are not known now, not gone: kept
        unknown = {c.client.name for c in self.clusters if c.gathered is None}
        kept = [key for key in previous if page.tracked_cluster(key) in unknown] if unknown else []
        self.first_seen = firstseen.advance(previous, [*page.tracked_keys(rows), *kept], snapshot.created_at)
        if persisted is not None and round_done:  # a partial inventory would forget the problems of what is missing
            persisted.save(self.first_seen)
        data = page.of(snapshot, rows, self.first_seen, not_ready_reason, refresh_seconds=max(5, round(self.interval)))
        return LazyPage(lambda: (page.render(data), page.CONTENT_TYPE))

    # -- first-seen times in the shared cache --

    def _first_seen_scope(self, cluster: str) -> str:
        """Where the first-seen times of a cluster's problems are stored: one hash per cluster and shard, so a
        replica never deletes what another holds."""
        return f"{self.filters.shard.index}/{self.filters.shard.total}:{cluster}"

    def _problem_scope(self, key: tuple[str, ...]) -> str:
        """The scope of one problem: its cluster's; the first cluster's for an expected list's (no cluster holds it)."""
        return self._first_seen_scope(page.tracked_cluster(key) or self._home)

    def _first_seen_scopes(self) -> list[str]:
        names = dict.fromkeys([self._home, *(c.client.name for c in self.clusters)])
        return [self._first_seen_scope(name) for name in names]
