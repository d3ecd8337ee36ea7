"""Load on a real registry, seen from the registry's side: caps hold, 429s are honoured, load comes back.

The real docker-registry sits behind the fronts of tests/support/fronts.py: a link adding a delay to each
request (so requests overlap and in-flight counts mean something) and a token-bucket rate limit answering 429
with Retry-After. The fronts count what arrives; the tests assert verdicts and counts, never durations.
"""

import time

import pytest

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import ANONYMOUS
from exporter.sources.registry.settings import DEFAULT_TTL, RegistrySettings, from_options
from tests.support import registry as real
from tests.support.fronts import DelayProxy, RateFront

IMAGES = 60


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """A registry holding IMAGES tags of one repository."""
    reg = real.Registry(tmp_path_factory.mktemp("load-registry"))
    for i in range(IMAGES):
        reg.push_image("load/app", f"v{i}", seed="load")
    yield reg
    reg.stop()


@pytest.fixture
def slow_link(many):
    proxy = DelayProxy(many.host, delay=0.02)
    yield proxy
    proxy.stop()


def front(upstream: str, rate: float, **kwargs) -> RateFront:
    return RateFront(upstream, rate, **kwargs)


def checker(host: str, **options) -> Checker:
    settings = from_options(insecure=[host], **options)
    return Checker(RegistrySettings(**{**settings.__dict__, "ceiling": 32}))


def refs(host: str, count: int = IMAGES) -> list[tuple[str, object]]:
    return [(f"{host}/load/app:v{i}", ANONYMOUS) for i in range(count)]


def test_concurrency_and_rate_caps_are_never_exceeded_at_the_registry(slow_link):
    counter = front(slow_link.host, rate=1e6)  # counts, refuses nothing
    try:
        results = checker(counter.host, concurrency=3, rate=20).check_many(refs(counter.host, 40))
        assert {r.status for r in results.values()} == {Status.AVAILABLE}
        assert counter.peak_in_flight <= 3
        # 20 a second at most: spacing is enforced at the sender; arrival jitter of a tenth of a second allowed
        assert counter.most_in_any_second(window=0.9) <= 20
        assert counter.refused == 0 and len(counter.arrivals) == 41  # one ping, one HEAD each
    finally:
        counter.stop()


def test_without_caps_requests_in_flight_grow_while_latency_holds(slow_link):
    counter = front(slow_link.host, rate=1e6)
    try:
        results = checker(counter.host).check_many(refs(counter.host))
        assert {r.status for r in results.values()} == {Status.AVAILABLE}
        assert counter.peak_in_flight > 4  # beyond the initial window: the window grew
        assert counter.peak_in_flight <= 32  # never above the ceiling
    finally:
        counter.stop()


def test_a_rate_limited_registry_is_honoured_and_every_verdict_comes_right(many):
    limit = front(many.host, rate=20, retry_after="1")
    try:
        check = checker(limit.host)
        results = check.check_many(refs(limit.host), deadline=time.time() + 60)
        assert {r.status for r in results.values()} == {Status.AVAILABLE}
        assert limit.refused > 0  # the limit was met ...
        assert limit.refused <= IMAGES // 2  # ... and learned, not hammered
        for refused_at in limit.refusals:  # Retry-After: 1 honoured (in-flight ones may land just after)
            assert not [t for t in limit.arrivals if refused_at + 0.1 < t < refused_at + 0.9]
    finally:
        limit.stop()


@pytest.mark.long
def test_still_limited_at_the_deadline_is_rate_limited_then_recovers_when_the_limit_lifts(many):
    limit = front(many.host, rate=2, burst=2, retry_after="1")
    try:
        ttl = {**DEFAULT_TTL, Status.RATE_LIMITED: 0}  # nothing remembered: the second round asks again
        settings = from_options(insecure=[limit.host])
        check = Checker(RegistrySettings(**{**settings.__dict__, "ttl": ttl, "ceiling": 32}))
        first = check.check_many(refs(limit.host, 20), deadline=time.time() + 1.5)
        statuses = [r.status for r in first.values()]
        assert Status.RATE_LIMITED in statuses and set(statuses) <= {Status.AVAILABLE, Status.RATE_LIMITED}
        limit.lift(1e6)
        second = check.check_many(refs(limit.host, 20), deadline=time.time() + 60)
        assert {r.status for r in second.values()} == {Status.AVAILABLE}
    finally:
        limit.stop()


def test_without_a_deadline_a_429_is_answered_from_the_pause(many):
    limit = front(many.host, rate=5, burst=5, retry_after="30")
    try:
        results = checker(limit.host).check_many(refs(limit.host, 30))
        statuses = {r.status for r in results.values()}
        assert statuses == {Status.AVAILABLE, Status.RATE_LIMITED}
        assert len(limit.arrivals) < 30  # the paused ones sent nothing
    finally:
        limit.stop()


def test_check_command_reports_what_is_still_limited_at_its_timeout(many, capsys):
    from exporter.cli import main

    limit = front(many.host, rate=1, burst=1, retry_after="1")
    try:
        images = [f"{limit.host}/load/app:v{i}" for i in range(8)]
        code = main(["check", *images, "--insecure-registry", limit.host, "--timeout", "1500ms"])
        out = capsys.readouterr().out
        assert code == 1 and "rate_limited" in out
        assert main(["check", images[0], "--timeout", "soon"]) == 2
    finally:
        limit.stop()
