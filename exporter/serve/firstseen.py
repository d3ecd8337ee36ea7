"""Since when each problem has been seen: the "missing since" a person reads on the status page.

A pure step over plain data. The serve loop keeps the returned mapping and passes it back the next cycle;
a key that stops being seen is forgotten, so a problem that clears and comes back starts again, and memory
follows what is wrong now, not its history. The mapping is plain (tuples of strings to Unix times) so a
shared cache can persist it: what the store holds is merged in (`earliest`), and what changed since the last
write (`changes`) is all that is written back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def advance(previous: Mapping[K, float], current: Iterable[K], now: float) -> dict[K, float]:
    """Each key seen now with when it was first seen: from `previous` when it was already there, else `now`."""
    return {key: previous.get(key, now) for key in current}


def earliest(one: Mapping[K, float], other: Mapping[K, float]) -> dict[K, float]:
    """Every key of either, with the earlier time where both have it (a restarted process and the store it
    reloads from: the store remembers longer, the process may have seen it first while the store was away)."""
    merged = dict(other)
    for key, seen in one.items():
        merged[key] = min(seen, merged.get(key, seen))
    return merged


def changes(stored: Mapping[K, float], now: Mapping[K, float]) -> tuple[dict[K, float], list[K]]:
    """What turns `stored` into `now`: (keys to write with their time, keys to delete)."""
    return ({key: seen for key, seen in now.items() if stored.get(key) != seen},
            [key for key in stored if key not in now])


def group(keys: Iterable[K], scope: Callable[[K], str]) -> dict[str, list[K]]:
    """Keys by where they are stored."""
    grouped: dict[str, list[K]] = {}
    for key in keys:
        grouped.setdefault(scope(key), []).append(key)
    return grouped


class Persisted:
    """First-seen times kept in a store as well, so a restart keeps "missing since".

    The store is injected (the shared cache: `up`, `load(scopes)` returning None when it cannot
    answer, `save(scopes, upserts, deletes)` returning whether it took them); this class holds only
    what the store is known to hold. That is read when unknown (at start, after the store was away: it may have
    been wiped), merged in until this process has written back, and written as the difference since the last
    write. A failed write makes it unknown again, so the difference is written once the store answers.
    """

    def __init__(self, store, scopes: list[str], scope_of: Callable[[K], str]) -> None:
        self._store, self._scopes, self._scope_of = store, scopes, scope_of
        self._stored: Mapping[K, float] | None = None  # what the store holds; None: not known
        self._restored: Mapping[K, float] = {}  # loaded, until this process has written back

    def merged(self, seen: Mapping[K, float]) -> Mapping[K, float]:
        """`seen` with what the store holds merged in (the earlier time wins)."""
        if not self._store.up:
            self._stored = None
        if self._stored is None:
            loaded = self._store.load(self._scopes)
            if loaded is not None:
                self._stored = self._restored = loaded
        return earliest(seen, self._restored) if self._restored else seen

    def save(self, seen: Mapping[K, float]) -> None:
        """Write what changed since the last write, in one call; forgotten problems are deleted."""
        if self._stored is None:
            return
        upserts, deletes = changes(self._stored, seen)
        by_scope = {scope: {key: upserts[key] for key in keys} for scope, keys in group(upserts, self._scope_of).items()}
        if self._store.save(self._scopes, by_scope, group(deletes, self._scope_of)):
            self._stored, self._restored = seen, {}  # `seen` is replaced, never changed in place, by `advance`
        else:
            self._stored = None
