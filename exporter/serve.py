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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from exporter import __version__, inventory, report
from exporter.endpoints import Page, Published
from exporter.events.pulls import PULL_BUCKETS, PullTracker
from exporter.expected.formats import ListFormatError, parse_list
from exporter.exposition import CONTENT_TYPE, Histogram, render
from exporter.join import UNCHECKED, ImageState, Snapshot, join
from exporter.keyrings import KeyringSource
from exporter.kube.api import ClusterClient
from exporter.kube.listfile import ObjectIndex
from exporter.kube.objects import Pod, Workload, trim
from exporter.kube.owners import OwnerResolver, label_keys
from exporter.kube.snapshot import WORKLOAD_RESOURCES, api_lookup
from exporter.kube.watch import Reflector
from exporter.model import Reference
from exporter.registry.checker import Checker, CheckResult
from exporter.registry.credentials import Keyring
from exporter.registry.stats import DURATION_BUCKETS

log = logging.getLogger(__name__)

# Pods, the workloads with templates, and ReplicaSets (the owners of most pods); other owners are read once.
WATCHED = (("v1", "Pod"), *WORKLOAD_RESOURCES, ("apps/v1", "ReplicaSet"))


@dataclass
class Filters:
    """Which namespaces and images count (settings `namespaces`, `exclude_namespaces`, `ignore`)."""

    namespaces: frozenset[str] = frozenset()
    exclude_namespaces: frozenset[str] = frozenset()
    ignore: tuple[re.Pattern, ...] = ()

    def keep_namespace(self, namespace: str) -> bool:
        if self.namespaces and namespace not in self.namespaces:
            return False
        return namespace not in self.exclude_namespaces

    def keep(self, ref: Reference) -> bool:
        return self.keep_namespace(ref.namespace) and not any(p.search(ref.image) for p in self.ignore)


@dataclass
class ClusterWatch:
    """One cluster: its client, reflectors and credential source."""

    client: ClusterClient
    reflectors: list[Reflector]  # the inventory's objects
    events: Reflector  # kubelet events, fed to `pulls`
    keyrings: KeyringSource
    pulls: PullTracker
    owner_lookup: Callable = None
    owner_cache: dict = field(default_factory=dict)


def load_expected(sources: Iterable[str]) -> dict[str, dict[str, frozenset[str]]]:
    """Expected lists from files and directories (`NAME=PATH` names a list); bad ones are logged and skipped."""
    lists: dict[str, dict[str, frozenset[str]]] = {}
    for spec in sources:
        name, sep, path_text = spec.partition("=")
        if not sep or "/" in name:
            name, path_text = "", spec
        path = Path(path_text)
        files = sorted(p for p in path.iterdir() if p.suffix in (".txt", ".list", ".json")) if path.is_dir() else [path]
        for file in files:
            try:
                parsed = parse_list(file.read_bytes(), str(file))
            except (OSError, ListFormatError) as exc:
                log.error("expected list %s not loaded: %s", file, exc)
                continue
            for problem in parsed.problems:
                log.warning("%s", problem)
            lists[name if name and not path.is_dir() else file.stem] = parsed.images
    return lists


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
    ) -> None:
        self.checker = checker
        self.published = published
        self.expected_sources = list(expected or [])
        self.unit_sources = tuple(unit_sources)
        self.filters = filters or Filters()
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keys = label_keys(self.unit_sources)
        self._results: dict[tuple[str, str], CheckResult] = {}
        self.cycles = 0
        self.clusters = []
        for client in clusters:
            def trimmer(obj, keys=self._keys):
                return trim(obj, keys)

            reflectors = [Reflector(client, api_version, kind, trim=trimmer, watch_timeout=watch_timeout)
                          for api_version, kind in WATCHED]
            pulls = PullTracker(keep_namespace=lambda ns: self.filters.keep_namespace(ns))
            events = Reflector(client, "v1", "Event", trim=lambda obj: True, watch_timeout=watch_timeout,
                               on_event=pulls.apply)  # keeps only UIDs: the tracker holds what matters

            def get_secret(ns, name, client=client):
                return client.get("v1", "Secret", ns, name)

            def get_account(ns, name, client=client):
                return client.get("v1", "ServiceAccount", ns, name)

            self.clusters.append(ClusterWatch(client, reflectors, events, KeyringSource(get_secret, get_account,
                                              node_keyring), pulls, api_lookup(client, self._keys)))

    # -- lifecycle --

    def _all_reflectors(self) -> list[Reflector]:
        return [r for cluster in self.clusters for r in (*cluster.reflectors, cluster.events)]

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

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.cycle()
            except Exception:  # the loop outlives any one cycle's failure
                log.exception("cycle failed; the previous snapshot stays published")
            # until the first complete inventory is published, try again soon rather than in an interval
            interval = self.interval if self.published.ready else min(self.interval, 1.0)
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    # -- one cycle --

    def _inventory(self, cluster: ClusterWatch) -> tuple[set[Reference], list[Pod], OwnerResolver, bool]:
        objects = []
        synced = True
        for reflector in cluster.reflectors:
            synced &= reflector.synced.is_set() or reflector.kind != "Pod"
            objects.extend(reflector.snapshot().values())
        index = ObjectIndex(objects)
        cache = cluster.owner_cache

        def lookup(api_version, kind, namespace, name):
            found = index.lookup(api_version, kind, namespace, name)
            if found is not None:
                return found
            key = (kind, namespace, name)
            if key not in cache:  # kinds not watched (HelmRelease, Node): read once, kept for the process
                cache[key] = cluster.owner_lookup(api_version, kind, namespace, name)
            return cache[key]

        resolver = OwnerResolver(lookup, self.unit_sources)
        pods = [o for o in index.objects if isinstance(o, Pod)]
        workloads = [o for o in index.objects if isinstance(o, Workload)]
        refs, problems = inventory.build(cluster.client.name, pods, workloads, resolver)
        for problem in problems:
            log.debug("%s", problem)
        return {r for r in refs if self.filters.keep(r)}, pods, resolver, synced

    def cycle(self) -> Snapshot:
        started = time.monotonic()
        all_refs: list[tuple[Reference, Keyring]] = []
        pods_by_cluster = []
        synced = True
        for cluster in self.clusters:
            refs, pods, resolver, cluster_synced = self._inventory(cluster)
            synced &= cluster_synced
            cluster.keyrings.new_cycle()
            for ref in refs:
                all_refs.append((ref, cluster.keyrings.keyring(ref.namespace, ref.pull_secrets, ref.service_account)))
            pods_by_cluster.append((pods, resolver))
        expected = load_expected(self.expected_sources)
        expected_images = sorted({image for images in expected.values() for image in images})

        # publish the inventory with what is known, then check what is due
        self._publish(all_refs, expected, expected_images, started, pods_by_cluster, ready=False)
        requests = [(ref.image, keyring) for ref, keyring in all_refs]
        requests += [(image, Keyring()) for image in expected_images]
        self._results = self.checker.check_many(requests)
        snapshot = self._publish(all_refs, expected, expected_images, started, pods_by_cluster, ready=synced)
        self.cycles += 1
        return snapshot

    def _state(self, image: str, keyring: Keyring) -> ImageState:
        result = self._results.get((image, keyring.fingerprint))
        if result is None:
            return UNCHECKED
        return ImageState(result.status, result.endpoint, result.digest, result.checked_at)

    def _pull_series(self, histograms: dict) -> dict:
        durations, sizes, failures, pull_histograms = [], [], [], []
        for cluster in self.clusters:
            name = cluster.client.name
            last, by_registry, failed = cluster.pulls.snapshot()
            for (namespace, node, image), pull in sorted(last.items()):
                durations.append(((name, namespace, node, image), pull.seconds))
                if pull.size_bytes is not None:
                    sizes.append(((name, namespace, node, image), float(pull.size_bytes)))
            for registry, h in sorted(by_registry.items()):
                pull_histograms.append(Histogram((name, registry), PULL_BUCKETS, tuple(h.buckets), h.sum, h.count))
            for (registry, reason), n in sorted(failed.items()):
                failures.append(((name, registry, reason), float(n)))
        histograms["kube_image_pull_seconds"] = pull_histograms
        return {
            "kube_image_pull_duration_seconds": tuple(durations),
            "kube_image_pull_size_bytes": tuple(sizes),
            "kube_image_pull_failures_total": tuple(failures),
        }

    def _publish(self, all_refs, expected, expected_images, started, pods_by_cluster, ready: bool) -> Snapshot:
        pairs = [(ref, self._state(ref.image, keyring)) for ref, keyring in all_refs]
        expected_states = {image: self._state(image, Keyring()) for image in expected_images}
        snapshot = join(pairs, expected, expected_states, [c.client.name for c in self.clusters], time.time())
        series = dict(snapshot.series)
        stats = self.checker.stats
        series["kube_image_build_info"] = (((__version__,), 1.0),)
        series["kube_image_registry_requests_total"] = tuple(
            ((host, method, code), float(n)) for (host, method, code), n in sorted(stats.requests.items()))
        series["kube_image_cycle_duration_seconds"] = (((), time.monotonic() - started),)
        series["kube_image_last_cycle_timestamp_seconds"] = (((), time.time()),)
        histograms = {"kube_image_registry_request_duration_seconds": [
            Histogram((host,), DURATION_BUCKETS, tuple(buckets), stats.duration_sum[host], stats.duration_count[host])
            for host, buckets in sorted(stats.duration_buckets.items())
        ]}
        series.update(self._pull_series(histograms))
        self.published.metrics = Page.of(render(series, histograms), CONTENT_TYPE)
        if ready:  # the report is built once per cycle, with the round's statuses
            statuses = {ref.image: state.status.value for ref, state in pairs}
            reports = [report.build(pods, resolver)[0] for pods, resolver in pods_by_cluster]
            body = reports[0] if len(reports) == 1 else {"clusters": reports}
            body = {**body, "registry_status": dict(sorted(statuses.items()))}
            self.published.report = Page.of(orjson.dumps(body), "application/json")  # compact: 20x faster
            self.published.ready = True
        return snapshot
