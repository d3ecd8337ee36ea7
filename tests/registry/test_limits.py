"""The check round's pieces alone: pauses, the adaptive limit, the gate, plan and classify."""

import asyncio

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.rounds import Endpoint, classify
from exporter.sources.registry.client import Answer
from exporter.sources.registry.credentials import ANONYMOUS
from exporter.sources.registry.limits import INITIAL_WINDOW, AdaptiveLimit, Gate, HostPauses, Paused


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_reading_a_pause_changes_nothing_admitting_reserves_the_probe():
    clock = Clock()
    pauses = HostPauses(5, 300, clock)
    pauses.failed("reg", "refused")
    assert pauses.paused("reg").reason == "refused"
    clock.now += 6
    assert pauses.paused("reg") is None and pauses.paused("reg") is None  # read twice: still nothing
    assert pauses.admit("reg") is None  # the probe goes
    assert pauses.admit("reg") is not None  # the others wait for it
    pauses.succeeded("reg")
    assert pauses.admit("reg") is None


def test_window_doubles_then_a_pushback_halves_it_and_teaches_a_rate():
    clock = Clock()
    limit = AdaptiveLimit(ceiling=32, clock=clock)
    assert limit.window == INITIAL_WINDOW and limit.rate is None
    for _ in range(INITIAL_WINDOW):
        limit.answered(clock.now, 0.01)
    assert limit.window == 2 * INITIAL_WINDOW
    started = clock.now
    clock.now += 0.1
    limit.pushed_back(started, rate_limited=True)
    assert limit.window == INITIAL_WINDOW and limit.rate is not None
    window = limit.window
    limit.pushed_back(started, rate_limited=True)  # sent before the cut: no second cut
    assert limit.window == window


def test_a_latency_jump_cuts_and_caps_are_never_exceeded():
    clock = Clock()
    limit = AdaptiveLimit(ceiling=3, rate_cap=5, clock=clock)
    for _ in range(50):
        limit.answered(clock.now, 0.01)
    assert limit.window == 3 and limit.rate == 5
    for _ in range(10):
        clock.now += 0.01
        limit.answered(clock.now, 0.5)
    assert limit.window < 3


def test_gate_keeps_in_flight_under_the_window_and_raises_paused_past_the_deadline():
    pauses = HostPauses(5, 300)
    gate = Gate("reg", AdaptiveLimit(ceiling=2), pauses, deadline=None)
    peak = []

    async def one():
        async with gate.request() as outcome:
            peak.append(gate._in_flight)
            await asyncio.sleep(0.01)
            outcome.code = 200

    async def main():
        await asyncio.gather(*(one() for _ in range(10)))
        pauses.rate_limited("reg", 60, "rate limited")
        try:
            async with gate.request():
                raise AssertionError("sent while paused")
        except Paused as paused:
            return paused.state

    state = asyncio.run(main())
    assert max(peak) <= 2 and state.rate_limited


def test_plan_answers_bad_references_without_a_request_and_orders_mirrors_first():
    from exporter.sources.registry.settings import from_options

    checker = Checker(from_options(mirrors=["registry.example=mirror.example/cache"]))
    jobs, known = checker.plan([(("Bad:Ref:1", "anonymous"), ("Bad:Ref:1", ANONYMOUS)),
                                (("registry.example/a:1", "anonymous"), ("registry.example/a:1", ANONYMOUS))])
    assert known[("Bad:Ref:1", "anonymous")].status == Status.INVALID_REFERENCE
    [job] = jobs
    assert [e.host for e in job.endpoints] == ["mirror.example", "registry.example"]
    assert job.endpoints[0].repository == "cache/a"


def test_classify_takes_the_first_endpoint_that_has_it_else_the_first_answer():
    mirror, origin = Endpoint("m", "http://m", "a"), Endpoint("o", "http://o", "a")
    found = classify([(mirror, Answer(Status.ABSENT)), (origin, Answer(Status.AVAILABLE, digest="d"))], 1.0)
    assert (found.status, found.endpoint, found.digest) == (Status.AVAILABLE, "o", "d")
    missing = classify([(mirror, Answer(Status.ABSENT, detail="gone")), (origin, Answer(Status.UNREACHABLE))], 1.0)
    assert (missing.status, missing.endpoint, missing.detail) == (Status.ABSENT, "m", "gone")


def test_an_answer_to_an_earlier_request_does_not_lift_a_retry_after():
    clock = Clock()
    pauses = HostPauses(5, 300, clock)
    pauses.rate_limited("reg", 1.0, "rate limited")
    pauses.succeeded("reg")
    assert pauses.paused("reg") is not None
    clock.now += 1.5
    assert pauses.admit("reg") is None


def test_caps_come_from_the_registry_entry_then_the_global_setting_else_the_ceiling():
    from exporter.sources.registry.settings import from_options

    checker = Checker(from_options(concurrency=6, hosts={"capped.example": {"concurrency": 2, "rate": 5}}))
    capped, other = checker.hosts.control("capped.example"), checker.hosts.control("other.example")
    assert (capped.ceiling, capped.rate) == (2, 5)
    assert (other.ceiling, other.rate) == (6, None)
    assert Checker().hosts.control("free.example").ceiling == Checker().settings.ceiling
