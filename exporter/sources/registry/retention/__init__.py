"""Registries' cleanup policies, read off the cycle and evaluated ahead of their runs (docs/retention.md).

`--retention-source KIND=HOST[,KEY=VALUE…]` names a source; each kind is one module in `KINDS` with three entry
points, so another registry's policies (Google Artifact Registry, GitLab, ECR) fit as one more module:
`scopes(repositories)` groups the repositories in use by policy scope (a Harbor project, an ECR repository), and where only
the API can tell (a GitLab project under nested groups) an optional `resolve(client, host, repositories)` does, `scopes` then
being its guess while the API cannot be asked; an optional `validate(spec)` raises ValueError, up front, for a spec that cannot work
(bad options, a missing SDK, a host not its own);
`api_host(spec)` names the host its API is on, whose pauses (the registry checks' load control, its own 429s) hold
for the reader; `connect(spec, settings, keyring)` opens what reads its API (a context manager: an HTTP client with the registry's
credentials, an SDK client); `read(client, host, scope, repositories, now) -> Forecast` reads and evaluates one
scope's policy, raising `PolicyError` for what cannot be. `Retention` reads every source once per interval in its own daemon thread, only for the repositories in use (`in_use`, from the last cycle), through
the registry's own credentials and pauses; the cycle takes the forecasts it holds. An unreadable policy, a refusal
or an unknown rule template is said once, counted, and gives no forecast: never a guess presented as one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from exporter.model.health import PolicyHealth
from exporter.model.retention import Forecast
from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.retention import ecr, gitlab, harbor
from exporter.sources.registry.retention.common import PolicyError
from exporter.sources.registry.settings import RegistrySettings

log = logging.getLogger(__name__)

KINDS = {"ecr": ecr, "gitlab": gitlab, "harbor": harbor}
PAUSED_RETRY = 60.0  # seconds before a source skipped for its host's pause is tried again


@dataclass(frozen=True, slots=True)
class Spec:
    kind: str
    host: str  # the registry host, as image references name it
    options: tuple[tuple[str, str], ...] = ()  # KEY=VALUE after the host, as the kind's module reads them

    @property
    def name(self) -> str:
        return f"{self.kind}={self.host}"

    def option(self, key: str, default: str = "") -> str:
        return dict(self.options).get(key, default)


def parse_spec(text: str) -> Spec:
    """`KIND=REGISTRY_HOST[,KEY=VALUE…]`; ValueError naming the kinds known."""
    kind, sep, rest = text.strip().partition("=")
    host, *pairs = rest.split(",")
    if not sep or not host.strip() or "/" in host:
        raise ValueError(f"{text!r}: write KIND=REGISTRY_HOST, e.g. harbor=harbor.example.com")
    if kind not in KINDS:
        raise ValueError(f"{text!r}: unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    options = []
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{text!r}: {pair!r} is not KEY=VALUE")
        options.append((key.strip(), value.strip()))
    spec = Spec(kind, host.strip(), tuple(options))
    validate = getattr(KINDS[kind], "validate", None)
    if validate is not None:
        validate(spec)
    return spec


def _api_host(spec: Spec) -> str:
    return KINDS[spec.kind].api_host(spec)


class Retention:
    """Every source's forecasts, read every `interval` seconds off the cycle."""

    def __init__(self, specs: Iterable[Spec], settings: RegistrySettings, keyring: Keyring, pauses: HostPauses,
                 interval: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.specs = tuple(specs)
        self._settings = settings
        self._keyring = keyring
        self._pauses = pauses
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._forecasts: dict[str, Forecast] = {}  # by policy
        self._health: dict[str, PolicyHealth] = {}
        self.errors: Counter[tuple[str, str]] = Counter()  # (source, reason)
        self._said: dict[str, str] = {}  # policy -> the error said for it last
        self._in_use: Mapping[str, frozenset[str]] = {}  # host -> repositories in use
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._skipped = False  # a host was paused at the last reading: read again soon, not an interval later
        self._resolved: dict[str, tuple[frozenset[str], dict[str, set[str]]]] = {}  # spec -> (repositories, scopes)

    def in_use(self, repositories: Mapping[str, frozenset[str]]) -> None:
        """What the last cycle uses, by host; a repository new since the last reading wakes the reader."""
        new = any(not set(repos) <= set(self._in_use.get(host, ())) for host, repos in repositories.items()
                  if host in {s.host for s in self.specs})
        self._in_use = repositories
        if new:
            self._wake.set()

    def forecasts(self) -> tuple[Forecast, ...]:
        with self._lock:
            return tuple(self._forecasts.values())

    def health(self) -> tuple[PolicyHealth, ...]:
        with self._lock:
            return tuple(sorted(self._health.values(), key=lambda h: h.policy))

    def start(self) -> "Retention":
        if self.specs:
            self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._skipped = False
            try:
                self.read_all(self._in_use)
            except Exception:  # noqa: BLE001 (the reader outlives any one round)
                self.errors[("reader", "error")] += 1
                log.exception("retention forecasts: a reading failed; trying again at the next interval")
            self._wake.wait(min(self.interval, PAUSED_RETRY) if self._skipped else self.interval)

    def read_all(self, in_use: Mapping[str, Iterable[str]]) -> tuple[Forecast, ...]:
        """Read every source's policies for the repositories in use now; what is read replaces what was held."""
        forecasts, health = {}, {}
        with self._lock:
            held, held_health = dict(self._forecasts), dict(self._health)
        for spec in self.specs:
            for scope, names in sorted(self._scopes(spec, frozenset(in_use.get(spec.host, ()))).items()):
                policy = f"{spec.kind}:{scope}"
                if self._pauses.is_paused(_api_host(spec)):  # not now: what was read last stands until the pause ends
                    self._skipped = True
                    if policy in held_health:
                        health[policy] = held_health[policy]
                    if policy in held:
                        forecasts[policy] = held[policy]
                    continue
                forecast = self._read(spec, scope, names, policy)
                if forecast is not None:
                    forecasts[policy] = forecast
                health[policy] = PolicyHealth(policy, forecast is not None,
                                              forecast.next_run if forecast is not None else None)
        with self._lock:
            self._forecasts, self._health = forecasts, health
        return tuple(forecasts.values())

    def _scopes(self, spec: Spec, repositories: frozenset[str]) -> dict[str, set[str]]:
        """The repositories in use by policy scope: the kind's `resolve` through its API where it has one (its last
        answer for the same repositories while the host is paused, its `scopes` guess when the API fails: the
        readings of those scopes then say why)."""
        kind = KINDS[spec.kind]
        resolve = getattr(kind, "resolve", None)
        if resolve is None or not repositories:
            return kind.scopes(repositories)
        held = self._resolved.get(spec.name)
        if self._pauses.is_paused(_api_host(spec)):
            return held[1] if held and held[0] == repositories else kind.scopes(repositories)
        try:
            with kind.connect(spec, self._settings, self._keyring) as client:
                found = resolve(client, spec.host, repositories)
        except PolicyError as exc:
            if exc.reason == "rate_limited":
                self._pauses.rate_limited(_api_host(spec), 60.0, str(exc))
            return held[1] if held and held[0] == repositories else kind.scopes(repositories)
        self._resolved[spec.name] = (repositories, found)
        return found

    def _read(self, spec: Spec, scope: str, names: set[str], policy: str) -> Forecast | None:
        try:
            with KINDS[spec.kind].connect(spec, self._settings, self._keyring) as client:
                forecast = KINDS[spec.kind].read(client, spec.host, scope, names, self._clock())
        except PolicyError as exc:
            if exc.reason == "rate_limited":
                self._pauses.rate_limited(_api_host(spec), 60.0, str(exc))
            return self._failed(spec, policy, exc)
        except Exception as exc:  # noqa: BLE001 (a surprise in one source's answer costs that policy's forecast only)
            log.debug("%s: reading failed", policy, exc_info=True)
            return self._failed(spec, policy, PolicyError(f"reading failed ({type(exc).__name__}: {str(exc)[:200]})",
                                                          "error"))
        if policy in self._said:
            log.info("%s: retention policy read again", policy)
            del self._said[policy]
        return forecast

    def _failed(self, spec: Spec, policy: str, exc: PolicyError) -> None:
        self.errors[(spec.name, exc.reason)] += 1
        message = str(exc)
        if self._said.get(policy) != message:  # said once, and again only when it changes
            log.warning("%s: %s; no forecast for it", policy, message)
            self._said[policy] = message
        return None
