"""Pull observations from kubelet events, each occurrence counted once.

Events arrive again and again: a re-list replays every existing event as ADDED, a watch restart replays
some, and the kubelet folds repeats into one event whose `count` grows. The tracker remembers, per
event UID, the count it has seen (bounded; forgotten on DELETED), and counts only the difference. It
keeps the last pull per (namespace, node, image), all pull durations as histogram buckets per registry,
and failures per (registry, reason). Plain data in and out.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.events.messages import parse_backoff, parse_failed, parse_pulled
from exporter.images import InvalidReference, parse

PULL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
IMAGE_REASONS = frozenset({"Pulled", "Failed", "BackOff"})


@dataclass(frozen=True, slots=True)
class LastPull:
    seconds: float
    size_bytes: int | None


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
        return image, ""
    return str(ref), ref.registry


class PullTracker:
    """Feed it Event objects (raw API dicts) in any order, any number of times; read the plain results."""

    def __init__(self, keep_namespace: Callable[[str], bool] = lambda ns: True, memory: int = 100_000) -> None:
        self._keep = keep_namespace
        self._memory = memory
        self._seen: OrderedDict[str, int] = OrderedDict()  # event uid -> count already counted
        self.last_pull: dict[tuple[str, str, str], LastPull] = {}  # (namespace, node, image)
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

    def _apply(self, event_type: str, event: Mapping[str, Any]) -> None:
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
        count = _count(event)
        new = count - self._seen.get(uid, 0)
        self._seen[uid] = max(count, self._seen.get(uid, 0))
        self._seen.move_to_end(uid)
        while len(self._seen) > self._memory:
            self._seen.popitem(last=False)
        if new <= 0:
            return
        message = str(event.get("message") or "")
        node = _node(event)
        if reason == "Pulled":
            pulled = parse_pulled(message)
            if pulled is None or pulled.pull_seconds is None:
                return
            image, registry = _image_and_registry(pulled.image)
            self.last_pull[(namespace, node, image)] = LastPull(pulled.pull_seconds, pulled.size_bytes)
            self.histograms.setdefault(registry, PullHistogram()).observe(pulled.pull_seconds, new)
        elif reason == "Failed":
            failed = parse_failed(message)
            if failed is None:
                return
            registry = _image_and_registry(failed.image)[1] if failed.image else ""
            self.failures[(registry, failed.reason)] += new
        elif reason == "BackOff":
            image = parse_backoff(message)
            if image is not None:
                self.failures[(_image_and_registry(image)[1], "back_off")] += new


def _count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    for value in (series.get("count"), event.get("count")):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _node(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    return str(source.get("host") or event.get("reportingInstance") or "")
