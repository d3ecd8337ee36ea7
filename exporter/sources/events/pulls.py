"""Pull observations from kubelet events, each occurrence counted once.

Events arrive again and again: a re-list replays every existing event as ADDED, a watch restart replays
some, and the kubelet folds repeats into one event whose `count` grows. The tracker remembers, per
event UID, the count it has seen (bounded; forgotten on DELETED), and counts only the difference. It
keeps the last pull per (namespace, node, image), all pull durations as histogram buckets per registry,
and failures per (registry, reason). Plain data in and out.

Memory follows the cluster, not its history: a last pull is kept while a pod of its namespace on its node
uses its image, and for `retention` seconds after it was observed whatever happens (a Job's pod that ended
still shows its pull for a while); `forget_unused()`, called each cycle with the pods of the cluster, drops
the rest. At most `max_pulls` are kept in any case, the least recently observed going first.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.common.redact import redact_image
from exporter.model.images import InvalidReference, parse
from exporter.sources.events.messages import parse_backoff, parse_failed, parse_pulled

PULL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
IMAGE_REASONS = frozenset({"Pulled", "Failed", "BackOff"})


RETENTION = 600.0  # seconds a last pull is kept after it was observed, even when no pod uses the image any more
MAX_PULLS = 50_000  # last pulls kept at most (the most recently observed)


@dataclass(frozen=True, slots=True)
class LastPull:
    seconds: float
    size_bytes: int | None
    observed: float = 0.0  # the tracker's clock when it was seen


@dataclass
class PullHistogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(PULL_BUCKETS))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float, times: int = 1) -> None:
        for index, bound in enumerate(PULL_BUCKETS):
            if seconds <= bound:
                self.buckets[index] += times
        self.sum += seconds * times
        self.count += times


def _image_and_registry(image: str) -> tuple[str, str]:
    try:
        ref = parse(image)
    except InvalidReference:
        return redact_image(image), ""
    return str(ref), ref.registry


class PullTracker:
    """Feed it Event objects (raw API dicts) in any order, any number of times; read the plain results."""

    def __init__(self, keep_namespace: Callable[[str], bool] = lambda ns: True, memory: int = 100_000,
                 retention: float = RETENTION, max_pulls: int = MAX_PULLS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep_namespace
        self._memory = memory
        self.retention = retention
        self._max_pulls = max_pulls
        self._clock = clock
        self._seen: OrderedDict[str, int] = OrderedDict()  # event uid -> count already counted
        # (namespace, node, image) -> last pull, least recently observed first
        self.last_pull: dict[tuple[str, str, str], LastPull] = {}
        self._normalized: dict[str, str] = {}  # the running pods' images as written -> as pull events name them
        self.histograms: dict[str, PullHistogram] = {}  # registry -> durations
        self.failures: Counter = Counter()  # (registry, reason)
        self.ignored = 0
        self._lock = threading.Lock()  # a watch thread applies, the cycle thread reads

    def snapshot(self) -> tuple[dict, dict[str, PullHistogram], Counter]:
        """Copies of (last pulls, histograms, failures), consistent with each other."""
        with self._lock:
            histograms = {k: PullHistogram(list(h.buckets), h.sum, h.count) for k, h in self.histograms.items()}
            return dict(self.last_pull), histograms, Counter(self.failures)

    def apply(self, event_type: str, event: Mapping[str, Any]) -> None:
        with self._lock:
            self._apply(event_type, event)

    def forget_unused(self, running: Iterable[tuple[str, str, str]]) -> int:
        """Drop the last pulls no pod runs any more, once older than the retention; returns how many.

        `running` holds (namespace, node, image as the pod spec writes it) of the cluster's pods now.
        """
        with self._lock:
            if not self.last_pull:
                return 0
        previous, normalized = self._normalized, {}  # only this cycle's images: parsed once, kept while used
        in_use = set()
        for namespace, node, image in running:
            name = normalized.get(image)
            if name is None:
                name = normalized[image] = previous.get(image) or _image_and_registry(image)[0]
            in_use.add((namespace, node, name))
        self._normalized = normalized
        cutoff = self._clock() - self.retention
        with self._lock:
            stale = [key for key, pull in self.last_pull.items() if pull.observed < cutoff and key not in in_use]
            for key in stale:
                del self.last_pull[key]
        return len(stale)

    def _apply(self, event_type: str, event: Mapping[str, Any]) -> None:
        """One watch event: what it adds since the same event was last seen (a repeated event only bumps its
        count), recorded by its reason."""
        meta = event.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        if event_type == "DELETED":
            self._seen.pop(uid, None)
            return
        reason = event.get("reason")
        if reason not in IMAGE_REASONS:
            return
        involved = event.get("involvedObject") or {}
        namespace = involved.get("namespace") or meta.get("namespace") or ""
        if not self._keep(namespace):
            self.ignored += 1
            return
        new = self._new_occurrences(uid, _count(event))
        if new <= 0:
            return
        message = str(event.get("message") or "")
        if reason == "Pulled":
            self._pulled(message, namespace, _node(event), new)
        elif reason == "Failed":
            failed = parse_failed(message)
            if failed is not None:
                registry = _image_and_registry(failed.image)[1] if failed.image else ""
                self.failures[(registry, failed.reason)] += new
        elif reason == "BackOff":
            image = parse_backoff(message)
            if image is not None:
                self.failures[(_image_and_registry(image)[1], "back_off")] += new

    def _new_occurrences(self, uid: str, count: int) -> int:
        """How many times the event happened since it was last seen; the memory of events seen stays bounded."""
        new = count - self._seen.get(uid, 0)
        self._seen[uid] = max(count, self._seen.get(uid, 0))
        self._seen.move_to_end(uid)
        while len(self._seen) > self._memory:
            self._seen.popitem(last=False)
        return new

    def _pulled(self, message: str, namespace: str, node: str, new: int) -> None:
        """A Pulled event: the pull's duration into its registry's histogram, the last pull per (namespace, node,
        image) kept for the slowest-pulls table (bounded, the most recent last)."""
        pulled = parse_pulled(message)
        if pulled is None or pulled.pull_seconds is None:
            return
        image, registry = _image_and_registry(pulled.image)
        key = (namespace, node, image)
        self.last_pull.pop(key, None)  # to the end: the most recently observed
        self.last_pull[key] = LastPull(pulled.pull_seconds, pulled.size_bytes, self._clock())
        while len(self.last_pull) > self._max_pulls:
            del self.last_pull[next(iter(self.last_pull))]
        self.histograms.setdefault(registry, PullHistogram()).observe(pulled.pull_seconds, new)


def _count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    for value in (series.get("count"), event.get("count")):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _node(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    return str(source.get("host") or event.get("reportingInstance") or "")
