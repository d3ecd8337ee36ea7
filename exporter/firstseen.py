"""Since when each problem has been seen: the "missing since" a person reads on the status page.

A pure step over plain data. The serve loop keeps the returned mapping and passes it back the next cycle;
a key that stops being seen is forgotten, so a problem that clears and comes back starts again, and memory
follows what is wrong now, not its history. The mapping is plain (tuples of strings to Unix times) so a
shared cache can persist it: load it into `previous` at start, store what `advance` returns after a cycle.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def advance(previous: Mapping[K, float], current: Iterable[K], now: float) -> dict[K, float]:
    """Each key seen now with when it was first seen: from `previous` when it was already there, else `now`."""
    return {key: previous.get(key, now) for key in current}
