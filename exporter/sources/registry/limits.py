"""Load control per registry host: requests in flight, request rate, and pauses after failures.

By default a host's load adapts as TCP's congestion window does (additive increase, multiplicative decrease):
the requests in flight grow while latency holds and are cut on a 429, a 503, a timeout or a latency jump; a
429 also teaches a request rate, probed upward again as answers come back. A configured `concurrency` or
`rate` is a cap the adaptation never exceeds. A Retry-After pauses the host for as long as it asks (capped:
a registry asking for 485009 hours is lying); a host that keeps failing (connection refused, timeouts, 5xx) is
paused with exponential backoff and then probed by a single request, not hammered.

`AdaptiveLimit` and `HostPauses` are plain state over an injectable clock and outlive rounds; `Gate` is the
asyncio side of one host for one round (each round runs its own event loop). Every time here is monotonic:
pauses, pacing and the round's deadline (a pause is converted to wall time only where it is shown).
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

# Adaptive control. A window starts small and doubles per round trip until the first cut (slow start),
# then grows by one per window of answers; a pushback halves it, a latency jump takes a quarter off.
INITIAL_WINDOW = 4
PUSHBACK_DECREASE = 0.5
LATENCY_DECREASE = 0.75
LATENCY_TOLERANCE = 2.0  # smoothed latency above twice the best seen, ...
LATENCY_SLACK = 0.010  # ... and 10 ms more, is a jump (a queue building up at the registry)
RATE_DECREASE = 0.7  # a 429 sets the rate to this share of what was answered in the last second
RATE_PROBE = 0.1  # requests per second added to a learned rate by each answer (+10% a second when paced)...
RATE_RECOVERY = 3.0  # ... and 1 (doubling a second) once this many seconds passed without a 429;
# a learned rate twice what is answered then binds nothing and is forgotten
PUSHBACK_CODES = frozenset({429, 503})


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
    """Pause bookkeeping of one host."""

    failures: int = 0
    paused_until: float = 0.0  # monotonic; no request before this (a failure's backoff, or a Retry-After)
    reason: str = ""
    rate_limited: bool = False  # the pause is the registry's own Retry-After (or its 429)
    unavailable: bool = False  # ... given with a 503: the registry is down for that long, not limiting


class HostPauses:
    """Which hosts are paused, and until when. Reading never changes anything; `admit` does, and says so."""

    def __init__(self, initial: float, maximum: float, clock=time.monotonic) -> None:
        self._initial = initial
        self._maximum = maximum
        self._clock = clock
        self._hosts: dict[str, HostState] = {}

    def paused(self, host: str) -> HostState | None:
        """The host's state while it is paused now, else None."""
        state = self._hosts.get(host)
        return state if state is not None and state.paused_until > self._clock() else None

    def is_paused(self, host: str) -> bool:
        return self.paused(host) is not None

    def all_paused(self) -> dict[str, HostState]:
        """Every host paused now, each with a copy of its state (for health figures)."""
        now = self._clock()
        return {host: replace(state) for host, state in list(self._hosts.items()) if state.paused_until > now}

    def admit(self, host: str) -> HostState | None:
        """None when a request may go now; the pause that answers instead otherwise.

        When the pause of a failing host ends, the first caller goes as the probe and the pause is extended
        by the initial backoff for everyone else, so a dead host gets one request, not a round's worth.
        """
        paused = self.paused(host)
        if paused is not None:
            return paused
        state = self._hosts.get(host)
        if state is not None and state.failures:
            state.paused_until = self._clock() + self._initial
        return None

    def failed(self, host: str, reason: str) -> None:
        state = self._hosts.setdefault(host, HostState())
        state.failures += 1
        state.reason = reason
        state.rate_limited = False
        delay = min(self._maximum, self._initial * 2 ** (state.failures - 1))
        state.paused_until = self._clock() + delay

    def rate_limited(self, host: str, seconds: float, reason: str, unavailable: bool = False) -> None:
        """The registry asked for a pause (a 429, or a 503 with Retry-After: `unavailable`)."""
        state = self._hosts.setdefault(host, HostState())
        state.reason = reason
        state.rate_limited = True
        state.unavailable = unavailable
        state.paused_until = max(state.paused_until, self._clock() + seconds)

    def succeeded(self, host: str) -> None:
        """The host answered: failures are forgotten, but a Retry-After still running is honoured to its end
        (an answer to a request sent before the 429 does not lift it)."""
        state = self._hosts.get(host)
        if state is not None and state.rate_limited and state.paused_until > self._clock():
            state.failures = 0
        else:
            self._hosts.pop(host, None)


class AdaptiveLimit:
    """How much load one host gets now: a window of requests in flight and, once it pushed back, a rate.

    `ceiling` and `rate_cap` bound it from above whatever it learns; `rate_cap` None and no 429 seen means
    no pacing at all. Signals from a request sent before the last cut are ignored: they describe the load
    that was already cut (one cut per round trip, as TCP does).
    """

    def __init__(self, ceiling: int, rate_cap: float | None = None, clock=time.monotonic) -> None:
        self.ceiling = max(1, ceiling)
        self.rate_cap = rate_cap
        self.limit = float(min(INITIAL_WINDOW, self.ceiling))
        self.learned_rate: float | None = None
        self.best_latency: float | None = None
        self.smoothed_latency: float | None = None
        self._slow_start = True
        self._last_cut = float("-inf")
        self._last_429 = float("-inf")
        self._answered: collections.deque[float] = collections.deque()  # answer times of the last second
        self._clock = clock
        self.cuts = 0  # times the window was cut (a pushback, a timeout or a latency jump)
        self.pushbacks = 0  # 429s, 503s and timeouts told, whether or not they cut

    @property
    def window(self) -> int:
        return max(1, min(self.ceiling, int(self.limit)))

    @property
    def rate(self) -> float | None:
        """Requests a second to pace at, or None for no pacing."""
        rates = [r for r in (self.rate_cap, self.learned_rate) if r is not None]
        return min(rates) if rates else None

    def answered(self, started: float, latency: float) -> None:
        """An answer that is no pushback (a 404 counts: the registry kept up)."""
        now = self._clock()
        self._answered.append(now)
        while self._answered and self._answered[0] < now - 1.0:
            self._answered.popleft()
        if self.learned_rate is not None:
            quiet = now - self._last_429 > RATE_RECOVERY
            self.learned_rate += 1.0 if quiet else RATE_PROBE
            if quiet and self.learned_rate > 2 * len(self._answered):
                self.learned_rate = None
        self.best_latency = latency if self.best_latency is None else min(self.best_latency, latency)
        self.smoothed_latency = (latency if self.smoothed_latency is None
                                 else 0.8 * self.smoothed_latency + 0.2 * latency)
        if started < self._last_cut:
            return
        if self.smoothed_latency > max(LATENCY_TOLERANCE * self.best_latency, self.best_latency + LATENCY_SLACK):
            self._cut(LATENCY_DECREASE, now)
        elif self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + (1.0 if self._slow_start else 1.0 / self.limit))

    def pushed_back(self, started: float, rate_limited: bool) -> None:
        """A 429 (`rate_limited`), a 503 or a timeout."""
        self.pushbacks += 1
        if started < self._last_cut:
            return
        now = self._clock()
        if rate_limited:
            self._last_429 = now
            while self._answered and self._answered[0] < now - 1.0:
                self._answered.popleft()
            learned = max(1.0, RATE_DECREASE * len(self._answered))
            self.learned_rate = learned if self.learned_rate is None else min(self.learned_rate, learned)
        self._cut(PUSHBACK_DECREASE, now)

    def _cut(self, factor: float, now: float) -> None:
        self.limit = max(1.0, self.limit * factor)
        self.cuts += 1
        self._slow_start = False
        self._last_cut = now
        self.smoothed_latency = self.best_latency  # judge the new window on its own answers


class Paused(Exception):
    """The host is paused past the round's deadline: the request is answered from the pause, not sent."""

    def __init__(self, state: HostState) -> None:
        super().__init__(state.reason)
        self.state = state


@dataclass
class Outcome:
    """What became of one request, told to the gate by the code that sent it."""

    code: int | None = None
    timed_out: bool = False


class Gate:
    """One host's requests for one round: at most `window` in flight, paced at `rate`, held during a pause.

    Waiters are served first come, first served. A request that finds the host paused by its Retry-After
    waits for the pause to end when that is before `deadline`; otherwise it raises `Paused`.
    """

    def __init__(self, host: str, control: AdaptiveLimit, pauses: HostPauses, deadline: float | None,
                 clock=time.monotonic) -> None:
        """`deadline` and `clock` are on the clock of `pauses` (monotonic)."""
        self.host = host
        self.control = control
        self._pauses = pauses
        self._deadline = deadline
        self._clock = clock
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._next_start = 0.0
        self.peak_in_flight = 0

    @asynccontextmanager
    async def request(self) -> AsyncIterator[Outcome]:
        await self._take()
        try:
            await self._sit_out_pause()
            await self._pace()
            while self._limited():  # a 429 came back while this one waited for its turn
                await self._sit_out_pause()
                await self._pace()
        except BaseException:
            self._give_back()
            raise
        outcome = Outcome()
        started = self._clock()
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield outcome
        finally:
            self._learn(started, outcome)
            self._give_back()

    async def _take(self) -> None:
        if not self._waiters and self._in_flight < self.control.window:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the slot is handed over by `_wake`
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back()
            else:
                self._waiters.remove(waiter)
            raise

    def _give_back(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.control.window:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def _limited(self) -> bool:
        state = self._pauses.paused(self.host)
        return state is not None and state.rate_limited

    async def _sit_out_pause(self) -> None:
        while (state := self._pauses.paused(self.host)) is not None and state.rate_limited:
            if self._deadline is None or state.paused_until >= self._deadline:
                raise Paused(state)
            await asyncio.sleep(state.paused_until - self._clock())

    async def _pace(self) -> None:
        rate = self.control.rate
        if rate is None:
            return
        now = self._clock()
        start = max(now, self._next_start)
        if self._deadline is not None and start >= self._deadline:
            raise Paused(HostState(paused_until=start, rate_limited=True,
                                   reason=f"{self.host}: not sent before the deadline at {rate:.1f} requests/s"))
        self._next_start = start + 1.0 / rate
        if start > now:
            await asyncio.sleep(start - now)

    def _learn(self, started: float, outcome: Outcome) -> None:
        if outcome.timed_out or outcome.code in PUSHBACK_CODES:
            self.control.pushed_back(started, rate_limited=outcome.code == 429)
        elif outcome.code is not None:
            self.control.answered(started, self._clock() - started)
