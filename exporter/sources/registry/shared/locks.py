"""Single-flight locks in the store: `kie:1:l:<credentials>:<image>`, held while one exporter checks an image.

What one lock guarantees, and what it does not. A claim writes a random token (one per acquisition, never the
process id: that is 1 in every pod) with `SET NX PX` and a lifetime of `lock_ttl`. Extension and release are Lua
scripts that act only where the key still holds that token, so an exporter whose lock expired (a pause, a lost
connection) can neither extend nor delete the lock a peer took since; it learns that it lost the lock (logged
once, counted in `Counts.lost_locks`) and still publishes its result, which is as good as the peer's. The lock is
advisory: it keeps the fleet from checking an image twice at once, never guards correctness, so expiry while its
holder still works costs at most one duplicate registry request. A holder that dies leaves its locks to expire in
`lock_ttl`; a live holder's `Keeper` extends them every third of that.

redis-py's `Lock` has the same semantics one lock per command; a round holds thousands, so claims, extensions and
releases go in one command per round instead (5,000 locks on a local redis-server: acquire, extend, release
870/769/774 ms with `Lock`, 130/17/16 ms here, and the gap grows with each millisecond of network between the
exporter and Redis).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from exporter.sources.registry.shared.connection import PREFIX, Connection
from exporter.sources.registry.shared.results import Key, credentials_key

log = logging.getLogger("exporter.sources.registry.shared")

# extend (or release) every lock given that still holds our token, in one command; answers how many were ours
_EXTEND = ("local n = 0 for _, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[2] then "
           "redis.call('PEXPIRE', key, ARGV[1]) n = n + 1 end end return n")
_RELEASE = ("local n = 0 for _, key in ipairs(KEYS) do if redis.call('GET', key) == ARGV[1] then "
            "redis.call('DEL', key) n = n + 1 end end return n")

Held = dict[str, list[str]]  # token -> the lock keys claimed with it


class Locks:
    """The locks this process claims, extends and releases, each by the token it was claimed with."""

    def __init__(self, connection: Connection, ttl: float) -> None:
        self.connection = connection
        self.ttl = ttl
        self._tokens: dict[Key, str] = {}  # the token of each lock this process holds now
        self._lost_warned = False

    @staticmethod
    def key(key: Key) -> str:
        return f"{PREFIX}l:{credentials_key(key[1])}:{key[0]}"

    def claim(self, keys: list[Key]) -> set[Key] | None:
        """The keys this process now holds the lock of (`SET NX PX`, one pipeline); None without a store."""
        if not keys:
            return set()
        token = secrets.token_hex(16)  # one per acquisition: a peer's lock never looks like ours
        ttl = int(self.ttl * 1000)

        def work(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.set(self.key(key), token, nx=True, px=ttl)
            return pipe.execute()

        answers = self.connection.call(work, commands=len(keys))
        if answers is None:
            return None
        held = {key for key, ok in zip(keys, answers) if ok}
        self._tokens.update((key, token) for key in held)
        return held

    def _by_token(self, keys: Iterable[Key]) -> Held:
        """The lock keys this process holds among `keys`, grouped by the token they were claimed with."""
        groups: Held = {}
        for key in keys:
            token = self._tokens.get(key)
            if token is not None:
                groups.setdefault(token, []).append(self.key(key))
        return groups

    def extend(self, keys: Iterable[Key]) -> int | None:
        """Keep holding these locks (a long round), one command per claim. Only locks that still hold our token
        are extended: how many were, or None without a store."""
        groups = self._by_token(keys)
        if not groups:
            return 0
        ttl = int(self.ttl * 1000)

        def work(r):
            pipe = r.pipeline(transaction=False)
            for token, names in groups.items():
                pipe.eval(_EXTEND, len(names), *names, ttl, token)
            return pipe.execute()

        answers = self.connection.call(work, commands=len(groups))
        if answers is None:
            return None
        return self._count(groups, answers)

    def locked(self, keys: list[Key]) -> set[Key]:
        """The keys some exporter holds the lock of now (one MGET); all of them when the store does not answer."""
        values = self.connection.call(lambda r: r.mget([self.key(k) for k in keys]), commands=1)
        if values is None:
            return set(keys)
        return {key for key, value in zip(keys, values) if value is not None}

    def take(self, keys: Iterable[Key]) -> Held:
        """Forget these locks here (the round is over), grouped by token for `release`."""
        keys = list(keys)
        groups = self._by_token(keys)
        for key in keys:
            self._tokens.pop(key, None)
        return groups

    @staticmethod
    def release(pipe: Any, held: Held) -> None:
        """Queue the release of `held` on `pipe`, one command per claim (the caller sends it with the results it
        publishes); pass what they answered to `released`."""
        for token, names in held.items():
            pipe.eval(_RELEASE, len(names), *names, token)

    def released(self, groups: Held, answers: Sequence[int]) -> None:
        """Account for the answers of `release`'s commands: a lock that was no longer ours was lost."""
        self._count(groups, answers)

    def _count(self, groups: Held, answers: Sequence[int]) -> int:
        ours, asked = sum(answers), sum(len(names) for names in groups.values())
        if ours < asked:
            self.connection.counts.lost_locks += asked - ours
            if not self._lost_warned:
                log.warning("shared cache %s: %d lock(s) expired and were taken by another exporter while this one "
                            "checked; both check once (a slow round or a paused process outlived lock_ttl %ss)",
                            self.connection.url, asked - ours, self.ttl)
                self._lost_warned = True
        return ours

    def keeping(self, keys: list[Key]) -> "Keeper":
        """A context that extends `keys`' locks every third of their lifetime while a round checks them."""
        return Keeper(self, keys)


class Keeper:
    """The thread that keeps a round's locks alive; nothing ends it but the round's end."""

    def __init__(self, locks: Locks, keys: list[Key]) -> None:
        self._locks = locks
        self._keys = keys
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Keeper":
        if self._keys:
            self._thread = threading.Thread(target=self._run, name="shared-cache-locks", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        """Extend the round's locks every third of their lifetime.

        A store that does not answer is the connection's business (the breaker, `up` 0); anything else is a bug,
        logged once with its (redacted) traceback, counted, and tried again at the next beat.
        """
        beat, failing = self._locks.ttl / 3, False
        counts = self._locks.connection.counts
        while not self._stop.wait(beat):
            try:
                self._locks.extend(self._keys)
            except Exception:  # noqa: BLE001 (the keeper outlives any bug; the next beat tries again)
                counts.keeper_failures += 1
                if not failing:
                    log.exception("shared cache %s: extending a round's locks failed; trying again in %ss",
                                  self._locks.connection.url, round(beat, 1))
                failing = True
            else:
                failing = False

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._locks.connection.timeout * 2 + 1)
