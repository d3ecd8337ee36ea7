"""No list/watch dies quietly: garbage on the stream and unexpected exceptions are counted, backed off and
recovered from; a thread that ends anyway shows in the health; health follows the last outcome, not the time
of the last event (emulator over HTTP)."""

import pytest

from exporter.sources.cluster import watch as watch_cluster
from exporter.sources.kube.api import Garbled
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.kube.objects import ObjectFields, trim
from exporter.sources.kube.watch import Backoff, Reflector
from exporter.sources.registry.credentials import Keyring
from tests.conftest import make_pod
from tests.support import eventually

GARBAGE = {
    "not JSON": b"{this is not json",
    "a JSON list": b'["ADDED", {}]',
    "a JSON string": b'"ADDED"',
    "no object": b'{"type": "ADDED"}',
    "an object that is a string": b'{"type": "MODIFIED", "object": "x"}',
    "an object that is a list": b'{"type": "ADDED", "object": [1, 2]}',
    "metadata that is a string": b'{"type": "ADDED", "object": {"metadata": "x"}}',
    "an unknown event type": b'{"type": "UPSERTED", "object": {"metadata": {"uid": "u1", "name": "n"}}}',
    "no event type": b'{"object": {"metadata": {"uid": "u1", "name": "n"}}}',
    "an ERROR whose code is text": b'{"type": "ERROR", "object": {"code": "teapot", "message": "m"}}',
    "an object without uid": b'{"type": "ADDED", "object": {"metadata": {"name": "nameless"}}}',
}


def wait_until(predicate, timeout=10.0):
    assert eventually(predicate, timeout), "condition not reached in time"


def names(reflector):
    return sorted(p.meta.name for p in reflector.snapshot().values())


@pytest.fixture
def client(emulator, kubeconfig):
    return load_clusters(kubeconfig)[0]


@pytest.fixture(params=[None, ObjectFields], ids=["parsed whole", "fields trim reads"])
def reflector(client, request):
    r = Reflector(client, "v1", "Pod", trim=trim, watch_timeout=30, backoff=Backoff(initial=0.05, maximum=0.2),
                  fields=request.param)
    yield r
    r.stop()


@pytest.mark.parametrize("line", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_on_the_stream_is_counted_and_the_watch_goes_on(emulator, reflector, line, caplog):
    emulator.create(make_pod("before"))
    reflector.start()
    assert reflector.synced.wait(5)
    wait_until(lambda: emulator.watching["pods"] == 1)
    failures = reflector.stats.errors + reflector.stats.skipped
    assert emulator.inject("pods", line) == 1
    wait_until(lambda: reflector.stats.errors + reflector.stats.skipped > failures)
    emulator.create(make_pod("after"))
    wait_until(lambda: names(reflector) == ["after", "before"])
    assert reflector._thread.is_alive() and reflector.stats.failing_since is None
    assert "Traceback" not in caplog.text  # a known failure: one line, no traceback


@pytest.mark.parametrize("fields", [None, ObjectFields])
def test_garbage_is_named_without_its_content(client, emulator, fields):
    _, version = client.list("v1", "Pod")
    stream = client.watch("v1", "Pod", version, timeout_seconds=2, fields=fields)
    wait_until(lambda: emulator.watching["pods"] == 1)
    emulator.inject("pods", b'{"type": "ADDED", "object": "s3cr3t-looking"}')
    with pytest.raises(Garbled) as caught:
        list(stream)
    assert str(caught.value) == "one: watch pods: an event of type ADDED whose object is str, not an object"


def test_an_unexpected_exception_is_logged_once_counted_and_followed_by_a_relist(emulator, client, caplog):
    emulator.create(make_pod("first"))
    broken = {"times": 2}

    def on_change():
        if broken["times"]:
            broken["times"] -= 1
            raise RuntimeError("a bug in a consumer")

    r = Reflector(client, "v1", "Pod", trim=trim, watch_timeout=30, on_change=on_change,
                  backoff=Backoff(initial=0.05, maximum=0.1))
    r.start()
    try:
        wait_until(lambda: r.stats.errors == 2 and r.stats.failing_since is None)
        assert r.stats.lists == 3  # listed again after each failure: what it held may have been half applied
        emulator.create(make_pod("second"))
        wait_until(lambda: names(r) == ["first", "second"])
        assert r._thread.is_alive()
        assert caplog.text.count("Traceback") == 1  # the traceback once; the second time one line
        assert caplog.text.count("list/watch failed (RuntimeError: a bug in a consumer); listing again in") == 2
    finally:
        r.stop()


class _Fatal(BaseException):
    """What no `except Exception` catches."""


def test_a_thread_that_ends_anyway_is_down_and_says_why(emulator, client):
    cluster = watch_cluster(client, frozenset(), Keyring(), 30, None, lambda ns, selected: True, [])
    pods = cluster.reflectors[0]
    assert pods.kind == "Pod"

    def fatal():
        raise _Fatal("out of luck")

    pods._on_change = fatal
    pods.start()
    try:
        wait_until(lambda: pods.stats.ended != "")
        [health] = [h for h in cluster.watch_health() if h.kind == "Pod"]
        assert not health.up and health.errors == 1
        assert health.last_error == "one Pod: the list/watch thread ended (_Fatal: out of luck)"
    finally:
        pods.stop()


def test_an_accepted_watch_ends_a_failure_even_when_no_event_follows(emulator, client):
    """A kind without objects after watch errors: the open watch says the API works, not its last event."""
    # a backoff long enough to be seen: between a failed watch and the next round's one-item list (which answers,
    # so the reflector is healthy again) the reflector is failing only for the pause
    r = Reflector(client, "apps/v1", "Deployment", trim=trim, watch_timeout=300, relist_after=100,
                  backoff=Backoff(initial=0.4, maximum=0.5))
    r.start()
    try:
        assert r.synced.wait(5)
        emulator.watch_error = 500
        emulator.drop_watches()
        wait_until(lambda: r.stats.errors >= 2 and r.stats.failing_since is not None)
        lists = r.stats.lists
        emulator.watch_error = None
        wait_until(lambda: emulator.watching["deployments"] == 1)
        wait_until(lambda: r.stats.failing_since is None)
        assert r.stats.down_for(1e12) == 0.0 and r.stats.lists == lists  # resumed, not listed again
    finally:
        r.stop()


def test_an_optional_kind_not_granted_is_said_once_and_again_only_after_it_was_granted(emulator, client, caplog):
    """Nodes without RBAC: one warning, not one per retry; granted, then refused again, that is news again."""
    import logging

    emulator.forbidden.add(("nodes", None))
    r = Reflector(client, "v1", "Node", optional=True, watch_timeout=300,
                  sleep=lambda seconds: r._stop.wait(0.05))  # retries at once, whatever the delay asked
    with caplog.at_level(logging.DEBUG, logger="exporter.sources.kube.watch"):
        r.start()
        try:
            assert eventually(lambda: r.stats.errors >= 4)
            said = [rec for rec in caplog.records if "not granted" in rec.getMessage()]
            assert [rec.levelno for rec in said[:4]] == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.DEBUG]
            emulator.forbidden.discard(("nodes", None))
            assert eventually(r.synced.is_set)
            emulator.forbidden.add(("nodes", None))
            emulator.drop_watches()
            assert eventually(lambda: sum(rec.levelno == logging.WARNING and "not granted" in rec.getMessage()
                                          for rec in caplog.records) == 2)
        finally:
            r.stop()
