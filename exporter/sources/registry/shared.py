"""Check results shared by a fleet of exporters through Redis or Valkey (`--cache-url`).

Exporters of many clusters use the same images: with one shared store the fleet sends one registry request
per (image, credential set) per lifetime instead of one per exporter, and a restarted exporter answers from
the store instead of checking everything again. The in-process cache stays first; this store is asked only
for what it misses, and Redis is an accelerator, never a dependency: every call has a short timeout, a
`Breaker` stops calling a failing Redis for a while, and meanwhile the exporter checks on its own.

Keys (one prefix, so a shared Redis can hold other things):
  `kie:1:r:<credentials>:<image>`  a result as JSON (status, digest, media type, endpoint, detail, check time,
                                   expiry); kept `stale_for` past its expiry, answered only while another
                                   exporter re-checks it
  `kie:1:l:<credentials>:<image>`  single-flight lock (`SET NX PX` of a random token), extended while its holder
                                   checks; extended and released only by its holder (see "Locks" below)
  `kie:1:c:<name@digest>`          an index's manifests (content-addressed: the same for every reader)
  `kie:1:f:<N>/<M>:<cluster>`      a hash: when each problem of that cluster (shard N of M) was first seen,
                                   field the problem's labels as a JSON array, value a Unix time; the status
                                   page's "missing since" survives a restart. Expires `first_seen_ttl` after
                                   its exporter last wrote or refreshed it
`<credentials>` is a slow salted hash of the fingerprint of the credentials that apply to the image (`scope`):
a result obtained with one credential set never answers for another, and the store holds nothing a password
could be recovered from cheaply.
Tokens never leave the process. Only this module imports `redis`.

Locks: what one lock guarantees, and what it does not. A claim writes a random token (one per acquisition,
never the process id: that is 1 in every pod) with a lifetime of `lock_ttl`. Extension and release are Lua
scripts that act only where the key still holds that token, so an exporter whose lock expired (a pause, a lost
connection) can neither extend nor delete the lock a peer took since; it learns that it lost the lock (logged
once, counted in `Counts.lost_locks`) and still publishes its result, which is as good as the peer's. The lock
is advisory: it keeps the fleet from checking an image twice at once, never guards correctness, so expiry
while its holder still works costs at most one duplicate registry request. redis-py's `Lock` has the same
semantics one lock per command; a round holds thousands, so claims, extensions and releases go in one command per
round instead (5,000 locks on a local redis-server: acquire, extend, release 870/769/774 ms with `Lock`, 130/17/16
ms here, and the gap grows with each millisecond of network between the exporter and Redis).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from exporter.common.redact import redact_url
from exporter.model.images import InvalidReference, parse
from exporter.model.records import Status
from exporter.sources.registry.credentials import Keyring, fingerprint

log = logging.getLogger(__name__)

PREFIX = "kie:1:"
CHILDREN_TTL = 7 * 24 * 3600  # a digest's manifests never change; bound the memory of digests no one uses
FIRST_SEEN_TTL = 7 * 24 * 3600  # a cluster whose exporter is gone this long has its first-seen times forgotten
FIRST_SEEN_REFRESH = 3600.0  # a scope nothing changed in has its TTL set again this often
PASSWORD_ENV = "KUBE_IMAGE_EXPORTER_CACHE_PASSWORD"

Key = tuple[str, str]  # (image, credentials fingerprint)
Problem = tuple[str, ...]  # a problem's key on the status page (exporter.views.page.tracked_keys)
# extend (or release) every lock given that still holds our token, in one command (a round of thousands of images
# holds thousands of locks); answers how many were ours
_EXTEND = ("local n = 0 for _, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[2] then "
           "redis.call('PEXPIRE', key, ARGV[1]) n = n + 1 end end return n")
_RELEASE = ("local n = 0 for _, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[1] then "
            "redis.call('DEL', key) n = n + 1 end end return n")


class SharedCacheError(ValueError):
    """A cache URL or password that cannot be used; the message never shows a password."""


def check_url(url: str) -> str:
    """The URL when it names a Redis server (`redis://HOST:PORT/DB` or `rediss://`), else SharedCacheError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise SharedCacheError(f"cache URL {redact_url(url)!r}: not a valid URL") from None
    if parts.scheme not in ("redis", "rediss"):
        raise SharedCacheError(f"cache URL {redact_url(url)!r}: expected redis://HOST:PORT/DB or rediss://")
    if not parts.hostname:
        raise SharedCacheError(f"cache URL {redact_url(url)!r}: no host")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise SharedCacheError(f"cache URL {redact_url(url)!r}: the database must be a number, got {db!r}")
    return url


def read_password(password_file: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The password from `password_file`, else from the environment; None when neither sets one. A password
    in the URL itself wins over both."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise SharedCacheError(f"cache password file {password_file}: {exc.strerror}") from None
    return environ.get(PASSWORD_ENV) or None


@lru_cache(maxsize=4096)
def credentials_key(credentials: str) -> str:
    """What names a credential set (its fingerprint) in the store: the same in every exporter, costly to reverse."""
    return hashlib.pbkdf2_hmac("sha256", credentials.encode(), b"kube-image-exporter/shared-cache", 50_000).hex()[:24]


class Breaker:
    """Closed (calls go through), open (calls are refused for `cooldown` seconds after a failure), half-open
    (one trial call; success closes, failure opens again with a doubled cooldown up to `max_cooldown`)."""

    def __init__(self, cooldown: float = 2.0, max_cooldown: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.initial = cooldown
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._clock = clock
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def succeeded(self) -> None:
        with self._lock:
            self._opened_at = None
            self.cooldown = self.initial

    def failed(self) -> None:
        with self._lock:
            if self._opened_at is not None:  # a failed trial: wait longer before the next one
                self.cooldown = min(self.cooldown * 2, self.max_cooldown)
            self._opened_at = self._clock()


@dataclass
class Counts:
    """What the store was asked (for the benchmark's operations per cycle and the tests)."""

    round_trips: int = 0
    commands: int = 0
    failures: int = 0
    hits: int = 0
    stale_hits: int = 0
    waited: int = 0
    lost_locks: int = 0  # locks that expired and were taken by a peer while this process held them
    keeper_failures: int = 0  # unexpected failures of the thread that extends a round's locks


@dataclass
class Plan:
    """One round's split of the keys the local cache missed."""

    found: dict[Key, Any] = field(default_factory=dict)  # fresh results from the store
    mine: list[Key] = field(default_factory=list)  # keys to check here (locked by this process, or no store)
    waiting: list[Key] = field(default_factory=list)  # another exporter checks these now


class SharedCache:
    """Results, locks and index manifests in Redis; every call bounded, failures answered as "not known"."""

    def __init__(
        self,
        url: str,
        password: str | None = None,
        timeout: float = 0.5,
        lock_ttl: float = 30.0,
        wait: float = 600.0,  # a peer checking thousands of images at 50/s takes minutes; its locks tell it is alive
        stale_for: float = 3600.0,
        first_seen_ttl: float = FIRST_SEEN_TTL,
        breaker: Breaker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = redact_url(check_url(url))
        self.timeout = timeout
        self.lock_ttl = lock_ttl
        self.wait = wait
        self.stale_for = stale_for
        self.first_seen_ttl = first_seen_ttl
        self._first_seen_refreshed: dict[str, float] = {}  # scope -> when its TTL was last set (monotonic)
        self.breaker = breaker or Breaker()
        self.counts = Counts()
        self._clock = clock
        self._up = False
        self._warned = False
        self._closed = threading.Event()
        self._tokens: dict[Key, str] = {}  # the token of each lock this process holds now
        self._lost_warned = False
        self._redis = redis.Redis.from_url(
            url, password=password, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=0, max_connections=8)

    # -- health --

    @property
    def up(self) -> bool:
        """True while the last call answered (`kube_image_shared_cache_up`)."""
        return self._up and self.breaker.state == "closed"

    def probe(self) -> bool:
        """One PING (when the breaker allows), so `up` follows the store even when nothing needs it."""
        self._call(lambda r: r.ping(), commands=1)
        return self.up

    def close(self) -> None:
        """Stop using the store: a round waiting for other exporters stops waiting (the process is leaving)."""
        self._closed.set()
        self._redis.close()

    def _call(self, work: Callable[[redis.Redis], Any], commands: int) -> Any | None:
        """`work(client)` in one round trip, or None when the breaker is open or the call fails (logged once
        per outage, without a traceback or the password)."""
        if self._closed.is_set() or not self.breaker.allow():
            return None
        self.counts.round_trips += 1
        self.counts.commands += commands
        try:
            answer = work(self._redis)
        except (redis.RedisError, OSError) as exc:
            self.counts.failures += 1
            self.breaker.failed()
            self._up = False
            if not self._warned:
                log.warning("shared cache %s unavailable (%s): checking locally until it answers",
                            self.url, type(exc).__name__)
                self._warned = True
            return None
        self.breaker.succeeded()
        if self._warned:
            log.info("shared cache %s answers again", self.url)
            self._warned = False
        self._up = True
        return answer

    # -- results --

    @staticmethod
    def _result_key(key: Key) -> str:
        return f"{PREFIX}r:{credentials_key(key[1])}:{key[0]}"

    @staticmethod
    def _lock_key(key: Key) -> str:
        return f"{PREFIX}l:{credentials_key(key[1])}:{key[0]}"

    def lookup(self, keys: list[Key]) -> tuple[dict[Key, dict], dict[Key, dict]]:
        """(fresh, stale) records of `keys`, in one MGET; nothing when the store does not answer."""
        if not keys:
            return {}, {}
        values = self._call(lambda r: r.mget([self._result_key(k) for k in keys]), commands=1)
        fresh, stale = {}, {}
        now = self._clock()
        for key, raw in zip(keys, values or ()):
            if raw is None:
                continue
            try:
                record = orjson.loads(raw)
                Status(record["status"])
                expires = float(record["expires"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # written by another version: checked again and overwritten
            (fresh if expires > now else stale)[key] = record
        self.counts.hits += len(fresh)
        return fresh, stale

    def claim(self, keys: list[Key]) -> set[Key] | None:
        """The keys this process now holds the lock of (`SET NX PX`, one pipeline); None without a store."""
        if not keys:
            return set()
        token = secrets.token_hex(16)  # one per acquisition: a peer's lock never looks like ours
        ttl = int(self.lock_ttl * 1000)

        def work(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.set(self._lock_key(key), token, nx=True, px=ttl)
            return pipe.execute()

        answers = self._call(work, commands=len(keys))
        if answers is None:
            return None
        held = {key for key, ok in zip(keys, answers) if ok}
        self._tokens.update((key, token) for key in held)
        return held

    def _by_token(self, keys: Iterable[Key]) -> dict[str, list[str]]:
        """The lock keys this process holds among `keys`, grouped by the token they were claimed with."""
        groups: dict[str, list[str]] = {}
        for key in keys:
            token = self._tokens.get(key)
            if token is not None:
                groups.setdefault(token, []).append(self._lock_key(key))
        return groups

    def extend(self, keys: Iterable[Key]) -> int | None:
        """Keep holding these locks (a long round), one command per claim; a lock whose holder died expires in
        `lock_ttl`. Only locks that still hold our token are extended: how many were, or None without a store."""
        groups = self._by_token(keys)
        if not groups:
            return 0
        ttl = int(self.lock_ttl * 1000)

        def work(r):
            pipe = r.pipeline(transaction=False)
            for token, names in groups.items():
                pipe.eval(_EXTEND, len(names), *names, ttl, token)
            return pipe.execute()

        answers = self._call(work, commands=len(groups))
        if answers is None:
            return None
        extended, asked = sum(answers), sum(len(names) for names in groups.values())
        if extended < asked:
            self._lost(asked - extended)
        return extended

    def _lost(self, count: int) -> None:
        self.counts.lost_locks += count
        if not self._lost_warned:
            log.warning("shared cache %s: %d lock(s) expired and were taken by another exporter while this one "
                        "checked; both check once (a slow round or a paused process outlived lock_ttl %ss)",
                        self.url, count, self.lock_ttl)
            self._lost_warned = True

    def locked(self, keys: list[Key]) -> set[Key]:
        """The keys some exporter holds the lock of now (one MGET); all of them when the store does not answer."""
        values = self._call(lambda r: r.mget([self._lock_key(k) for k in keys]), commands=1)
        if values is None:
            return set(keys)
        return {key for key, value in zip(keys, values) if value is not None}

    def publish(self, records: Mapping[Key, tuple[dict, float]], release: Iterable[Key] = ()) -> None:
        """Store each (record, ttl) and drop the given locks, in one pipeline."""
        release = list(release)
        if not records and not release:
            return

        def work(r):
            pipe = r.pipeline(transaction=False)
            for key, (record, ttl) in records.items():
                keep = max(1, int((max(ttl, 0.0) + self.stale_for) * 1000))
                pipe.set(self._result_key(key), orjson.dumps(record), px=keep)
            for token, names in groups.items():
                pipe.eval(_RELEASE, len(names), *names, token)
            return pipe.execute()

        groups = self._by_token(release)
        for key in release:
            self._tokens.pop(key, None)
        answers = self._call(work, commands=len(records) + len(groups))
        if answers is not None and groups:
            released, asked = sum(answers[-len(groups):]), sum(len(names) for names in groups.values())
            if released < asked:
                self._lost(asked - released)

    # -- index manifests --

    def children(self, names: list[str]) -> dict[str, frozenset[str]]:
        """The manifests of each index (`name@digest`) some exporter already read."""
        if not names:
            return {}
        values = self._call(lambda r: r.mget([f"{PREFIX}c:{n}" for n in names]), commands=1)
        found = {}
        for name, raw in zip(names, values or ()):
            if raw is not None:
                try:
                    found[name] = frozenset(orjson.loads(raw))
                except (orjson.JSONDecodeError, TypeError):
                    continue
        return found

    def put_children(self, children: Mapping[str, frozenset[str]]) -> None:
        def work(r):
            pipe = r.pipeline(transaction=False)
            for name, digests in children.items():
                pipe.set(f"{PREFIX}c:{name}", orjson.dumps(sorted(digests)), px=CHILDREN_TTL * 1000)
            return pipe.execute()

        if children:
            self._call(work, commands=len(children))

    # -- when problems were first seen (the status page's "missing since") --

    @staticmethod
    def _first_seen_key(scope: str) -> str:
        return f"{PREFIX}f:{scope}"

    def load_first_seen(self, scopes: Iterable[str]) -> dict[Problem, float] | None:
        """Every first-seen time stored under these scopes (one HGETALL each, in one pipeline); None when the
        store does not answer. A field another version wrote in another form is left out."""
        scopes = list(scopes)
        if not scopes:
            return {}

        def work(r):
            pipe = r.pipeline(transaction=False)
            for scope in scopes:
                pipe.hgetall(self._first_seen_key(scope))
            return pipe.execute()

        answers = self._call(work, commands=len(scopes))
        if answers is None:
            return None
        found: dict[Problem, float] = {}
        for fields in answers:
            for raw, value in fields.items():
                try:
                    labels = orjson.loads(raw)
                    seen = float(value)
                except (orjson.JSONDecodeError, TypeError, ValueError):
                    continue
                if isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels):
                    found[tuple(labels)] = seen
        return found

    def save_first_seen(self, scopes: Iterable[str], upserts: Mapping[str, Mapping[Problem, float]],
                        deletes: Mapping[str, Iterable[Problem]]) -> bool:
        """Write what changed under each scope (HSET, HDEL) and keep every scope of `scopes` alive (EXPIRE when it
        was written or its TTL was last set `FIRST_SEEN_REFRESH` ago), in one pipeline; False when the store
        did not take it."""
        now = time.monotonic()
        ttl = max(1, int(self.first_seen_ttl))
        writes = [(scope, dict(upserts.get(scope) or {}), list(deletes.get(scope) or ()))
                  for scope in dict.fromkeys([*scopes, *upserts, *deletes])]
        writes = [(scope, up, down) for scope, up, down in writes
                  if up or down or now - self._first_seen_refreshed.get(scope, float("-inf")) >= FIRST_SEEN_REFRESH]
        if not writes:
            return True

        def work(r):
            pipe = r.pipeline(transaction=False)
            for scope, up, down in writes:
                name = self._first_seen_key(scope)
                if up:
                    pipe.hset(name, mapping={orjson.dumps(list(k)): repr(float(v)) for k, v in up.items()})
                if down:
                    pipe.hdel(name, *(orjson.dumps(list(k)) for k in down))
                pipe.expire(name, ttl)
            return pipe.execute()

        commands = sum(bool(up) + bool(down) + 1 for _, up, down in writes)
        if self._call(work, commands=commands) is None:
            return False
        for scope, _, _ in writes:
            self._first_seen_refreshed[scope] = now
        return True

    # -- a round through the store --

    def plan(self, keys: list[Key]) -> Plan:
        """Split the local cache's misses: fresh in the store, to check here (locked), checked elsewhere now.

        A key another exporter is checking is answered with its stale result when the store still has one,
        else waited for (`settle`). Without a store, everything is checked here.
        """
        fresh, stale = self.lookup(keys)
        plan = Plan(found=dict(fresh))
        rest = [k for k in keys if k not in fresh]
        held = self.claim(rest)
        if held is None:
            plan.mine = rest
            return plan
        if held:  # a peer may have published and unlocked between our MGET and our locks: look once more
            landed, _ = self.lookup([k for k in rest if k in held])
            if landed:
                plan.found.update(landed)
                held -= set(landed)
                self.publish({}, release=landed)
        for key in rest:
            if key in plan.found:
                continue
            if key in held:
                plan.mine.append(key)
            elif key in stale:
                plan.found[key] = stale[key]
                self.counts.stale_hits += 1
            else:
                plan.waiting.append(key)
        return plan

    def holding(self, keys: list[Key]) -> "_Holding":
        """A context that extends `keys`' locks every third of their lifetime while a round checks them."""
        return _Holding(self, keys)

    def settle(self, waiting: list[Key]) -> tuple[dict[Key, dict], list[Key]]:
        """Wait for the results other exporters are getting: (records that arrived, keys to check here).

        A key whose lock is gone without a result (its holder died) is claimed and checked here; after
        `wait` seconds, or when the store stops answering, whatever is left is checked here too; after `close`,
        nothing (the process is stopping).
        """
        found: dict[Key, dict] = {}
        mine: list[Key] = []
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while waiting:
            self.counts.waited += 1
            if self._closed.wait(pause):
                return found, []
            pause = min(pause * 2, 1.0)
            fresh, _ = self.lookup(waiting)
            found.update(fresh)
            waiting = [k for k in waiting if k not in fresh]
            if not waiting:
                break
            if not self.breaker.allow() or time.monotonic() > deadline:
                mine.extend(waiting)
                break
            locked = self.locked(waiting)
            orphaned = [k for k in waiting if k not in locked]  # their holder is gone without a result
            held = self.claim(orphaned)
            if held is None:
                mine.extend(waiting)
                break
            mine.extend(k for k in orphaned if k in held)
            waiting = [k for k in waiting if k not in held]
        return found, mine


class _Holding:
    def __init__(self, cache: SharedCache, keys: list[Key]) -> None:
        self._cache = cache
        self._keys = keys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "_Holding":
        if self._keys:
            self._thread = threading.Thread(target=self._run, name="shared-cache-locks", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        """Extend the round's locks every third of their lifetime; nothing ends this loop but the round's end.

        A store that does not answer is the store's business (`_call`: the breaker, `up` 0); anything else is a
        bug, logged once with its (redacted) traceback, counted, and tried again at the next beat.
        """
        failing = False
        while not self._stop.wait(self._cache.lock_ttl / 3):
            try:
                self._cache.extend(self._keys)
            except Exception:  # noqa: BLE001 (the keeper outlives any bug; the next beat tries again)
                self._cache.counts.keeper_failures += 1
                if not failing:
                    log.exception("shared cache %s: extending a round's locks failed; trying again in %ss",
                                  self._cache.url, round(self._cache.lock_ttl / 3, 1))
                failing = True
            else:
                failing = False

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._cache.timeout * 2 + 1)


def encode(result: Any, expires: float) -> dict:
    """The stored form of a check result (children stay out: index manifests have their own keys)."""
    return {"status": str(result.status), "digest": result.digest, "media_type": result.media_type,
            "endpoint": result.endpoint, "detail": result.detail, "checked_at": result.checked_at,
            "expires": expires}


def decode(record: dict, result_type: type) -> Any:
    return result_type(status=Status(record["status"]), digest=record.get("digest"),
                       endpoint=record.get("endpoint") or "", detail=record.get("detail") or "",
                       checked_at=float(record.get("checked_at") or 0.0), media_type=record.get("media_type"))


def scope(image: str, keyring: Keyring) -> Key:
    """The shared name of a check: the image and the credentials that apply to it (those the kubelet would try
    for its registry and repository), not the whole keyring, so clusters whose pods also hold secrets for other
    registries still share the check. A reference that does not parse needs no credential."""
    try:
        ref = parse(image)
    except InvalidReference:
        return image, fingerprint(())
    return image, fingerprint(keyring.match(ref.registry, ref.repository))


def check_through(
    cache: SharedCache,
    requests: Mapping[Key, tuple[str, Keyring]],
    check: Callable[[list[Key]], Mapping[Key, Any]],
    ttl: Callable[[Key, Any], float],
    result_type: type,
    before: Callable[[], None] | None = None,
) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Results of `requests` (the local cache's misses, by the checker's key) through the store: (results
    checked here, results from the store). `check(keys)` runs a round; `ttl(key, result)` is a result's
    lifetime; `before()` is called once before anything is checked or waited for (not when the store answered
    everything).

    One MGET and one pipeline of locks first; what is locked here is checked (locks kept alive meanwhile) and
    published with the locks dropped in one pipeline; what others check is waited for, then anything left.
    """
    members: dict[Key, list[Key]] = {}  # shared name -> the checker's keys it answers
    for key, (image, keyring) in requests.items():
        members.setdefault(scope(image, keyring), []).append(key)
    plan = cache.plan(list(members))
    checked: dict[Key, Any] = {}
    from_store: dict[Key, Any] = {}

    def answer(target: dict, name: Key, result: Any) -> None:
        for key in members[name]:
            target[key] = result

    for name, record in plan.found.items():
        answer(from_store, name, decode(record, result_type))
    if before is not None and (plan.mine or plan.waiting):
        before()

    def run(names: list[Key]) -> None:
        if not names:
            return
        with cache.holding(names):
            got = check([members[name][0] for name in names])
        records = {}
        for name in names:
            result = got[members[name][0]]
            answer(checked, name, result)
            life = ttl(members[name][0], result)
            records[name] = (encode(result, result.checked_at + life), life)
        cache.publish(records, release=names)

    run(plan.mine)
    if plan.waiting:
        arrived, left = cache.settle(plan.waiting)
        for name, record in arrived.items():
            answer(from_store, name, decode(record, result_type))
        run(left)
    return checked, from_store
