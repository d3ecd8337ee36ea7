"""Health of the serve loop's threads: when a cycle last completed or made progress, how often a thread failed,
and whether the cycle is stale.

A cycle that raises or hangs must be seen from outside, not only in a log: `/readyz` asks `stale()` at
request time (so a cycle stuck in I/O turns the exporter unready even though nothing publishes any more),
and `kube_image_cycle_failures_total` counts the cycles (and the expected-list loader's rounds) that ended in
an exception. A long cycle is not a hung one: a check round paced by a registry's rate limit, or a wait for
the fleet's results, may run past the stale limit while checks complete. So a running cycle is stale only
when nothing progressed for the limit: it names its step, and each completed check (or each look at the
fleet's store while waiting) is progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from exporter.common.logs import describe

STALE_INTERVALS = 3  # a cycle is overdue after this many intervals
MIN_STALE_SECONDS = 120.0  # ...and never sooner: a full check round against a slow registry takes a while


class CycleHealth:
    """Kept by the cycle thread, read by the HTTP threads (plain attribute reads and writes under a lock).

    `pulse`, when given, is a counter that moves while the cycle waits on something outside that is alive
    (the fleet's store, looked at about once a second while other exporters check): a move seen at `stale()`
    counts as progress of the running cycle.
    """

    def __init__(self, interval: float, stale_after: float | None = None,
                 clock: Callable[[], float] = time.monotonic, pulse: Callable[[], int] | None = None) -> None:
        self.stale_after = stale_after if stale_after is not None else max(STALE_INTERVALS * interval,
                                                                           MIN_STALE_SECONDS)
        self._clock = clock
        self._pulse = pulse
        self._lock = threading.Lock()
        self._since = clock()  # the last completed cycle, or the start
        self._completed = False
        self._running = False  # a cycle is under way
        self._step = ""  # what the running cycle does now
        self._progress_at: float | None = None  # the running cycle's last progress
        self._pulse_seen: int | None = None
        self.failures = 0
        self.last_error = ""

    # -- written by the cycle thread --

    def started(self) -> None:
        with self._lock:
            self._running, self._step, self._progress_at, self._pulse_seen = True, "", None, None

    def step(self, what: str) -> None:
        """What the running cycle does now (named in the reason it is stale, if it becomes so)."""
        with self._lock:
            self._step = what

    def progressed(self, done: int | None = None, total: int | None = None) -> None:
        """Something completed in the running cycle (a check: `done` of `total`)."""
        with self._lock:
            self._progress_at = self._clock()
            if done is not None and total is not None:
                self._step = f"checking images, {done} of {total} done"

    def completed(self) -> None:
        with self._lock:
            self._since, self._completed, self.last_error = self._clock(), True, ""
            self._running, self._step = False, ""

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = describe(exc)
            self._running = False

    def count_failure(self) -> None:
        """Another thread of the loop failed (it logs and backs off itself): counted with the cycles' failures."""
        with self._lock:
            self.failures += 1

    # -- read by /readyz --

    def stale(self) -> str:
        """Why the cycle is overdue, or "" while it is not."""
        pulse = self._pulse() if self._pulse is not None else None
        with self._lock:
            now = self._clock()
            if self._running and pulse is not None:
                if self._pulse_seen is not None and pulse != self._pulse_seen:
                    self._progress_at = now
                self._pulse_seen = pulse
            last = max(self._since, self._progress_at) if self._running and self._progress_at is not None else self._since
            age = now - last
            if age <= self.stale_after:
                return ""
            what = "last completed cycle" if self._completed else "no cycle completed since start,"
            completed_age = now - self._since
            if self.last_error:
                why = f"; last failure: {self.last_error}"
            else:
                why = " (still running)"
                if self._step:
                    why += f"; now {self._step}"
                if self._progress_at is not None:
                    why += f", last progress {now - self._progress_at:.0f}s ago"
            return f"{what} {completed_age:.0f}s ago (threshold {self.stale_after:.0f}s){why}"
