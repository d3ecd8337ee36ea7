"""Check many images at once, with the credentials each would be pulled with, gently.

A round takes (image, keyring) requests, answers what the cache still knows, and checks the rest:
each distinct (image, credential set) once, endpoints tried mirror first, at most `concurrency`
requests in flight and `rate` a second per host, paused hosts answered from their pause without a
request. Results are cached with a lifetime by status (jittered), so a round inside the lifetime
sends nothing. `check_many` is synchronous and may run in any thread: it runs its own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from cachetools import LRUCache, TLRUCache

from exporter.images import InvalidReference, ImageRef, parse
from exporter.model import Status
from exporter.registry.auth import TokenCache
from exporter.registry.client import DOCKER_HUB_API, Answer, EndpointClient, credential_fingerprint
from exporter.registry import shared as fleet
from exporter.registry.credentials import ANONYMOUS, Keyring
from exporter.registry.limits import HostPauses, RateLimiter, parse_retry_after
from exporter.registry.settings import RegistrySettings
from exporter.registry.stats import RequestStats

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


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str  # as configured, used for limits and the `registry` label
    base: str  # scheme://host
    repository: str


class Checker:
    """Registry checks with caching and per-host limits; keep one for the life of the process."""

    def __init__(
        self,
        settings: RegistrySettings | None = None,
        stats: RequestStats | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock=time.time,
        rng: random.Random | None = None,
        shared: fleet.SharedCache | None = None,
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
        return self._cache.get((image, keyring.fingerprint))

    # -- endpoints --

    def _endpoints(self, ref: ImageRef) -> list[_Endpoint]:
        options = self.settings.host(ref.registry)
        endpoints = []
        for mirror in options.mirrors:
            host, _, prefix = mirror.partition("/")
            repository = f"{prefix.strip('/')}/{ref.repository}" if prefix else ref.repository
            endpoints.append(self._endpoint(host, repository))
        endpoints.append(self._endpoint(ref.registry, ref.repository))
        return endpoints

    def _endpoint(self, host: str, repository: str) -> _Endpoint:
        options = self.settings.host(host)
        api_host = DOCKER_HUB_API if host == "docker.io" else host
        scheme = "http" if options.insecure else "https"
        return _Endpoint(api_host, f"{scheme}://{api_host}", repository)

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
    ) -> dict[tuple[str, str], CheckResult]:
        """Results keyed by (image, keyring fingerprint); identical requests are checked once.

        `progress(done, total)` is called as checks complete (for a progress line on a terminal);
        `before_round()` once before any request is sent, and only when something is not cached.
        """
        unique: dict[tuple[str, str], CheckRequest] = {}
        for image, keyring in requests:
            unique.setdefault((image, keyring.fingerprint), (image, keyring))
        results: dict[tuple[str, str], CheckResult] = {}
        todo = []
        for key, request in unique.items():
            hit = self._cache.get(key)
            if hit is not None:
                results[key] = hit
            else:
                todo.append((key, request))
        if todo and self.shared is not None:  # --cache-url: the fleet's results first, single-flight for the rest
            pending = dict(todo)
            checked, stored = fleet.check_through(
                self.shared, pending, lambda keys: asyncio.run(self._round([(k, pending[k]) for k in keys], progress)),
                lambda key, result: self._expiry(key, result, result.checked_at) - result.checked_at,
                CheckResult, before=before_round)
            for found in (checked, stored):
                self._cache.update(found)
                results.update(found)
        elif todo:
            if before_round is not None:
                before_round()
            results.update(asyncio.run(self._round(todo, progress)))
        return results

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
            for (image, _), result in asyncio.run(self._round(todo, fetch=True)).items():
                if result.children is not None:
                    self._children[image] = answers[image] = read[image] = result.children
                else:
                    self._children[image] = now + self.settings.ttl.get(result.status, 120)
            if self.shared is not None:
                self.shared.put_children(read)
        return answers

    async def _round(self, todo, progress=None, fetch: bool = False) -> dict[tuple[str, str], CheckResult]:
        clients: dict[object, EndpointClient] = {}
        http_clients: list[httpx.AsyncClient] = []
        semaphores: dict[str, asyncio.Semaphore] = {}
        pings: dict[str, asyncio.Lock] = {}
        ping_failures: dict[str, Answer] = {}  # base -> why it could not be reached this round
        limiters: dict[str, RateLimiter] = {}

        def client_for(host: str) -> EndpointClient:
            options = self.settings.host(host)
            key = (options.skip_verify, options.ca_file, self.settings.ca_file)
            if key not in clients:
                http = httpx.AsyncClient(
                    verify=self._verify(host),
                    timeout=self.settings.timeout,
                    transport=self._transport,
                    follow_redirects=True,
                    limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                )
                http_clients.append(http)
                clients[key] = EndpointClient(http, self._tokens, self.stats, self._challenges)
            return clients[key]

        def limits_for(host: str) -> tuple[asyncio.Semaphore, RateLimiter]:
            if host not in semaphores:
                options = self.settings.host(host)
                concurrency = options.concurrency or self.settings.concurrency
                semaphores[host] = asyncio.Semaphore(concurrency)
                limiters[host] = RateLimiter(options.rate or self.settings.rate, concurrency)
            return semaphores[host], limiters[host]

        async def ping(base: str, host: str) -> Answer | None:
            """Learn the endpoint's challenge; a failure pauses the host and answers for it this round."""
            failure = await client_for(host).ping(base, host)
            if failure is not None:
                ping_failures[base] = failure
                self._pauses.failed(host, failure.detail)
            return failure

        async def ask(endpoint: _Endpoint, ref: ImageRef, keyring: Keyring) -> Answer:
            client = client_for(endpoint.host)
            semaphore, limiter = limits_for(endpoint.host)
            async with pings.setdefault(endpoint.base, asyncio.Lock()):  # brief: ping is cached after once
                failure = ping_failures.get(endpoint.base)
                if failure is None:
                    paused = self._pauses.paused(endpoint.host)
                    if paused is not None:
                        wait = paused.paused_until - self._clock()
                        status = Status.RATE_LIMITED if "rate limited" in paused.reason else Status.UNREACHABLE
                        return Answer(status, detail=f"{paused.reason} (host paused, next probe in {wait:.0f}s)")
                    failure = await ping(endpoint.base, endpoint.host)
                if failure is not None:
                    return failure
            credentials = keyring.match(ref.registry, ref.repository) or [None]
            answer = Answer(Status.ERROR, detail="not checked")
            for credential in credentials:
                async with semaphore:
                    await limiter.acquire()
                    answer = await client.check(endpoint.base, endpoint.host, endpoint.repository,
                                                ref.manifest_reference, credential, fetch=fetch)
                if answer.status not in (Status.UNAUTHORIZED, Status.FORBIDDEN):
                    break
            if answer.status == Status.RATE_LIMITED:
                seconds = parse_retry_after(answer.retry_after, self._clock(), self.settings.retry_after_max)
                self._pauses.rate_limited(endpoint.host, max(seconds or 0, 60.0), answer.detail)
            elif answer.connection_failed:
                self._pauses.failed(endpoint.host, answer.detail)
            else:
                self._pauses.succeeded(endpoint.host)
            return answer

        done = 0

        async def one(key, request) -> tuple[tuple[str, str], CheckResult]:
            nonlocal done
            pair = await one_check(key, request)
            done += 1
            if progress is not None:
                progress(done, len(todo))
            return pair

        async def one_check(key, request) -> tuple[tuple[str, str], CheckResult]:
            image, keyring = request
            try:
                ref = parse(image)
            except InvalidReference as exc:
                return key, CheckResult(Status.INVALID_REFERENCE, None, "", str(exc), self._clock())
            first: tuple[_Endpoint, Answer] | None = None
            for endpoint in self._endpoints(ref):
                answer = await ask(endpoint, ref, keyring)
                if answer.status == Status.AVAILABLE:
                    return key, CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, self._clock(),
                                            answer.media_type, answer.children)
                if first is None:
                    first = (endpoint, answer)
            endpoint, answer = first
            if answer.status == Status.ERROR:
                log.info("checking %s: %s", image, answer.detail)
            return key, CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, self._clock())

        async def prepare() -> None:
            """Learn each endpoint's challenge, then fetch the round's tokens several scopes at a time."""
            groups: dict[tuple[str, str, str], tuple[object, set[str]]] = {}
            for _, (image, keyring) in todo:
                try:
                    ref = parse(image)
                except InvalidReference:
                    continue
                for endpoint in self._endpoints(ref):
                    credential = (keyring.match(ref.registry, ref.repository) or [None])[0]
                    key = (endpoint.base, endpoint.host, credential_fingerprint(credential))
                    groups.setdefault(key, (credential, set()))[1].add(endpoint.repository)

            async def first_ping(base: str, host: str) -> None:
                async with pings.setdefault(base, asyncio.Lock()):
                    if not self._pauses.is_paused(host):
                        await ping(base, host)

            await asyncio.gather(*(first_ping(base, host) for base, host in {(k[0], k[1]) for k in groups}))
            await asyncio.gather(*(client_for(host).prefetch_tokens(base, sorted(repos), credential)
                                   for (base, host, _), (credential, repos) in groups.items()))

        try:
            await prepare()
            pairs = await asyncio.gather(*(one(key, request) for key, request in todo))
        finally:
            for http in http_clients:
                await http.aclose()
        if not fetch:  # fetched manifests are kept by `index_children`, not as statuses
            for key, result in pairs:
                self._cache[key] = result
        return dict(pairs)
