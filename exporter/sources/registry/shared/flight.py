"""One check round through the fleet's store: what the store holds is answered, the rest is checked by one
exporter of the fleet at a time (single flight), and what others check is waited for.

One MGET and one pipeline of locks first; what is locked here is checked (locks kept alive meanwhile) and
published with the locks dropped in one pipeline; what others check is waited for, then anything left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.shared.cache import SharedCache
from exporter.sources.registry.shared.results import Key, decode, encode, scope


@dataclass
class Plan:
    """One round's split of the keys the local cache missed."""

    found: dict[Key, Any] = field(default_factory=dict)  # fresh results from the store
    mine: list[Key] = field(default_factory=list)  # keys to check here (locked by this process, or no store)
    waiting: list[Key] = field(default_factory=list)  # another exporter checks these now


def plan(cache: SharedCache, keys: list[Key]) -> Plan:
    """Split the local cache's misses: fresh in the store, to check here (locked), checked elsewhere now.

    A key another exporter is checking is answered with its stale result when the store still has one,
    else waited for (`settle`). Without a store, everything is checked here.
    """
    fresh, stale = cache.results.lookup(keys)
    split = Plan(found=dict(fresh))
    rest = [k for k in keys if k not in fresh]
    held = cache.locks.claim(rest)
    if held is None:
        split.mine = rest
        return split
    if held:  # a peer may have published and unlocked between our MGET and our locks: look once more
        landed, _ = cache.results.lookup([k for k in rest if k in held])
        if landed:
            split.found.update(landed)
            held -= set(landed)
            publish(cache, {}, release=landed)
    for key in rest:
        if key in split.found:
            continue
        if key in held:
            split.mine.append(key)
        elif key in stale:
            split.found[key] = stale[key]
            cache.counts.stale_hits += 1
        else:
            split.waiting.append(key)
    return split


def publish(cache: SharedCache, records: Mapping[Key, tuple[dict, float]], release: Iterable[Key] = ()) -> None:
    """Store each (record, ttl) and drop the given locks, in one pipeline."""
    held = cache.locks.take(release)
    if not records and not held:
        return

    def work(r):
        pipe = r.pipeline(transaction=False)
        cache.results.write(pipe, records)
        cache.locks.release(pipe, held)
        return pipe.execute()

    answers = cache.connection.call(work, commands=len(records) + len(held))
    if answers is not None:
        cache.locks.released(held, answers[len(records):])


def settle(cache: SharedCache, waiting: list[Key]) -> tuple[dict[Key, dict], list[Key]]:
    """Wait for the results other exporters are getting: (records that arrived, keys to check here).

    A key whose lock is gone without a result (its holder died) is claimed and checked here; after
    `wait` seconds, or when the store stops answering, whatever is left is checked here too; after `close`,
    nothing (the process is stopping).
    """
    found: dict[Key, dict] = {}
    mine: list[Key] = []
    deadline = time.monotonic() + cache.wait
    pause = 0.05
    while waiting:
        cache.counts.waited += 1
        if cache.connection.closed.wait(pause):
            return found, []
        pause = min(pause * 2, 1.0)
        fresh, _ = cache.results.lookup(waiting)
        found.update(fresh)
        waiting = [k for k in waiting if k not in fresh]
        if not waiting:
            break
        if not cache.breaker.allow() or time.monotonic() > deadline:
            mine.extend(waiting)
            break
        locked = cache.locks.locked(waiting)
        orphaned = [k for k in waiting if k not in locked]  # their holder is gone without a result
        held = cache.locks.claim(orphaned)
        if held is None:
            mine.extend(waiting)
            break
        mine.extend(k for k in orphaned if k in held)
        waiting = [k for k in waiting if k not in held]
    return found, mine


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
    everything)."""
    members: dict[Key, list[Key]] = {}  # shared name -> the checker's keys it answers
    for key, (image, keyring) in requests.items():
        members.setdefault(scope(image, keyring), []).append(key)
    split = plan(cache, list(members))
    checked: dict[Key, Any] = {}
    from_store: dict[Key, Any] = {}

    def answer(target: dict, name: Key, result: Any) -> None:
        for key in members[name]:
            target[key] = result

    for name, record in split.found.items():
        answer(from_store, name, decode(record, result_type))
    if before is not None and (split.mine or split.waiting):
        before()

    def run(names: list[Key]) -> None:
        if not names:
            return
        with cache.locks.keeping(names):
            got = check([members[name][0] for name in names])
        records = {}
        for name in names:
            result = got[members[name][0]]
            answer(checked, name, result)
            life = ttl(members[name][0], result)
            records[name] = (encode(result, result.checked_at + life), life)
        publish(cache, records, release=names)

    run(split.mine)
    if split.waiting:
        arrived, left = settle(cache, split.waiting)
        for name, record in arrived.items():
            answer(from_store, name, decode(record, result_type))
        run(left)
    return checked, from_store
