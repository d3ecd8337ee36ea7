"""Plain counters of requests sent to registries, read by the metrics view (no client library here)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from exporter.model.health import Counts, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class RequestStats:
    """Requests by (registry host, method, code) and latency buckets by host; safe across threads."""

    requests: Counter = field(default_factory=Counter)
    duration_buckets: dict[str, list[int]] = field(default_factory=dict)
    duration_sum: Counter = field(default_factory=Counter)
    duration_count: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, host: str, method: str, code: str, seconds: float) -> None:
        with self._lock:
            self.requests[(host, method, code)] += 1
            buckets = self.duration_buckets.setdefault(host, [0] * len(DURATION_BUCKETS))
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            self.duration_sum[host] += seconds
            self.duration_count[host] += 1

    def total(self, method: str | None = None) -> int:
        with self._lock:
            return sum(n for (_, m, _), n in self.requests.items() if method is None or m == method)

    def figures(self) -> tuple[Counts, tuple[Histogram, ...]]:
        """A consistent copy: requests by (host, method, code) and a latency histogram per host, sorted."""
        with self._lock:
            requests = tuple(sorted(self.requests.items()))
            durations = tuple(Histogram((host,), DURATION_BUCKETS, tuple(buckets), self.duration_sum[host],
                                        self.duration_count[host])
                              for host, buckets in sorted(self.duration_buckets.items()))
        return requests, durations
