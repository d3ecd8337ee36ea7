"""The shared cache an exporter is given (`--cache-url`): one connection and the stores that use it."""

from __future__ import annotations

import time
from collections.abc import Callable

from exporter.sources.registry.shared.breaker import Breaker
from exporter.sources.registry.shared.connection import Connection, Counts
from exporter.sources.registry.shared.firstseen import FIRST_SEEN_TTL, FirstSeen
from exporter.sources.registry.shared.indexes import Indexes
from exporter.sources.registry.shared.locks import Locks
from exporter.sources.registry.shared.results import Results


class SharedCache:
    """Results, locks, index manifests and first-seen times in Redis; every call bounded, failures answered as
    "not known" (see `connection`)."""

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
        self.connection = Connection(url, password, timeout, breaker)
        self.results = Results(self.connection, stale_for, clock)
        self.locks = Locks(self.connection, lock_ttl)
        self.indexes = Indexes(self.connection)
        self.first_seen = FirstSeen(self.connection, first_seen_ttl)
        self.wait = wait

    @property
    def url(self) -> str:
        """The store's URL without its password."""
        return self.connection.url

    @property
    def counts(self) -> Counts:
        return self.connection.counts

    @property
    def breaker(self) -> Breaker:
        return self.connection.breaker

    @breaker.setter
    def breaker(self, breaker: Breaker) -> None:
        self.connection.breaker = breaker

    @property
    def up(self) -> bool:
        """True while the last call answered (`kube_image_shared_cache_up`)."""
        return self.connection.up

    def probe(self) -> bool:
        return self.connection.probe()

    def close(self) -> None:
        self.connection.close()
