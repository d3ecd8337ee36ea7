"""Load control per registry host: requests in flight, request rate, and pauses after failures.

A host that keeps failing (connection refused, timeouts, 5xx) is paused with exponential backoff and
then probed by a single request, not hammered; a 429 pauses it for its Retry-After (capped: a registry
asking for 485009 hours is lying). All state is plain and driven by an injectable clock.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass


def parse_retry_after(value: str | None, now: float, maximum: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), capped; None when absent or junk."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, maximum))


@dataclass
class HostState:
    """Failure bookkeeping of one host."""

    failures: int = 0
    paused_until: float = 0.0
    reason: str = ""


class HostPauses:
    """Which hosts are paused, and until when."""

    def __init__(self, initial: float, maximum: float, clock=time.time) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self._hosts: dict[str, HostState] = {}

    def paused(self, host: str) -> HostState | None:
        """The host's state while it is paused; the first caller after the pause ends gets to probe."""
        state = self._hosts.get(host)
        if state is None or state.paused_until <= self._clock():
            if state is not None and state.failures:
                state.paused_until = self._clock() + self._initial  # one probe at a time
            return None
        return state

    def is_paused(self, host: str) -> bool:
        """Whether the host is paused now (a pure question: reserves no probe)."""
        state = self._hosts.get(host)
        return state is not None and state.paused_until > self._clock()

    def failed(self, host: str, reason: str) -> None:
        state = self._hosts.setdefault(host, HostState())
        state.failures += 1
        state.reason = reason
        delay = min(self._maximum, self._initial * 2 ** (state.failures - 1))
        state.paused_until = self._clock() + delay

    def rate_limited(self, host: str, seconds: float, reason: str) -> None:
        state = self._hosts.setdefault(host, HostState())
        state.reason = reason
        state.paused_until = max(state.paused_until, self._clock() + seconds)

    def succeeded(self, host: str) -> None:
        self._hosts.pop(host, None)


class RateLimiter:
    """A token bucket per host: at most `rate` requests a second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self._rate = rate
        self._burst = float(max(1, burst))
        self._tokens = self._burst
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)
