"""Keep one resource of one cluster current: list, then watch from the list's version, in layers.

The client-go reflector idea, written small: list (paginated) -> watch from that resourceVersion ->
on 410 Gone list again -> on connection errors retry with exponential backoff and jitter. Objects are
kept trimmed and keyed by UID, and deleted ones are forgotten, so memory follows the cluster. Readers
take `snapshot()`: a copy made at most once per change batch, under a lock held only for that memory
copy (never across I/O), and never mutated after it is returned.

An API server can forget: restored from a backup or reset, it no longer has the version being watched
from. It says so with 410 (older than its history) or 504 "Too large resource version" (newer than
anything it has); both mean list again. It may also accept the watch and stay silent. So after a failed
watch the reflector asks the server for its current version (a one-item list) before resuming, and lists
again when that version is behind its own, or when a bookmark or event goes back in version; and after
`relist_after` failures in a row of any kind it lists again rather than trust what it holds (a watch that
stayed open `QUIET_DROP` seconds before the network dropped it breaks the row: idle connections closed by a
load balancer are no reason to list 50,000 pods again). A watch that ends at its timeout without a single
event or bookmark is followed by the same question, as an apiserver bookmarks about once a minute.

Nothing ends the loop but a stop (client-go's `BackoffUntil` and `HandleCrash`): a line of the stream that is
not an event is an error like a dropped connection (counted, backed off, resumed from the last good version,
which the server replays from), and any other exception (a bug, a surprise in an object) is logged with its
traceback once per kind of exception, counted, backed off, and followed by a fresh list, since what is held may
be half applied. Should the thread end anyway, `stats.ended` says why, and the health and readiness show it.
Health follows the last outcome: a list that succeeds, or a watch the server accepts, ends a failure, even when
no event follows (a kind without objects stays quiet for the whole watch).

`request_stop()` closes the open watch stream, so a stop never waits for a silent server.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.common.redact import redact
from exporter.sources.kube.api import ApiError, ClusterClient, Expired, WatchStream

log = logging.getLogger(__name__)

FORBIDDEN_RETRY = 300.0  # seconds between asks for an optional kind the exporter is not granted
QUIET_DROP = 30.0  # seconds a watch must have stayed open for its drop not to count towards a relist


@dataclass
class _Plan:
    """What the next list/watch round must do first."""

    need_list: bool = True
    check_version: bool = False  # after a failed watch: does the server still have the version we resume from?


@dataclass
class ReflectorStats:
    """Plain counters for the exporter's own health metrics."""

    lists: int = 0
    relists_after_expiry: int = 0  # 410 Gone or 504 Too large resource version
    relists_after_reset: int = 0  # the server's version went back (a restore): it forgot what we watch from
    relists_after_errors: int = 0  # `relist_after` failures in a row
    watch_restarts: int = 0
    errors: int = 0
    last_error: str = ""
    skipped: int = 0  # objects that could not be trimmed (logged one by one)
    last_success: float = 0.0  # monotonic time of the last successful list or watch event/bookmark
    failing_since: float | None = None  # monotonic time of the first error since the last success (or open watch)
    ended: str = ""  # why the thread ended without being asked to stop ("" while it runs, or was stopped)
    not_installed: bool = False  # an optional kind the API does not serve (a CRD not installed): nothing to hold

    def down_for(self, now: float) -> float:
        """Seconds the list/watch has been failing without a success in between (0 when working)."""
        return 0.0 if self.failing_since is None else now - self.failing_since


@dataclass
class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    initial: float = 0.5
    maximum: float = 30.0  # client-go's ceiling: back within half a default interval of the API returning
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
        relist_after: int = 3,
        optional: bool = False,
        fields: type | None = None,
    ) -> None:
        """`optional`: a kind the exporter can do without (Nodes, policies): a 403 is logged once, then at debug level,
        and asked again every `FORBIDDEN_RETRY` seconds, so an exporter not granted it says so without a warning
        every 30 seconds for ever; a kind the API does not serve (a CRD not installed) is no failure at all: held
        as empty, said once at info level, looked up again as often. `fields`: the fields `trim` reads (a
        TypedDict, `objects.ObjectFields`): objects are decoded with those only (`ClusterClient.list_pages`)."""
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self._trim = trim
        self._selectors = dict(namespace=namespace, label_selector=label_selector, field_selector=field_selector)
        self._fields = fields
        self._watch_timeout = watch_timeout
        self._on_change = on_change
        self._on_event = on_event  # sees every object as it arrives (lists replay as ADDED)
        self._stop = threading.Event()
        self._sleep = sleep or (lambda seconds: self._stop.wait(seconds))
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._relist_after = relist_after
        self._failures = 0  # in a row: reset by any success, and by a watch that stayed open a while
        self._reported: set[str] = set()  # kinds of unexpected exceptions whose traceback was logged
        self._optional = optional
        self._forbidden_said = False
        self._stream: WatchStream | None = None
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
            target=self._run_until_stopped, name=f"reflector-{self.client.name}-{self.kind}", daemon=True
        )
        self._thread.start()
        return self

    def _run_until_stopped(self) -> None:
        """The thread: `run`, and should it end without a stop (it catches every Exception, so only a
        BaseException could end it), say so where health and readiness read it."""
        try:
            self.run()
            why = "" if self._stop.is_set() else "the loop returned"
        except BaseException as exc:  # noqa: BLE001 (the thread ends here; its health must say so)
            why = f"{type(exc).__name__}: {exc}"
        if why and not self._stop.is_set():
            self.stats.ended = why
            self.stats.errors += 1
            self.stats.last_error = f"{self.client.name} {self.kind}: the list/watch thread ended ({why})"
            if self.stats.failing_since is None:
                self.stats.failing_since = self._clock()
            log.error("%s; its objects are no longer kept current", redact(self.stats.last_error))

    def request_stop(self) -> None:
        """Ask the loop to end without waiting (stop many reflectors at once, then join them); an open watch is
        closed now rather than waited out."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, max_iterations: int | None = None) -> None:
        """List and watch until stopped (or for `max_iterations` list/watch rounds, for tests)."""
        plan = _Plan()
        iterations = 0
        while not self._stop.is_set() and (max_iterations is None or iterations < max_iterations):
            iterations += 1
            try:
                if self._round(plan):
                    return
            except Expired as exc:
                log.info("%s; listing again", exc)
                if not isinstance(exc, _WentBack):
                    self.stats.relists_after_expiry += 1
                plan.need_list = True
            except ApiError as exc:
                if self._stop.is_set() or self._after_api_error(exc, plan):
                    return
            except Exception as exc:  # noqa: BLE001 (a bug or a surprise: never the end of this thread)
                if self._stop.is_set() or self._after_bug(exc, plan):
                    return

    def _round(self, plan: _Plan) -> bool:
        """A list when one is needed, then one watch until the server ends it; True when stopped meanwhile."""
        if plan.check_version and not plan.need_list:
            plan.need_list = self._server_forgot()
        plan.check_version = False
        if plan.need_list:
            self._list()
            plan.need_list = False
            if self._stop.is_set():
                return True
        received = self._watch()
        if self._stop.is_set():
            return True
        self._success()  # the server ended the watch at its timeout: the connection works
        self.stats.watch_restarts += 1
        plan.check_version = received == 0  # a whole watch without a word, not even a bookmark: ask
        return False

    def _after_api_error(self, exc: ApiError, plan: _Plan) -> bool:
        """Count the failure, decide whether what is held must be listed again, back off; True when stopped."""
        if self._optional and exc.status == 404 and self._not_served(exc):
            plan.need_list = True
            return self._sleep(FORBIDDEN_RETRY)
        self._failed(str(exc))
        if exc.status in (403, 404):
            plan.need_list = True  # what we hold may be stale: start over once readable again
        elif self._failures >= self._relist_after and not plan.need_list:
            plan.need_list = True  # whatever keeps failing, what we hold may no longer be the cluster
            self.stats.relists_after_errors += 1
        plan.check_version = True
        delay = self._backoff.next_delay()
        if self._optional and exc.status == 403:
            delay = max(delay, FORBIDDEN_RETRY)
            log.log(logging.DEBUG if self._forbidden_said else logging.WARNING,
                    "%s; not granted: left out (asked again every %.0fs)", exc, delay)
            self._forbidden_said = True
            return self._sleep(delay)
        log.warning("%s; retrying in %.1fs", exc, delay)  # the error names the cluster and the resource
        return self._sleep(delay)

    def _not_served(self, exc: ApiError) -> bool:
        """An optional kind the API does not serve: held as empty and synced, no failure; False when the kind is
        served (a 404 of another cause stays a failure)."""
        forget = getattr(self.client, "forget_resource", None)
        if forget is None or not forget(self.api_version, self.kind):
            return False
        self._success()
        with self._lock:
            self._objects = {}
        self._publish()
        if not self.stats.not_installed:
            log.info("%s; not installed: nothing to read (looked up again every %.0fs)", exc, FORBIDDEN_RETRY)
        self.stats.not_installed = True
        self.synced.set()
        return True

    def _after_bug(self, exc: Exception, plan: _Plan) -> bool:
        """Count it, report it (its traceback the first time), list everything again after a pause."""
        self._failed(f"{self.client.name} {self.kind}: list/watch failed ({type(exc).__name__}: {str(exc)[:200]})")
        plan.need_list, plan.check_version = True, False  # what we hold may be half applied: list it all again
        delay = self._backoff.next_delay()
        self._report(exc, delay)
        return self._sleep(delay)

    def _failed(self, message: str) -> None:
        self._failures += 1
        self.stats.errors += 1
        self.stats.last_error = message
        if self.stats.failing_since is None:
            self.stats.failing_since = self._clock()

    def _report(self, exc: Exception, delay: float) -> None:
        """One line per failure; the traceback too the first time this kind of exception happens here."""
        line = f"{self.stats.last_error}; listing again in {delay:.1f}s"
        name = type(exc).__name__
        if name in self._reported:
            log.warning("%s", redact(line))
            return
        self._reported.add(name)
        log.error("%s\n%s", redact(line), redact("".join(traceback.format_exception(exc)).rstrip()))

    def _server_forgot(self) -> bool:
        """Whether the server's current resourceVersion is behind the one we resume from (it was restored or
        reset, and a watch from ours would wait for changes that already happened). One single-item list."""
        for _, current in self.client.list_pages(self.api_version, self.kind, page_size=1, **self._selectors):
            self._healthy()  # the server answers
            if _older(current, self._version):
                log.info("%s %s: the server is at resourceVersion %s, behind ours (%s): it was restored or reset; "
                         "listing again", self.client.name, self.kind, current, self._version)
                self.stats.relists_after_reset += 1
                return True
            return False
        return False

    def _list(self) -> None:
        objects: dict[str, Any] = {}
        version = ""
        for page, version in self.client.list_pages(self.api_version, self.kind, fields=self._fields,
                                                    **self._selectors):
            for obj in page:
                self._apply_into(objects, "ADDED", obj)
        with self._lock:
            self._objects = objects
        self._version = version
        self.stats.lists += 1
        self.stats.not_installed = False
        self._success()
        self._publish()
        self.synced.set()

    def _watch(self) -> int:
        """Apply the events of one watch until it ends; returns how many arrived (bookmarks too)."""
        stream = self.client.watch(
            self.api_version, self.kind, self._version, timeout_seconds=self._watch_timeout, fields=self._fields,
            **self._selectors
        )
        self._stream = stream
        if self._stop.is_set():  # asked to stop while the watch was being opened
            stream.close()
        opened = self._clock()
        self._healthy()  # the server accepted the watch: working, even if no event ever comes
        received = 0
        try:
            for event_type, obj in stream:
                received += 1
                if self._stop.is_set():
                    return received
                version = (obj.get("metadata") or {}).get("resourceVersion")
                if version and _older(version, self._version):
                    self.stats.relists_after_reset += 1
                    raise _WentBack(f"{self.client.name}: watch {self.kind}: resourceVersion went back from "
                                  f"{self._version} to {version}: the server was restored or reset")
                if version:
                    self._version = version
                self._success()
                if event_type == "BOOKMARK":
                    continue
                with self._lock:
                    self._apply_into(self._objects, event_type, obj)
                self._publish()
            return received
        except ApiError:
            if self._clock() - opened >= QUIET_DROP:
                self._failures = 0  # a quiet watch the network dropped after a while: not the server failing
            raise
        finally:
            self._stream = None
            stream.close()  # left early (stop, a version gone back): the connection never goes back half read

    def _apply_into(self, objects: dict[str, Any], event_type: str, obj: dict) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid or not isinstance(uid, str):  # an object the API always gives a uid: reported, not kept
            self.stats.skipped += 1
            log.warning("%s %s %s/%s skipped: no uid", self.client.name, self.kind, meta.get("namespace"),
                        meta.get("name"))
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
            self.stats.skipped += 1
            log.warning("%s %s %s/%s skipped: %s", self.client.name, self.kind, meta.get("namespace"),
                        meta.get("name"), exc)

    def _publish(self) -> None:
        with self._lock:
            self._dirty = True
        if self._on_change is not None:
            self._on_change()

    def _success(self) -> None:
        """A list, an event or a watch ended by the server at its timeout: working, and the row of failures ends."""
        self._healthy()
        self.stats.last_success = self._clock()
        self._failures = 0
        self._backoff.reset()

    def _healthy(self) -> None:
        """The server answered as it should (a list, an accepted watch): no longer failing. The row of failures
        and the backoff go on until something arrives, as a server that accepts watches and drops them at once
        must still be backed off from."""
        self._forbidden_said = False  # granted now: a later refusal is news again
        if self.stats.failing_since is not None and not self._stop.is_set():
            log.info("%s %s: list/watch works again after %.0fs", self.client.name, self.kind,
                     self._clock() - self.stats.failing_since)
        self.stats.failing_since = None


class _WentBack(Expired):
    """A bookmark or event older than the version watched from: the server was restored or reset."""


def _older(version: str, than: str) -> bool:
    """`version` is before `than`. Versions are opaque to clients, but every apiserver serves etcd revisions
    (integers); anything else is never called older."""
    try:
        return int(version) < int(than)
    except ValueError:
        return False
