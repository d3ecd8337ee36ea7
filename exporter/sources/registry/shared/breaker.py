"""The circuit breaker in front of the shared store: a failing Redis is left alone for a while, then tried once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
