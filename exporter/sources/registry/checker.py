"""Check many images at once, with the credentials each would be pulled with, as fast as each registry allows.

`check_many` answers what the result cache still knows (`_recall`) and checks the rest in a round:

- plan (here): each distinct (image, credential set) once, with the endpoints to try (`_endpoints`: mirrors
  first), and the results known without a request (a reference that does not parse, an image the node refuses);
- authorize, request, classify: a `rounds.Round`, given what outlives it (`rounds.Hosts`: pauses, load
  controls, challenges, tokens), runs them in its own event loop.

Results are stored (`_remember`) with a lifetime by status (jittered), so a round inside the lifetime sends
nothing; `manifests` reads what manifests say (an index's children, an image's platforms). `check_many` is synchronous and may run in any
thread. Pauses, gates and deadlines keep monotonic time; results carry Unix times (`checked_at`), as does the
`paused_until` of `host_limits`, converted where it is handed out.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
from cachetools import LRUCache, TLRUCache

from exporter.model.health import RegistryLimit
from exporter.model.images import ImageRef, InvalidReference, parse
from exporter.model.manifests import Manifest
from exporter.model.records import Status
from exporter.sources.registry.auth import TokenCache
from exporter.sources.registry.client import DOCKER_HUB_API
from exporter.sources.registry.credentials import ANONYMOUS, Keyring
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.rounds import (  # noqa: F401 (CheckResult, classify: read through this module too)
    CheckResult,
    Endpoint,
    Hosts,
    Job,
    ResultKey,
    Round,
    classify,
)
from exporter.sources.registry.settings import RegistrySettings
from exporter.sources.registry.stats import RequestStats

if TYPE_CHECKING:
    from exporter.sources.registry.shared import SharedCache

CheckRequest = tuple[str, Keyring]
PLUGIN_THREADS = 4  # credential provider plugins running at once, off the rounds' event loops


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
        monotonic=time.monotonic,
    ) -> None:
        """`clock` stamps results and ages the result cache (Unix time, shared with a fleet); `monotonic` times
        every pause, gate and deadline."""
        self.settings = settings or RegistrySettings()
        self.shared = shared  # --cache-url: results shared with other exporters
        self.stats = stats or RequestStats()
        self._transport = transport
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self.hosts = Hosts(self.settings, HostPauses(self.settings.backoff_initial, self.settings.backoff_max, monotonic),
                           TokenCache(monotonic))
        self._plugins = ThreadPoolExecutor(PLUGIN_THREADS, thread_name_prefix="credential-provider")
        self._cache: TLRUCache = TLRUCache(maxsize=self.settings.cache_size, ttu=self._expiry, timer=clock)
        # name@digest -> what the manifest says, or the (monotonic) time a failed read may be retried
        self._manifests: LRUCache = LRUCache(maxsize=self.settings.cache_size)

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

    def _endpoints(self, ref: ImageRef) -> list[Endpoint]:
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
            return endpoints + [Endpoint(e.host, e.base, e.repository) for e in route.endpoints]
        endpoints.append(self._endpoint(ref.registry, ref.repository))
        return endpoints

    def _endpoint(self, host: str, repository: str) -> Endpoint:
        options = self.settings.host(host)
        api_host = DOCKER_HUB_API if host == "docker.io" else host
        scheme = "http" if options.insecure else "https"
        return Endpoint(api_host, f"{scheme}://{api_host}", repository)

    def host_limits(self) -> tuple[RegistryLimit, ...]:
        """The hosts paused or slowed now, as plain data (the status page's rate-limit state); changes nothing.

        `paused_until` is a Unix time: the pauses' monotonic time converted where it is shown."""
        paused = self.hosts.pauses.all_paused()
        learned = {host: control.learned_rate for host, control in list(self.hosts.controls.items())
                   if control.learned_rate is not None}
        to_wall = self._clock() - self._monotonic()
        return tuple(RegistryLimit(host, state.paused_until + to_wall if state else 0.0, state.reason if state else "",
                                   bool(state and state.rate_limited), learned.get(host))
                     for host in sorted(paused.keys() | learned.keys()) for state in [paused.get(host)])

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
        With a `deadline` (a Unix time, as a caller's timeout gives it), a 429 or 503 is asked again after its
        pause while the pause ends before the deadline; without one, a paused host is answered from its pause at
        once.
        """
        unique: dict[ResultKey, CheckRequest] = {}
        for image, keyring in requests:
            unique.setdefault((image, keyring.fingerprint), (image, keyring))
        results = self._recall(unique)
        todo = [(key, request) for key, request in unique.items() if key not in results]
        if todo and self.shared is not None:  # --cache-url: the fleet's results first, single-flight for the rest
            results.update(self._through_fleet(todo, progress, before_round, deadline))
        elif todo:
            if before_round is not None:
                before_round()
            checked = self._check(todo, progress, deadline)
            self._remember(checked)
            results.update(checked)
        return results

    def _through_fleet(self, todo: list[tuple[ResultKey, CheckRequest]], progress, before_round,
                       deadline) -> dict[ResultKey, CheckResult]:
        """What the fleet's shared cache holds, and the rest checked here (by one exporter of the fleet at a time)."""
        from exporter.sources.registry import shared as fleet  # only with a shared cache: redis is not loaded otherwise

        pending = dict(todo)
        checked, stored = fleet.check_through(
            self.shared, pending, lambda keys: self._check([(k, pending[k]) for k in keys], progress, deadline),
            lambda key, result: self._expiry(key, result, result.checked_at) - result.checked_at,
            CheckResult, before=before_round)
        self._remember(checked)
        self._remember(stored)
        return {**checked, **stored}

    def _check(self, todo: list[tuple[ResultKey, CheckRequest]], progress, deadline) -> dict[ResultKey, CheckResult]:
        """A round over what no cache answered: planned, then asked of the registries."""
        jobs, known = self.plan(todo)
        if deadline is not None:  # from here on, on the clock of pauses and gates
            deadline = self._monotonic() + (deadline - self._clock())
        return {**known, **self._round(jobs, progress=progress, deadline=deadline)}

    def _round(self, jobs: list[Job], **options) -> dict[ResultKey, CheckResult]:
        """The jobs' results from one round in its own event loop; `options` are the `Round`'s."""
        round_ = Round(self.hosts, self.stats, self._transport, self._plugins, clock=self._monotonic,
                       wall_clock=self._clock, **options)
        return asyncio.run(round_.run(jobs))

    def index_children(self, requests: Iterable[CheckRequest]) -> dict[str, frozenset[str]]:
        """The manifests listed by each index (`name@digest` requests); anything but an index answers nothing."""
        return {image: m.children for image, m in self.manifests(requests).items() if m.children is not None}

    def manifests(self, requests: Iterable[CheckRequest]) -> dict[str, Manifest]:
        """What each manifest (`name@digest` requests) says, with one GET each, and for a single manifest one GET
        of its config blob (its platform).

        A digest never changes, so what was read is kept for the process (in a bounded LRU, and in the fleet's
        store); a failed read is tried again after the TTL of its status.
        """
        answers: dict[str, Manifest] = {}
        todo = []
        now = self._monotonic()
        for image, keyring in dict(requests).items():
            known = self._manifests.get(image)
            if isinstance(known, Manifest):
                answers[image] = known
            elif known is None or known < now:  # never read, or a failure whose retry time has come
                todo.append(((image, keyring.fingerprint), (image, keyring)))
        if todo and self.shared is not None:  # --cache-url: manifests other exporters already read
            for image, known in self.shared.indexes.get([image for (image, _), _ in todo]).items():
                self._manifests[image] = answers[image] = known
            todo = [item for item in todo if item[0][0] not in answers]
        if todo:
            read = self._read_manifests(todo)
            for image, manifest in read.items():
                self._manifests[image] = answers[image] = manifest
            if self.shared is not None:
                self.shared.indexes.put(read)
        return answers

    def _read_manifests(self, todo: list[tuple[ResultKey, CheckRequest]]) -> dict[str, Manifest]:
        """Manifests read in one round, then the config blobs of the single ones in another; a failure is noted as
        its retry time, not returned."""
        now = self._monotonic()
        read: dict[str, Manifest] = {}
        configs: dict[str, list[str]] = {}  # name@config digest -> the manifests naming it
        keyrings = dict(request for _, request in todo)

        def failed(image: str, result: CheckResult) -> None:
            self._manifests[image] = now + self.settings.ttl.get(result.status, 120)

        jobs, known = self.plan(todo)
        for (image, _), result in {**known, **self._round(jobs, fetch=True)}.items():
            manifest = result.manifest
            if manifest is None:
                failed(image, result)
            elif manifest.config is not None:
                configs.setdefault(f"{parse(image).name}@{manifest.config}", []).append(image)
            else:
                read[image] = manifest
        if configs:
            blobs = [((blob, keyrings[images[0]].fingerprint), (blob, keyrings[images[0]]))
                     for blob, images in configs.items()]
            jobs, known = self.plan(blobs)
            for (blob, _), result in {**known, **self._round(jobs, fetch=True, path="blobs")}.items():
                for image in configs[blob]:
                    if result.manifest is not None and result.manifest.platforms is not None:
                        read[image] = Manifest(platforms=result.manifest.platforms)
                    else:
                        failed(image, result)
        return read

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

