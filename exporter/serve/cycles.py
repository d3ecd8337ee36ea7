"""Health of the serve cycle: when it last completed, how often it failed, and whether it is stale.

A cycle that raises or hangs must be seen from outside, not only in a log: `/readyz` asks `stale()` at
request time (so a cycle stuck in I/O turns the exporter unready even though nothing publishes any more),
and `kube_image_cycle_failures_total` counts the cycles that ended in an exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.common.redact import redact

STALE_INTERVALS = 3  # a cycle is overdue after this many intervals
MIN_STALE_SECONDS = 120.0  # ...and never sooner: a full check round against a slow registry takes a while


class CycleHealth:
    """Kept by the cycle thread, read by the HTTP threads (plain attribute reads and writes under a lock)."""

    def __init__(self, interval: float, stale_after: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after if stale_after is not None else max(STALE_INTERVALS * interval,
                                                                           MIN_STALE_SECONDS)
        self._clock = clock
        self._lock = threading.Lock()
        self._since = clock()  # the last completed cycle, or the start
        self._completed = False
        self.failures = 0
        self.last_error = ""

    def completed(self) -> None:
        with self._lock:
            self._since, self._completed, self.last_error = self._clock(), True, ""

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = redact(f"{type(exc).__name__}: {exc}")[:500]

    def stale(self) -> str:
        """Why the cycle is overdue, or "" while it is not."""
        with self._lock:
            age = self._clock() - self._since
            if age <= self.stale_after:
                return ""
            what = "last completed cycle" if self._completed else "no cycle completed since start,"
            why = f"; last failure: {self.last_error}" if self.last_error else " (still running)"
            return f"{what} {age:.0f}s ago (threshold {self.stale_after:.0f}s){why}"
