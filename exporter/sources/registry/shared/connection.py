"""The one connection to the shared store: its URL and password, a short timeout on every call, the breaker.

Every store of the package calls Redis through `Connection.call`, which answers None instead of raising: Redis is
an accelerator, never a dependency. Only this package imports `redis`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from exporter.common.files import MAX_SECRET_BYTES, ReadError, TooLarge, read_text
from exporter.common.redact import redact_url
from exporter.sources.registry.shared.breaker import Breaker

log = logging.getLogger("exporter.sources.registry.shared")

PREFIX = "kie:1:"  # every key of the package starts so: a shared Redis can hold other things
PASSWORD_ENV = "KUBE_IMAGE_EXPORTER_CACHE_PASSWORD"


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
        try:  # bounded, regular files only, text: /dev/zero or a FIFO is refused, never read or waited on
            return read_text(password_file, MAX_SECRET_BYTES).strip() or None
        except TooLarge as exc:
            raise SharedCacheError(f"cache password file {password_file}: {exc}, the most it may hold") from None
        except ReadError as exc:
            raise SharedCacheError(f"cache password file {password_file}: {exc}") from None
    return environ.get(PASSWORD_ENV) or None


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


class Connection:
    """A Redis client whose calls are bounded by `timeout` and refused while the breaker is open."""

    def __init__(self, url: str, password: str | None, timeout: float, breaker: Breaker | None) -> None:
        self.url = redact_url(check_url(url))
        self.timeout = timeout
        self.breaker = breaker or Breaker()
        self.counts = Counts()
        self.closed = threading.Event()
        self._up = False
        self._warned = False
        self._redis = redis.Redis.from_url(
            url, password=password, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), retry_on_error=[], health_check_interval=0, max_connections=8)

    @property
    def up(self) -> bool:
        """True while the last call answered (`kube_image_shared_cache_up`)."""
        return self._up and self.breaker.state == "closed"

    def probe(self) -> bool:
        """One PING (when the breaker allows), so `up` follows the store even when nothing needs it."""
        self.call(lambda r: r.ping(), commands=1)
        return self.up

    def close(self) -> None:
        """Stop using the store: a round waiting for other exporters stops waiting (the process is leaving)."""
        self.closed.set()
        self._redis.close()

    def call(self, work: Callable[[redis.Redis], Any], commands: int) -> Any | None:
        """`work(client)` in one round trip, or None when the breaker is open or the call fails (logged once
        per outage, without a traceback or the password)."""
        if self.closed.is_set() or not self.breaker.allow():
            return None
        self.counts.round_trips += 1
        self.counts.commands += commands
        try:
            answer = work(self._redis)
        except Exception as exc:
            if self.closed.is_set():  # closed under this call (a SIGTERM): the process is leaving, nothing to say
                return None
            if not isinstance(exc, (redis.RedisError, OSError)):
                raise
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
