"""Expected lists read off the cycle: each source on its own schedule, several at once.

Read inside the cycle, one after another and up to `timeout` each, slow list servers held the whole exporter:
four kept it unready for a minute and a half, nine made every cycle stale. The loader reads each source in a
small pool of daemon threads (a reading in flight never holds up the process's exit), again `period` seconds after its last reading ended, and never two readings of one
source at once; the cycle takes what `ExpectedLists` holds when it runs (the last good content of each list,
a list whose first reading is still under way shown as loading).

The loader's own thread survives anything: an exception is logged once, counted (`on_failure`), backed off
from, and the loader goes on. `alive()` tells a loader that stopped anyway, so the serve loop can say it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
import queue

from exporter.common.logs import FailureLog, describe
from exporter.sources.expected.sources import ExpectedLists, Spec

log = logging.getLogger(__name__)

MAX_READERS = 8  # list sources read at once
MAX_BACKOFF = 60.0  # seconds between rounds of a loader that keeps failing


class Loader:
    def __init__(self, lists: ExpectedLists, period: float,
                 on_failure: Callable[[BaseException], None] = lambda exc: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lists = lists
        self.period = max(period, 0.1)
        self._on_failure = on_failure
        self._clock = clock
        self._lock = threading.Lock()
        self._due: dict[Spec, float] = dict.fromkeys(lists.specs, 0.0)  # when each source is read next
        self._reading: set[Spec] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.SimpleQueue[Spec | None] = queue.SimpleQueue()
        self._readers = max(1, min(MAX_READERS, len(lists.specs)))
        self._thread: threading.Thread | None = None
        self.failures = 0

    def start(self) -> "Loader":
        if self.lists.specs:
            for n in range(self._readers):
                threading.Thread(target=self._reader, name=f"expected-list-{n}", daemon=True).start()
            self._thread = threading.Thread(target=self._run, name="expected-lists", daemon=True)
            self._thread.start()
        return self

    def alive(self) -> bool:
        """False only for a loader that was started and whose thread is gone while it was not asked to stop."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    def close(self, timeout: float = 0.1) -> None:
        """Stop scheduling; a reading in flight is not waited for (its thread ends with the process)."""
        self._stop.set()
        self._wake.set()
        for _ in range(self._readers):
            self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = FailureLog(log, "expected-list loader", "its lists keep their last content; trying again")
        backoff = 1.0
        while not self._stop.is_set():
            try:
                wait = self._round()
                failures.recovered()
                backoff = 1.0
            except Exception as exc:  # noqa: BLE001 (the loader outlives any one round's failure)
                self.failures += 1
                failures.failed(exc)
                self._on_failure(exc)
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            self._wake.wait(wait)
            self._wake.clear()

    def _round(self) -> float:
        """Start the readings that are due; seconds until the next one is."""
        now = self._clock()
        with self._lock:
            due = [spec for spec, at in self._due.items() if at <= now and spec not in self._reading]
            self._reading.update(due)
        for spec in due:
            self._queue.put(spec)
        with self._lock:
            waiting = [at for spec, at in self._due.items() if spec not in self._reading]
        return max(0.05, min(waiting, default=self.period) - now)

    def _reader(self) -> None:
        while (spec := self._queue.get()) is not None and not self._stop.is_set():
            self._read(spec)

    def _read(self, spec: Spec) -> None:
        try:
            self.lists.refresh_spec(spec)  # failures of the source itself are kept in its state, never raised
        except Exception as exc:  # noqa: BLE001 (a bug reading one source: counted, the others go on)
            self.failures += 1
            log.error("expected list %s: reading failed: %s", spec.display, describe(exc))
            self._on_failure(exc)
        finally:
            with self._lock:
                self._reading.discard(spec)
                self._due[spec] = self._clock() + self.period
            self._wake.set()
