"""Check many images at once, with the credentials each would be pulled with, as fast as each registry allows.

`check_many` answers what the result cache still knows (`_recall`) and checks the rest in a round of steps:

- plan: each distinct (image, credential set) once, with the endpoints to try (`_endpoints`: mirrors first);
- authorize: learn each endpoint's challenge (one ping), fetch the round's tokens several scopes at a time;
- request: each check through its host's gate (`limits.Gate`: adaptive load below any configured cap),
  a paused host answered from its pause, a 429 or 503 tried again while the round's deadline allows;
- classify: one result per image from what its endpoints answered.

Results are stored (`_remember`) with a lifetime by status (jittered), so a round inside the lifetime sends
nothing; `index_children` follows the manifests an index lists. `check_many` is synchronous and may run in any
thread: it runs its own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.request import getproxies

import httpx
from cachetools import LRUCache, TLRUCache

from exporter.model.health import RegistryLimit
from exporter.model.images import ImageRef, InvalidReference, parse
from exporter.model.records import Status
from exporter.sources.registry.auth import TokenCache
from exporter.sources.registry.client import DOCKER_HUB_API, Answer, EndpointClient, credential_fingerprint
from exporter.sources.registry.credentials import ANONYMOUS, FailedCredential, Keyring
from exporter.sources.registry.limits import AdaptiveLimit, Gate, HostPauses, HostState, Paused, parse_retry_after
from exporter.sources.registry.settings import RegistrySettings
from exporter.sources.registry.stats import RequestStats
from exporter.sources.registry.streams import AsyncioTransport

if TYPE_CHECKING:
    from exporter.sources.registry.shared import SharedCache

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    digest: str | None
    endpoint: str  # the host that answered (a mirror's, when a mirror had it)
    detail: str
    checked_at: float
    media_type: str | None = None  # an index's type tells a multi-arch tag
    children: frozenset[str] | None = None  # an index's manifests, when fetched by `index_children`


CheckRequest = tuple[str, Keyring]
ResultKey = tuple[str, str]  # (image, keyring fingerprint)
RATE_LIMIT_PAUSE = 60.0  # a 429 without a Retry-After pauses its host this long


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str  # as configured, used for limits and the `registry` label
    base: str  # scheme://host
    repository: str


@dataclass(frozen=True, slots=True)
class Job:
    """One check to make: an image with one credential set, and the endpoints to ask, in order."""

    key: ResultKey
    keyring: Keyring
    ref: ImageRef
    endpoints: tuple[_Endpoint, ...]



class Checker:
    """Registry checks with caching and per-host limits; keep one for the life of the process."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        stats: RequestStats | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock=time.time,
        rng: random.Random | None = None,
        shared: SharedCache | None = None,
    ) -> None:
        self.settings = settings or RegistrySettings()
        self.shared = shared  # --cache-url: results shared with other exporters
        self.stats = stats or RequestStats()
        self._transport = transport
        self._clock = clock
        self._rng = rng or random.Random()
        self._tokens = TokenCache(clock)
        self._pauses = HostPauses(self.settings.backoff_initial, self.settings.backoff_max, clock)
        self._cache: TLRUCache = TLRUCache(maxsize=self.settings.cache_size, ttu=self._expiry, timer=clock)
        self._control: dict[str, AdaptiveLimit] = {}  # host -> its load control, learned across rounds
        self._challenges: dict = {}
        # name@digest -> its index's children, or the time a failed read may be retried
        self._children: LRUCache = LRUCache(maxsize=self.settings.cache_size)

    # -- cache --

    def _expiry(self, key, result: CheckResult, now: float) -> float:
        image = key[0]
        if result.status == Status.AVAILABLE and "@" in image:
            ttl = self.settings.digest_ttl
        else:
            ttl = self.settings.ttl.get(result.status, 120)
        return min(now, result.checked_at) + ttl * self._rng.uniform(0.9, 1.1)  # a shared result ages from its check

    def cached(self, image: str, keyring: Keyring = ANONYMOUS) -> CheckResult | None:
        return self._recall([(image, keyring.fingerprint)]).get((image, keyring.fingerprint))

    def _recall(self, keys: Iterable[ResultKey]) -> dict[ResultKey, CheckResult]:
        """The one place results are read from the cache: those still valid, by key."""
        found = {}
        for key in keys:
            hit = self._cache.get(key)
            if hit is not None:
                found[key] = hit
        return found

    def _remember(self, results: dict[ResultKey, CheckResult]) -> None:
        """The one place results are written to the cache (each with the lifetime of its status)."""
        for key, result in results.items():
            self._cache[key] = result

    # -- endpoints --

    def _endpoints(self, ref: ImageRef) -> list[_Endpoint]:
        """The endpoints asked for an image, in order: its mirrors, then the node's route (its runtime's
        mirrors) or the registry itself; none when the node would refuse the image."""
        options = self.settings.host(ref.registry)
        endpoints = []
        for mirror in options.mirrors:
            host, _, prefix = mirror.partition("/")
            repository = f"{prefix.strip('/')}/{ref.repository}" if prefix else ref.repository
            endpoints.append(self._endpoint(host, repository))
        route = self.settings.node.route(ref) if self.settings.node is not None else None
        if route is not None:  # the node's containerd hosts or registries.conf: its mirrors, in its order
            return endpoints + [_Endpoint(e.host, e.base, e.repository) for e in route.endpoints]
        endpoints.append(self._endpoint(ref.registry, ref.repository))
        return endpoints

    def _endpoint(self, host: str, repository: str) -> _Endpoint:
        options = self.settings.host(host)
        api_host = DOCKER_HUB_API if host == "docker.io" else host
        scheme = "http" if options.insecure else "https"
        return _Endpoint(api_host, f"{scheme}://{api_host}", repository)

    def _load_control(self, host: str) -> AdaptiveLimit:
        """The host's load control, kept across rounds: adaptive below its caps (per-host, else global)."""
        if host not in self._control:
            options = self.settings.host(host)
            ceiling = options.concurrency or self.settings.concurrency or self.settings.ceiling
            self._control[host] = AdaptiveLimit(ceiling, options.rate or self.settings.rate)
        return self._control[host]

    def host_limits(self) -> tuple[RegistryLimit, ...]:
        """The hosts paused or slowed now, as plain data (the status page's rate-limit state); changes nothing."""
        paused = self._pauses.all_paused()
        learned = {host: control.learned_rate for host, control in list(self._control.items())
                   if control.learned_rate is not None}
        return tuple(RegistryLimit(host, state.paused_until if state else 0.0, state.reason if state else "",
                                   bool(state and state.rate_limited), learned.get(host))
                     for host in sorted(paused.keys() | learned.keys()) for state in [paused.get(host)])

    def _verify(self, host: str) -> ssl.SSLContext | bool:
        options = self.settings.host(host)
        if options.skip_verify:
            return False
        context = ssl.create_default_context()
        for ca_file in (self.settings.ca_file, options.ca_file):
            if ca_file:
                context.load_verify_locations(cafile=str(ca_file))
        return context

    # -- rounds --

    def check_many(
        self,
        requests: Iterable[CheckRequest],
        progress: Callable[[int, int], None] | None = None,
        before_round: Callable[[], None] | None = None,
        *,
        deadline: float | None = None,
    ) -> dict[ResultKey, CheckResult]:
        """Results keyed by (image, keyring fingerprint); identical requests are checked once.

        `progress(done, total)` is called as checks complete (for a progress line on a terminal);
        `before_round()` once before any request is sent, and only when something is not cached.
        With a `deadline` (a time of `clock`), a 429 or 503 is asked again after its pause while the pause
        ends before the deadline; without one, a paused host is answered from its pause at once.
        """
        unique: dict[ResultKey, CheckRequest] = {}
        for image, keyring in requests:
            unique.setdefault((image, keyring.fingerprint), (image, keyring))
        results = self._recall(unique)
        todo = [(key, request) for key, request in unique.items() if key not in results]
        if todo and self.shared is not None:  # --cache-url: the fleet's results first, single-flight for the rest
            from exporter.sources.registry import (
                shared as fleet,  # only with a shared cache: redis is not loaded otherwise
            )

            pending = dict(todo)
            checked, stored = fleet.check_through(
                self.shared, pending, lambda keys: self._check([(k, pending[k]) for k in keys], progress, deadline),
                lambda key, result: self._expiry(key, result, result.checked_at) - result.checked_at,
                CheckResult, before=before_round)
            for found in (checked, stored):
                self._remember(found)
                results.update(found)
        elif todo:
            if before_round is not None:
                before_round()
            checked = self._check(todo, progress, deadline)
            self._remember(checked)
            results.update(checked)
        return results

    def _check(self, todo: list[tuple[ResultKey, CheckRequest]], progress, deadline) -> dict[ResultKey, CheckResult]:
        """A round over what no cache answered: planned, then asked of the registries."""
        jobs, known = self.plan(todo)
        return {**known, **asyncio.run(self._round(jobs, progress, deadline=deadline))}

    def index_children(self, requests: Iterable[CheckRequest]) -> dict[str, frozenset[str]]:
        """The manifests listed by each index (`name@digest` requests), read with one GET each.

        A digest never changes, so what was read is kept for the process (in a bounded LRU); a failed
        read is tried again after the TTL of its status. Requests for anything but an index answer nothing.
        """
        answers: dict[str, frozenset[str]] = {}
        todo = []
        now = self._clock()
        for image, keyring in dict(requests).items():
            known = self._children.get(image)
            if isinstance(known, frozenset):
                answers[image] = known
            elif known is None or known < now:  # never read, or a failure whose retry time has come
                todo.append(((image, keyring.fingerprint), (image, keyring)))
        if todo and self.shared is not None:  # --cache-url: indexes other exporters already read
            for image, known in self.shared.children([image for (image, _), _ in todo]).items():
                self._children[image] = answers[image] = known
            todo = [item for item in todo if item[0][0] not in answers]
        if todo:
            read = {}
            jobs, known = self.plan(todo)
            fetched = {**known, **asyncio.run(self._round(jobs, fetch=True))}
            for (image, _), result in fetched.items():  # kept here, not as statuses
                if result.children is not None:
                    self._children[image] = answers[image] = read[image] = result.children
                else:
                    self._children[image] = now + self.settings.ttl.get(result.status, 120)
            if self.shared is not None:
                self.shared.put_children(read)
        return answers

    # -- step 1: plan --

    def plan(self, todo: Iterable[tuple[ResultKey, CheckRequest]]) -> tuple[list[Job], dict[ResultKey, CheckResult]]:
        """The checks to make, and the results known without a request: references that do not parse, and images
        the node would refuse."""
        jobs, known = [], {}
        for key, (image, keyring) in todo:
            try:
                ref = parse(image)
            except InvalidReference as exc:
                known[key] = CheckResult(Status.INVALID_REFERENCE, None, "", str(exc), self._clock())
                continue
            endpoints = tuple(self._endpoints(ref))
            if not endpoints:  # the node would not pull it (blocked, or no host may serve this lookup)
                refusal = self.settings.node.route(ref).refusal
                known[key] = CheckResult(Status.FORBIDDEN, None, "", refusal, self._clock())
                continue
            jobs.append(Job(key, keyring, ref, endpoints))
        return jobs, known

    async def _round(self, jobs: list[Job], progress=None, fetch: bool = False,
                     deadline: float | None = None) -> dict[ResultKey, CheckResult]:
        state = _Round(self, fetch, deadline, progress, len(jobs))
        try:
            await self._authorize(state, jobs)
            return dict(await asyncio.gather(*(self._request(state, job) for job in jobs)))
        finally:
            await state.close()

    # -- step 2: authorize --

    async def _authorize(self, state: _Round, jobs: list[Job]) -> None:
        """Learn each endpoint's challenge, then fetch the round's tokens several scopes at a time."""
        groups: dict[tuple[str, str, str], tuple[object, set[str]]] = {}
        for job in jobs:
            credential = (job.keyring.match(job.ref.registry, job.ref.repository) or [None])[0]
            for endpoint in job.endpoints:
                key = (endpoint.base, endpoint.host, credential_fingerprint(credential))
                groups.setdefault(key, (credential, set()))[1].add(endpoint.repository)

        async def first_ping(base: str, host: str) -> None:
            async with state.ping_lock(base):
                if not self._pauses.is_paused(host):
                    await self._ping(state, base, host)

        await asyncio.gather(*(first_ping(base, host) for base, host in {(k[0], k[1]) for k in groups}))
        await asyncio.gather(*(state.client_for(host).prefetch_tokens(base, sorted(repos), credential)
                               for (base, host, _), (credential, repos) in groups.items()))

    async def _ping(self, state: _Round, base: str, host: str) -> Answer | None:
        """Learn the endpoint's challenge; a failure pauses the host and answers for it this round."""
        try:
            failure = await state.client_for(host).ping(base, host)
        except Paused as paused:
            return _from_pause(paused.state, self._clock())
        if failure is not None:
            state.unreachable[base] = failure
            self._pauses.failed(host, failure.detail)
        return failure

    async def _reach(self, state: _Round, endpoint: _Endpoint) -> Answer | None:
        """None when a request may go to the endpoint now; what answers instead otherwise.

        A paused host answers from its pause, unless the pause ends before the round's deadline: then the
        request waits for it. Holding the ping lock is brief: the challenge is learned once.
        """
        async with state.ping_lock(endpoint.base):
            failure = state.unreachable.get(endpoint.base)
            if failure is not None:
                return failure
            while (paused := self._pauses.admit(endpoint.host)) is not None:
                if not state.may_wait_for(paused):
                    return _from_pause(paused, self._clock())
                await asyncio.sleep(paused.paused_until - self._clock())
            return await self._ping(state, endpoint.base, endpoint.host)

    # -- step 3: request --

    async def _request(self, state: _Round, job: Job) -> tuple[ResultKey, CheckResult]:
        """Ask the job's endpoints in order until one has the image; classify what they said."""
        tried: list[tuple[_Endpoint, Answer]] = []
        for endpoint in job.endpoints:
            answer = await self._ask(state, endpoint, job)
            tried.append((endpoint, answer))
            if answer.status == Status.AVAILABLE:
                break
        result = classify(tried, self._clock())
        if result.status == Status.ERROR:
            log.info("checking %s: %s", job.key[0], result.detail)
        state.finished()
        return job.key, result

    async def _ask(self, state: _Round, endpoint: _Endpoint, job: Job) -> Answer:
        """One endpoint's answer, asked again after a 429 or 503 while the round's deadline allows."""
        while True:
            answer, sent = await self._ask_once(state, endpoint, job)
            if not (sent and answer.pushback and state.may_retry(self._pauses.paused(endpoint.host))):
                return answer

    async def _ask_once(self, state: _Round, endpoint: _Endpoint, job: Job) -> tuple[Answer, bool]:
        """(answer, whether a request was sent): each matching credential in turn until one is not refused."""
        failure = await self._reach(state, endpoint)
        if failure is not None:
            return failure, False
        matched = job.keyring.match(job.ref.registry, job.ref.repository)
        failed = [c.source for c in matched if isinstance(c, FailedCredential)]  # a credential provider's
        answer = Answer(Status.ERROR, detail="not checked")
        for credential in [c for c in matched if not isinstance(c, FailedCredential)] or [None]:
            try:
                answer = await state.client_for(endpoint.host).check(
                    endpoint.base, endpoint.host, endpoint.repository, job.ref.manifest_reference, credential,
                    fetch=state.fetch)
            except Paused as paused:
                return _from_pause(paused.state, self._clock()), False
            if answer.status not in (Status.UNAUTHORIZED, Status.FORBIDDEN):
                break
        if failed and answer.status in (Status.UNAUTHORIZED, Status.FORBIDDEN):
            answer = Answer(Status.ERROR, detail="; ".join(failed))
        self._learn(endpoint.host, answer)
        return answer, True

    def _learn(self, host: str, answer: Answer) -> None:
        """What an answer tells of its host: a pause for a 429 (its Retry-After), a backoff for a failure."""
        seconds = parse_retry_after(answer.retry_after, self._clock(), self.settings.retry_after_max)
        if answer.status == Status.RATE_LIMITED or (answer.pushback and seconds is not None):
            self._pauses.rate_limited(host, RATE_LIMIT_PAUSE if seconds is None else seconds, answer.detail,
                                      unavailable=answer.status != Status.RATE_LIMITED)
        elif answer.connection_failed:
            self._pauses.failed(host, answer.detail)
        else:
            self._pauses.succeeded(host)


# -- step 4: classify --

def classify(tried: list[tuple[_Endpoint, Answer]], now: float) -> CheckResult:
    """An image's result from its endpoints' answers: the first that has it, else the first endpoint's answer."""
    for endpoint, answer in tried:
        if answer.status == Status.AVAILABLE:
            return CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, now,
                               answer.media_type, answer.children)
    endpoint, answer = tried[0]
    return CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, now)


def _from_pause(paused: HostState, now: float) -> Answer:
    status = Status.RATE_LIMITED if paused.rate_limited and not paused.unavailable else Status.UNREACHABLE
    wait = paused.paused_until - now
    return Answer(status, detail=f"{paused.reason} (host paused, next probe in {wait:.0f}s)")


@dataclass
class _Round:
    """What the steps of one round share: its HTTP clients and gates, and what its pings learned."""

    checker: Checker
    fetch: bool
    deadline: float | None
    progress: Callable[[int, int], None] | None
    total: int
    done: int = 0
    unreachable: dict[str, Answer] = field(default_factory=dict)  # base -> why it cannot be reached this round
    _clients: dict[object, EndpointClient] = field(default_factory=dict)
    _http: list[httpx.AsyncClient] = field(default_factory=list)
    _gates: dict[str, Gate] = field(default_factory=dict)
    _ping_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def client_for(self, host: str) -> EndpointClient:
        """One HTTP client per TLS configuration, shared by the hosts that have it."""
        settings = self.checker.settings
        options = settings.host(host)
        key = (options.skip_verify, options.ca_file, settings.ca_file)
        if key not in self._clients:
            verify, limits = self.checker._verify(host), httpx.Limits(max_connections=None, max_keepalive_connections=64)
            transport = self.checker._transport
            if transport is None and not getproxies():  # a proxy in the environment: httpx's transport honours it
                transport = AsyncioTransport(verify, limits)
            http = httpx.AsyncClient(verify=verify, timeout=settings.timeout, transport=transport,
                                     follow_redirects=True, limits=limits)
            self._http.append(http)
            self._clients[key] = EndpointClient(http, self.checker._tokens, self.checker.stats,
                                                self.checker._challenges, gates=self.gate_for)
        return self._clients[key]

    def gate_for(self, host: str) -> Gate:
        if host not in self._gates:
            self._gates[host] = Gate(host, self.checker._load_control(host), self.checker._pauses, self.deadline,
                                     wall_clock=self.checker._clock)
        return self._gates[host]

    def ping_lock(self, base: str) -> asyncio.Lock:
        return self._ping_locks.setdefault(base, asyncio.Lock())

    def may_wait_for(self, paused: HostState) -> bool:
        return self.deadline is not None and paused.paused_until < self.deadline

    def may_retry(self, paused: HostState | None) -> bool:
        if self.deadline is None or self.checker._clock() >= self.deadline:
            return False
        return paused is None or self.may_wait_for(paused)

    def finished(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    async def close(self) -> None:
        for http in self._http:
            await http.aclose()
