"""When each problem was first seen, in the store: `kie:1:f:<N>/<M>:<cluster>`, one hash per cluster and shard.

A field is a problem's labels as a JSON array, its value a Unix time: the status page's "missing since" survives a
restart. A hash expires `first_seen_ttl` after its exporter last wrote or refreshed it, so a cluster whose exporter
is gone is forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import orjson

from exporter.sources.registry.shared.connection import PREFIX, Connection

FIRST_SEEN_TTL = 7 * 24 * 3600  # a cluster whose exporter is gone this long has its first-seen times forgotten
FIRST_SEEN_REFRESH = 3600.0  # a scope nothing changed in has its TTL set again this often

Problem = tuple[str, ...]  # a problem's key on the status page (exporter.views.page.tracked_keys)


class FirstSeen:
    """The store `exporter.serve.firstseen.Persisted` is given: `up`, `load`, `save`."""

    def __init__(self, connection: Connection, ttl: float = FIRST_SEEN_TTL) -> None:
        self._connection = connection
        self.ttl = ttl
        self._refreshed: dict[str, float] = {}  # scope -> when its TTL was last set (monotonic)

    @property
    def up(self) -> bool:
        return self._connection.up

    @staticmethod
    def key(scope: str) -> str:
        return f"{PREFIX}f:{scope}"

    def load(self, scopes: Iterable[str]) -> dict[Problem, float] | None:
        """Every first-seen time stored under these scopes (one HGETALL each, in one pipeline); None when the
        store does not answer. A field another version wrote in another form is left out."""
        scopes = list(scopes)
        if not scopes:
            return {}

        def work(r):
            pipe = r.pipeline(transaction=False)
            for scope in scopes:
                pipe.hgetall(self.key(scope))
            return pipe.execute()

        answers = self._connection.call(work, commands=len(scopes))
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

    def save(self, scopes: Iterable[str], upserts: Mapping[str, Mapping[Problem, float]],
             deletes: Mapping[str, Iterable[Problem]]) -> bool:
        """Write what changed under each scope (HSET, HDEL) and keep every scope of `scopes` alive (EXPIRE when it
        was written or its TTL was last set `FIRST_SEEN_REFRESH` ago), in one pipeline; False when the store
        did not take it."""
        now = time.monotonic()
        ttl = max(1, int(self.ttl))
        writes = [(scope, dict(upserts.get(scope) or {}), list(deletes.get(scope) or ()))
                  for scope in dict.fromkeys([*scopes, *upserts, *deletes])]
        writes = [(scope, up, down) for scope, up, down in writes
                  if up or down or now - self._refreshed.get(scope, float("-inf")) >= FIRST_SEEN_REFRESH]
        if not writes:
            return True

        def work(r):
            pipe = r.pipeline(transaction=False)
            for scope, up, down in writes:
                name = self.key(scope)
                if up:
                    pipe.hset(name, mapping={orjson.dumps(list(k)): repr(float(v)) for k, v in up.items()})
                if down:
                    pipe.hdel(name, *(orjson.dumps(list(k)) for k in down))
                pipe.expire(name, ttl)
            return pipe.execute()

        commands = sum(bool(up) + bool(down) + 1 for _, up, down in writes)
        if self._connection.call(work, commands=commands) is None:
            return False
        for scope, _, _ in writes:
            self._refreshed[scope] = now
        return True
