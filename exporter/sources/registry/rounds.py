"""One check round: its steps, and the state they share, handed to them as one object.

A `Round` holds what one round has — its HTTP clients (one per TLS configuration), one gate per host, what its
pings learned, its deadline, the credentials each check uses — and is given, as explicit fields, what outlives
it: the `Hosts` (settings, pauses, load controls, challenges, tokens), the request stats, the transport and
the pool credential provider plugins run in. Its steps, as methods:

- authorize: learn each endpoint's challenge (one ping), fetch the round's tokens several scopes at a time;
- request: each check through its host's gate (`limits.Gate`: adaptive load below any configured cap), a paused
  host answered from its pause, a 429 or 503 tried again while the round's deadline allows;
- classify: one result per image from what its endpoints answered (`classify`, a pure function).

One clock: `time.monotonic` for every pause, gate and deadline. Wall time only stamps results (`checked_at`,
shown and shared with a fleet) and reads a Retry-After given as an HTTP date.

A keyring whose credentials need a node's credential provider plugin to run is read off the event loop, in
the plugins' own thread pool: a plugin may take seconds, and a loop stalled that long would stall every request
in flight, whose timeouts the adaptive limit would then read as a slow registry.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from urllib.request import getproxies

import httpx

from exporter.model.images import ImageRef
from exporter.model.manifests import Manifest
from exporter.model.records import Status
from exporter.sources.registry.auth import Challenge, TokenCache
from exporter.sources.registry.client import Answer, EndpointClient, credential_fingerprint
from exporter.sources.registry.credentials import Credential, FailedCredential, Keyring
from exporter.sources.registry.limits import AdaptiveLimit, Gate, HostPauses, HostState, Paused, parse_retry_after
from exporter.sources.registry.settings import RegistrySettings
from exporter.sources.registry.stats import RequestStats
from exporter.sources.registry.streams import AsyncioTransport

log = logging.getLogger(__name__)

RATE_LIMIT_PAUSE = 60.0  # a 429 without a Retry-After pauses its host this long
ResultKey = tuple[str, str]  # (image, keyring fingerprint)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    digest: str | None
    endpoint: str  # the host that answered (a mirror's, when a mirror had it)
    detail: str
    checked_at: float  # Unix time: shown, and shared with a fleet
    media_type: str | None = None  # an index's type tells a multi-arch tag
    manifest: Manifest | None = None  # what the manifest says, when fetched by `Checker.manifests`


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # as configured, used for limits and the `registry` label
    base: str  # scheme://host
    repository: str


@dataclass(frozen=True, slots=True)
class Job:
    """One check to make: an image with one credential set, and the endpoints to ask, in order."""

    key: ResultKey
    keyring: Keyring
    ref: ImageRef
    endpoints: tuple[Endpoint, ...]


@dataclass
class Hosts:
    """What the checker learns of registry hosts and keeps across rounds (each round runs its own event loop)."""

    settings: RegistrySettings
    pauses: HostPauses
    tokens: TokenCache
    challenges: dict[str, Challenge] = field(default_factory=dict)  # base URL -> the challenge it answered
    controls: dict[str, AdaptiveLimit] = field(default_factory=dict)  # host -> its load control

    def control(self, host: str) -> AdaptiveLimit:
        """The host's load control: adaptive below its caps (the host's own, else the global ones)."""
        if host not in self.controls:
            options = self.settings.host(host)
            ceiling = options.concurrency or self.settings.concurrency or self.settings.ceiling
            self.controls[host] = AdaptiveLimit(ceiling, options.rate or self.settings.rate)
        return self.controls[host]


def tls_verification(settings: RegistrySettings, host: str) -> ssl.SSLContext | bool:
    """How a host's certificate is verified: not at all (`skip_verify`), else with the configured CA files."""
    options = settings.host(host)
    if options.skip_verify:
        return False
    context = ssl.create_default_context()
    for ca_file in (settings.ca_file, options.ca_file):
        if ca_file:
            context.load_verify_locations(cafile=str(ca_file))
    return context


@dataclass
class Round:
    """One round over registries: what its steps share, and the steps themselves."""

    hosts: Hosts  # outlives the round
    stats: RequestStats  # outlives the round
    transport: httpx.AsyncBaseTransport | None = None  # a test's, else the asyncio-streams one
    plugins: Executor | None = None  # where a lookup that may run a credential provider plugin goes
    fetch: bool = False  # GET manifests (what they say), not HEAD
    path: str = "manifests"  # or "blobs": images' config blobs, by digest
    deadline: float | None = None  # monotonic; a 429 or 503 is asked again while its pause ends before it
    progress: Callable[[int, int], None] | None = None
    total: int = 0
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time  # stamps results only
    done: int = 0
    unreachable: dict[str, Answer] = field(default_factory=dict)  # base -> why it cannot be reached this round
    credentials: dict[ResultKey, list[Credential]] = field(default_factory=dict)  # what each check presents
    clients: dict[object, EndpointClient] = field(default_factory=dict)
    gates: dict[str, Gate] = field(default_factory=dict)
    ping_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def settings(self) -> RegistrySettings:
        return self.hosts.settings

    async def run(self, jobs: list[Job]) -> dict[ResultKey, CheckResult]:
        """Every job's result: the round's tokens first, then the checks, all at once through their gates."""
        self.total = len(jobs)
        try:
            await self.authorize(jobs)
            return dict(await asyncio.gather(*(self.request(job) for job in jobs)))
        finally:
            await self.close()

    # -- the round's parts --

    def client_for(self, host: str) -> EndpointClient:
        """One HTTP client per TLS configuration, shared by the hosts that have it."""
        options = self.settings.host(host)
        key = (options.skip_verify, options.ca_file, self.settings.ca_file)
        if key not in self.clients:
            verify = tls_verification(self.settings, host)
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            transport = self.transport
            if transport is None and not getproxies():  # a proxy in the environment: httpx's transport honours it
                transport = AsyncioTransport(verify, limits)
            http = httpx.AsyncClient(verify=verify, timeout=self.settings.timeout, transport=transport,
                                     follow_redirects=True, limits=limits)
            self.clients[key] = EndpointClient(http, self.hosts.tokens, self.stats, self.hosts.challenges,
                                               gates=self.gate_for)
        return self.clients[key]

    def gate_for(self, host: str) -> Gate:
        if host not in self.gates:
            self.gates[host] = Gate(host, self.hosts.control(host), self.hosts.pauses, self.deadline, self.clock)
        return self.gates[host]

    def ping_lock(self, base: str) -> asyncio.Lock:
        return self.ping_locks.setdefault(base, asyncio.Lock())

    def may_wait_for(self, paused: HostState) -> bool:
        return self.deadline is not None and paused.paused_until < self.deadline

    def may_retry(self, paused: HostState | None) -> bool:
        if self.deadline is None or self.clock() >= self.deadline:
            return False
        return paused is None or self.may_wait_for(paused)

    def finished(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    # -- step 2: authorize --

    async def authorize(self, jobs: list[Job]) -> None:
        """Learn each endpoint's challenge, then fetch the round's tokens several scopes at a time.

        Checks whose credentials wait for a credential provider plugin get their tokens one by one later:
        no check waits here for a plugin.
        """
        for job in jobs:
            ready = _ready_credentials(job)
            if ready is not None:
                self.credentials[job.key] = ready
        groups = token_groups(jobs, self.credentials)
        await asyncio.gather(*(self._first_ping(base, host) for base, host in {(k[0], k[1]) for k in groups}))
        await asyncio.gather(*(self.client_for(host).prefetch_tokens(base, sorted(repos), credential)
                               for (base, host, _), (credential, repos) in groups.items()))

    async def _first_ping(self, base: str, host: str) -> None:
        async with self.ping_lock(base):
            if not self.hosts.pauses.is_paused(host):
                await self.ping(base, host)

    async def ping(self, base: str, host: str) -> Answer | None:
        """Learn the endpoint's challenge; a failure pauses the host and answers for it this round."""
        try:
            failure = await self.client_for(host).ping(base, host)
        except Paused as paused:
            return from_pause(paused.state, self.clock())
        if failure is not None:
            self.unreachable[base] = failure
            self.hosts.pauses.failed(host, failure.detail)
        return failure

    async def reach(self, endpoint: Endpoint) -> Answer | None:
        """None when a request may go to the endpoint now; what answers instead otherwise.

        A paused host answers from its pause, unless the pause ends before the round's deadline: then the
        request waits for it. Holding the ping lock is brief: the challenge is learned once.
        """
        async with self.ping_lock(endpoint.base):
            failure = self.unreachable.get(endpoint.base)
            if failure is not None:
                return failure
            while (paused := self.hosts.pauses.admit(endpoint.host)) is not None:
                if not self.may_wait_for(paused):
                    return from_pause(paused, self.clock())
                await asyncio.sleep(paused.paused_until - self.clock())
            return await self.ping(endpoint.base, endpoint.host)

    # -- step 3: request --

    async def request(self, job: Job) -> tuple[ResultKey, CheckResult]:
        """Ask the job's endpoints in order until one has the image; classify what they said."""
        credentials = await self.credentials_of(job)
        tried: list[tuple[Endpoint, Answer]] = []
        for endpoint in job.endpoints:
            answer = await self.ask(endpoint, credentials, job.ref.manifest_reference)
            tried.append((endpoint, answer))
            if answer.status == Status.AVAILABLE:
                break
        result = classify(tried, self.wall_clock())
        if result.status == Status.ERROR:
            log.info("checking %s: %s", job.key[0], result.detail)
        self.finished()
        return job.key, result

    async def credentials_of(self, job: Job) -> list[Credential]:
        """The credentials the kubelet would try for the job, looked up off the loop when a plugin must run."""
        known = self.credentials.get(job.key)
        if known is None:
            known = await asyncio.get_running_loop().run_in_executor(
                self.plugins, job.keyring.match, job.ref.registry, job.ref.repository)
            self.credentials[job.key] = known
        return known

    async def ask(self, endpoint: Endpoint, credentials: list[Credential], reference: str) -> Answer:
        """One endpoint's answer, asked again after a 429 or 503 while the round's deadline allows."""
        while True:
            answer, sent = await self.ask_once(endpoint, credentials, reference)
            if not (sent and answer.pushback and self.may_retry(self.hosts.pauses.paused(endpoint.host))):
                return answer

    async def ask_once(self, endpoint: Endpoint, credentials: list[Credential],
                       reference: str) -> tuple[Answer, bool]:
        """(answer, whether a request was sent): each usable credential in turn until one is not refused."""
        failure = await self.reach(endpoint)
        if failure is not None:
            return failure, False
        failed = [c.source for c in credentials if isinstance(c, FailedCredential)]  # a credential provider's
        answer = Answer(Status.ERROR, detail="not checked")
        for credential in [c for c in credentials if not isinstance(c, FailedCredential)] or [None]:
            try:
                answer = await self.client_for(endpoint.host).check(
                    endpoint.base, endpoint.host, endpoint.repository, reference, credential, fetch=self.fetch,
                    path=self.path)
            except Paused as paused:
                return from_pause(paused.state, self.clock()), False
            if answer.status not in (Status.UNAUTHORIZED, Status.FORBIDDEN):
                break
        if failed and answer.status in (Status.UNAUTHORIZED, Status.FORBIDDEN):
            answer = Answer(Status.ERROR, detail="; ".join(failed))
        self.learn(endpoint.host, answer)
        return answer, True

    def learn(self, host: str, answer: Answer) -> None:
        """What an answer tells of its host: a pause for a 429 (its Retry-After), a backoff for a failure."""
        pauses = self.hosts.pauses
        seconds = parse_retry_after(answer.retry_after, self.wall_clock(), self.settings.retry_after_max)
        if answer.status == Status.RATE_LIMITED or (answer.pushback and seconds is not None):
            pauses.rate_limited(host, RATE_LIMIT_PAUSE if seconds is None else seconds, answer.detail,
                                unavailable=answer.status != Status.RATE_LIMITED)
        elif answer.connection_failed:
            pauses.failed(host, answer.detail)
        else:
            pauses.succeeded(host)


def _ready_credentials(job: Job) -> list[Credential] | None:
    """The job's credentials when no credential provider plugin has to run for them, else None.

    A node's keyring (`node.keyring.NodeKeyring`) can tell; any other keyring answers at once.
    """
    ready = getattr(job.keyring, "ready", None)
    if ready is not None:
        return ready(job.ref.registry, job.ref.repository)
    return job.keyring.match(job.ref.registry, job.ref.repository)


def token_groups(jobs: Iterable[Job], credentials: dict[ResultKey, list[Credential]],
                 ) -> dict[tuple[str, str, str], tuple[Credential | None, set[str]]]:
    """The repositories each (endpoint, first credential) needs a token for; jobs without known credentials
    are left out."""
    groups: dict[tuple[str, str, str], tuple[Credential | None, set[str]]] = {}
    for job in jobs:
        if job.key not in credentials:
            continue
        credential = (credentials[job.key] or [None])[0]
        for endpoint in job.endpoints:
            key = (endpoint.base, endpoint.host, credential_fingerprint(credential))
            groups.setdefault(key, (credential, set()))[1].add(endpoint.repository)
    return groups


# -- step 4: classify --

def classify(tried: list[tuple[Endpoint, Answer]], now: float) -> CheckResult:
    """An image's result from its endpoints' answers: the first that has it, else the first endpoint's answer."""
    for endpoint, answer in tried:
        if answer.status == Status.AVAILABLE:
            return CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, now,
                               answer.media_type, answer.manifest)
    endpoint, answer = tried[0]
    return CheckResult(answer.status, answer.digest, endpoint.host, answer.detail, now)


def from_pause(paused: HostState, now: float) -> Answer:
    """What a paused host answers for it (`now` on the pauses' clock)."""
    status = Status.RATE_LIMITED if paused.rate_limited and not paused.unavailable else Status.UNREACHABLE
    wait = paused.paused_until - now
    return Answer(status, detail=f"{paused.reason} (host paused, next probe in {wait:.0f}s)")
