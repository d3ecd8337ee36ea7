"""Keep one resource of one cluster current: list, then watch from the list's version, in layers.

The client-go reflector idea, written small: list (paginated) -> watch from that resourceVersion ->
on 410 Gone list again -> on connection errors retry with exponential backoff and jitter. Objects are
kept trimmed and keyed by UID, and deleted ones are forgotten, so memory follows the cluster. Readers
take `snapshot()`: a copy made at most once per change batch, under a lock held only for that memory
copy (never across I/O), and never mutated after it is returned.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.kube.api import ApiError, ClusterClient, Expired

log = logging.getLogger(__name__)


@dataclass
class ReflectorStats:
    """Plain counters for the exporter's own health metrics."""

    lists: int = 0
    relists_after_expiry: int = 0
    watch_restarts: int = 0
    errors: int = 0
    last_error: str = ""
    skipped: int = 0  # objects that could not be trimmed (logged one by one)
    last_success: float = 0.0  # monotonic time of the last successful list or watch event/bookmark
    failing_since: float | None = None  # monotonic time of the first error since the last success

    def down_for(self, now: float) -> float:
        """Seconds the list/watch has been failing without a success in between (0 when working)."""
        return 0.0 if self.failing_since is None else now - self.failing_since


@dataclass
class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    initial: float = 0.5
    maximum: float = 60.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Reflector:
    """Mirror of one (cluster, kind[, namespace, selectors]) as {uid: trim(object)}."""

    def __init__(
        self,
        client: ClusterClient,
        api_version: str,
        kind: str,
        trim: Callable[[dict], Any] = lambda obj: obj,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 300,
        on_change: Callable[[], None] | None = None,
        on_event: Callable[[str, dict], None] | None = None,
        sleep: Callable[[float], bool] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self._trim = trim
        self._selectors = dict(namespace=namespace, label_selector=label_selector, field_selector=field_selector)
        self._watch_timeout = watch_timeout
        self._on_change = on_change
        self._on_event = on_event  # sees every object as it arrives (lists replay as ADDED)
        self._stop = threading.Event()
        self._sleep = sleep or (lambda seconds: self._stop.wait(seconds))
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._objects: dict[str, Any] = {}
        self._published: dict[str, Any] = {}
        self._dirty = False
        self._lock = threading.Lock()
        self._version = ""
        self.synced = threading.Event()
        self.stats = ReflectorStats()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, Any]:
        """The objects as of the last applied change ({uid: trimmed}); never mutated after it is returned."""
        with self._lock:
            if self._dirty:
                self._published = dict(self._objects)
                self._dirty = False
            return self._published

    # -- the loop --

    def start(self) -> "Reflector":
        self._thread = threading.Thread(
            target=self.run, name=f"reflector-{self.client.name}-{self.kind}", daemon=True
        )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the loop to end without waiting (stop many reflectors at once, then join them)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, max_iterations: int | None = None) -> None:
        """List and watch until stopped (or for `max_iterations` list/watch rounds, for tests)."""
        iterations = 0
        need_list = True
        while not self._stop.is_set() and (max_iterations is None or iterations < max_iterations):
            iterations += 1
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                self._success()  # the server ended the watch at its timeout: the connection works
                self.stats.watch_restarts += 1
            except Expired as exc:
                log.info("%s %s: %s; listing again", self.client.name, self.kind, exc)
                self.stats.relists_after_expiry += 1
                need_list = True
            except ApiError as exc:
                self.stats.errors += 1
                self.stats.last_error = str(exc)
                if self.stats.failing_since is None:
                    self.stats.failing_since = self._clock()
                delay = self._backoff.next_delay()
                log.warning("%s %s: %s; retrying in %.1fs", self.client.name, self.kind, exc, delay)
                if exc.status in (403, 404):
                    need_list = True  # what we hold may be stale: start over once readable again
                if self._sleep(delay):
                    return

    def _list(self) -> None:
        objects: dict[str, Any] = {}
        version = ""
        for page, version in self.client.list_pages(self.api_version, self.kind, **self._selectors):
            for obj in page:
                self._apply_into(objects, "ADDED", obj)
        with self._lock:
            self._objects = objects
        self._version = version
        self.stats.lists += 1
        self._success()
        self._publish()
        self.synced.set()

    def _watch(self) -> None:
        for event_type, obj in self.client.watch(
            self.api_version, self.kind, self._version, timeout_seconds=self._watch_timeout, **self._selectors
        ):
            if self._stop.is_set():
                return
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self._version = version
            self._success()
            if event_type == "BOOKMARK":
                continue
            with self._lock:
                self._apply_into(self._objects, event_type, obj)
            self._publish()

    def _apply_into(self, objects: dict[str, Any], event_type: str, obj: dict) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid:
            return
        if self._on_event is not None:
            try:
                self._on_event(event_type, obj)
            except Exception as exc:  # a consumer's failure costs this object only
                log.warning("%s %s: event handler failed: %s", self.client.name, self.kind, exc)
        if event_type == "DELETED":
            objects.pop(uid, None)
            return
        try:
            objects[uid] = self._trim(obj)
        except Exception as exc:  # one bad object is reported and skipped, the rest kept
            meta = obj.get("metadata") or {}
            self.stats.skipped += 1
            log.warning("%s %s %s/%s skipped: %s", self.client.name, self.kind, meta.get("namespace"),
                        meta.get("name"), exc)

    def _publish(self) -> None:
        with self._lock:
            self._dirty = True
        if self._on_change is not None:
            self._on_change()

    def _success(self) -> None:
        self.stats.last_success = self._clock()
        self.stats.failing_since = None
        self._backoff.reset()
