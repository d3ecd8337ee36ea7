"""The shared result cache with a real redis-server and a real registry behind a counting front.

Several `Checker`s stand for several exporters: what one checked, the others answer without a manifest
request; credentials never answer for each other; a lost Redis costs nothing but the sharing.
"""

import logging
import threading
import time

import orjson
import pytest

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker, CheckResult
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.settings import from_options
from exporter.sources.registry.shared import (
    Breaker,
    SharedCache,
    SharedCacheError,
    check_url,
    credentials_key,
    encode,
    read_password,
)
from exporter.sources.registry.shared import flight
from tests.support import counting, eventually
from tests.support import redis as real_redis
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not (real.available() and real_redis.available()),
                                reason="needs docker-registry and redis-server (scripts/setup installs them)")


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    reg = real.Registry(tmp_path_factory.mktemp("registry-basic"), "basic")
    for i in range(6):
        reg.push_image(f"team/app{i}", "1.0")
    reg.index_digest, _ = reg.push_index("team/multi", "1")
    yield reg
    reg.stop()


@pytest.fixture
def front(basic_registry):
    f = counting.CountingFront(basic_registry.url)
    yield f
    f.stop()


@pytest.fixture
def store(tmp_path):
    server = real_redis.RedisServer(tmp_path)
    yield server
    server.stop()


def keyring(host, password="wonderland"):
    return Keyring.of([Credential(host, "alice", password, source="secret shop/regcred")])


def exporter_checker(front, store, **options):
    shared = SharedCache(store.url, **options)
    return Checker(from_options(insecure=[front.host]), shared=shared)


def images(front, n=6):
    return [f"{front.host}/team/app{i}:1.0" for i in range(n)]


def test_second_exporter_sends_no_manifest_request_for_what_the_first_checked(front, store):
    creds = keyring(front.host)
    first, second = exporter_checker(front, store), exporter_checker(front, store)
    one = first.check_many((image, creds) for image in images(front))
    assert front.total() == 6 and {r.status for r in one.values()} == {Status.AVAILABLE}
    two = second.check_many((image, creds) for image in images(front) + [f"{front.host}/team/app0:nope"])
    assert front.total() == 7  # only the image the first never checked
    assert {k: (r.status, r.digest, r.checked_at) for k, r in two.items() if k in one} == \
           {k: (r.status, r.digest, r.checked_at) for k, r in one.items()}
    assert second.shared.up and second.shared.counts.hits == 6
    second.check_many((image, creds) for image in images(front))
    assert front.total() == 7  # kept in the second's local cache too: the store is not asked again
    # MGET, the locks, MGET again for what it locked (a peer may have just published), then its publication
    assert second.shared.counts.round_trips == 4


def test_a_result_with_one_credential_set_never_answers_for_another(front, store):
    good, wrong = keyring(front.host), keyring(front.host, "not-the-password")
    image = f"{front.host}/team/app1:1.0"
    right_cluster, wrong_cluster = exporter_checker(front, store), exporter_checker(front, store)
    [available] = right_cluster.check_many([(image, good)]).values()
    [refused] = wrong_cluster.check_many([(image, wrong)]).values()
    assert (available.status, refused.status) == (Status.AVAILABLE, Status.UNAUTHORIZED)
    assert front.manifests["team/app1:1.0"] == 2  # the second asked with its own credentials
    anonymous = exporter_checker(front, store).check_many([(image, Keyring())])
    assert [r.status for r in anonymous.values()] == [Status.UNAUTHORIZED]
    keys = [k.decode() for k in store.client().keys("kie:1:r:*")]
    assert len(keys) == 3 and not any("wonderland" in k or "alice" in k for k in keys)
    assert len({credentials_key(good.fingerprint), credentials_key(wrong.fingerprint)}) == 2


def test_stored_result_carries_status_digest_media_type_and_expiry(front, store, basic_registry):
    creds = keyring(front.host)
    checker = exporter_checker(front, store)
    [result] = checker.check_many([(f"{front.host}/team/multi:1", creds)]).values()
    [key] = store.client().keys("kie:1:r:*")
    record = orjson.loads(store.client().get(key))
    assert record["status"] == "available" and record["digest"] == basic_registry.index_digest
    assert record["media_type"] == "application/vnd.oci.image.index.v1+json"
    ttl = record["expires"] - record["checked_at"]
    assert 0.9 * 1800 <= ttl <= 1.1 * 1800  # the available status's lifetime, jittered
    assert store.client().pttl(key) > ttl * 1000  # kept a while past it, for peers re-checking it
    assert not store.client().keys("kie:1:l:*")  # locks released after the round


def test_restarted_exporter_answers_from_the_store_without_rechecking(front, store):
    creds = keyring(front.host)
    exporter_checker(front, store).check_many((image, creds) for image in images(front))
    sent = front.total()
    called = []
    restarted = exporter_checker(front, store)
    results = restarted.check_many(((image, creds) for image in images(front)), before_round=lambda: called.append(1))
    assert front.total() == sent and len(results) == 6
    assert called == []  # nothing to check: no intermediate publication either


def test_index_children_are_shared_by_digest(front, store, basic_registry):
    creds = keyring(front.host)
    index = f"{front.host}/team/multi@{basic_registry.index_digest}"
    first = exporter_checker(front, store).index_children([(index, creds)])
    sent = front.total()
    second = exporter_checker(front, store).index_children([(index, creds)])
    assert second == first and len(first[index]) == 2 and front.total() == sent


def test_platforms_read_by_one_exporter_are_shared_by_digest(front, store, basic_registry):
    """An index's platforms and a single manifest's (its config blob read once) reach the fleet."""
    creds = keyring(front.host)
    single = f"{front.host}/team/app0@{basic_registry.push_image('team/app0', '1.0')}"
    index = f"{front.host}/team/multi@{basic_registry.index_digest}"
    first = exporter_checker(front, store).manifests([(index, creds), (single, creds)])
    assert {image: m.platforms for image, m in first.items()} == {index: {"linux/amd64", "linux/arm64"},
                                                                  single: {"linux/amd64"}}
    sent = front.total()
    second = exporter_checker(front, store).manifests([(index, creds), (single, creds)])
    assert second == first and front.total() == sent


def test_concurrent_exporters_check_each_image_once(front, store):
    creds = keyring(front.host)
    checkers = [exporter_checker(front, store) for _ in range(4)]
    results = [None] * 4

    def run(i):
        results[i] = checkers[i].check_many((image, creds) for image in images(front))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None and {x.status for x in r.values()} == {Status.AVAILABLE} for r in results)
    assert front.total() == 6  # single-flight: every image once for the four
    assert all(front.manifests[f"team/app{i}:1.0"] == 1 for i in range(6))


def test_waits_for_the_lock_holder_and_checks_itself_when_the_lock_expires(front, store):
    creds = keyring(front.host)
    image = f"{front.host}/team/app2:1.0"
    holder = SharedCache(store.url, lock_ttl=0.6)
    assert holder.locks.claim([(image, creds.fingerprint)]) == {(image, creds.fingerprint)}  # then it dies
    waiter = exporter_checker(front, store, lock_ttl=5)
    [result] = waiter.check_many([(image, creds)]).values()
    assert result.status == Status.AVAILABLE and front.total() == 1
    assert waiter.shared.counts.waited >= 1  # it waited for the lock to expire before checking


def test_answers_with_the_stale_result_while_another_rechecks(front, store):
    creds = keyring(front.host)
    key = (f"{front.host}/team/app3:1.0", creds.fingerprint)
    peer = SharedCache(store.url)
    old = CheckResult(Status.ABSENT, None, front.host, "old", time.time() - 7200)
    flight.publish(peer, {key: (encode(old, old.checked_at + 600), 600)})  # expired an hour ago, still in the store
    assert peer.locks.claim([key]) == {key}  # the peer re-checks it now
    [result] = exporter_checker(front, store).check_many([(key[0], creds)]).values()
    assert (result.status, result.detail) == (Status.ABSENT, "old") and front.total() == 0


def test_redis_killed_then_back(front, store, caplog):
    creds = keyring(front.host)
    checker = exporter_checker(front, store, timeout=0.2)
    checker.shared.breaker = Breaker(cooldown=0.2, max_cooldown=0.2)
    checker.check_many((image, creds) for image in images(front, 2))
    assert checker.shared.probe()
    store.kill()
    with caplog.at_level(logging.INFO, logger="exporter.sources.registry.shared"):
        results = checker.check_many((image, creds) for image in images(front, 4))  # two new, checked locally
        assert {r.status for r in results.values()} == {Status.AVAILABLE} and front.total() == 4
        assert not checker.shared.up and not checker.shared.probe()
        assert checker.shared.breaker.state == "open"
        store.start()
        assert eventually(checker.shared.probe, timeout=5)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in messages) == 1 and any("answers again" in m for m in messages)
    assert not any(r.exc_info for r in caplog.records)
    # the store came back empty: what is checked now is shared again
    checker.check_many([(images(front, 5)[4], creds)])
    exporter_checker(front, store).check_many([(images(front, 5)[4], creds)])
    assert front.total() == 5


def test_unreachable_store_costs_one_timeout_then_nothing(front, tmp_path):
    creds = keyring(front.host)
    checker = Checker(from_options(insecure=[front.host]),
                      shared=SharedCache("redis://127.0.0.1:1/0", timeout=0.2))
    results = checker.check_many((image, creds) for image in images(front))
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert checker.shared.counts.round_trips == 1  # the breaker opened: no lock, no publication attempted
    assert not checker.shared.up


def test_password_from_url_file_or_environment_never_shown(tmp_path, caplog):
    server = real_redis.RedisServer(tmp_path, password="s3cret-pass")
    try:
        url = f"redis://:s3cret-pass@127.0.0.1:{server.port}/0"
        assert SharedCache(url).probe()
        password_file = tmp_path / "password"
        password_file.write_text("s3cret-pass\n")
        assert SharedCache(server.url, password=read_password(str(password_file))).probe()
        assert SharedCache(server.url, password=read_password(None, {"KUBE_IMAGE_EXPORTER_CACHE_PASSWORD": "s3cret-pass"})).probe()
        with caplog.at_level(logging.INFO):
            wrong = SharedCache(f"redis://:wrong-pass@127.0.0.1:{server.port}/0")
            assert not wrong.probe()
        assert "wrong-pass" not in caplog.text and f"127.0.0.1:{server.port}" in caplog.text
        assert wrong.url == f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:6379/0", "expected redis://HOST:PORT/DB"),
    ("redis://:pw@127.0.0.1:6379/db", "the database must be a number"),
    ("redis://:pw@127.0.0.1:99999/0", "not a valid URL"),
    ("redis:///0", "no host"),
])
def test_bad_cache_urls_are_named_without_their_password(url, message):
    with pytest.raises(SharedCacheError) as err:
        check_url(url)
    assert message in str(err.value) and ":pw@" not in str(err.value)


def test_breaker_opens_tries_once_after_the_pause_and_closes():
    now = [0.0]
    breaker = Breaker(cooldown=1.0, max_cooldown=4.0, clock=lambda: now[0])
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 1.0
    assert breaker.state == "half-open" and breaker.allow()
    breaker.failed()  # the trial failed: a longer pause
    now[0] = 2.5
    assert breaker.state == "open"
    now[0] = 3.0
    assert breaker.state == "half-open"
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.cooldown == 1.0


def test_slow_store_is_given_up_on_after_its_timeout(front, store):
    creds = keyring(front.host)
    checker = exporter_checker(front, store, timeout=0.2)
    store.client().client_pause(3000)  # every command of every client waits 3 s: a store that hangs
    results = checker.check_many((image, creds) for image in images(front, 3))
    assert {r.status for r in results.values()} == {Status.AVAILABLE} and front.total() == 3
    assert checker.shared.counts.failures == 1 and checker.shared.counts.round_trips == 1  # then the breaker held
    assert not checker.shared.up


def test_only_the_credentials_that_apply_name_a_shared_check(front, store):
    image = f"{front.host}/team/app4:1.0"
    plain = keyring(front.host)
    more = Keyring.of(plain.credentials + (Credential("quay.io", "bob", "other", source="secret x/quay"),))
    assert plain.fingerprint != more.fingerprint  # two clusters' pods hold different secrets...
    exporter_checker(front, store).check_many([(image, plain)])
    [result] = exporter_checker(front, store).check_many([(image, more)]).values()
    assert result.status == Status.AVAILABLE and front.total() == 1  # ...but the same one applies to this image


def test_closing_stops_a_wait_for_other_exporters(front, store):
    creds = keyring(front.host)
    image = f"{front.host}/team/app5:1.0"
    SharedCache(store.url, lock_ttl=60).locks.claim([(image, creds.fingerprint)])  # a peer checks it for a long time
    waiter = exporter_checker(front, store)
    answers = []
    thread = threading.Thread(target=lambda: answers.append(waiter.check_many([(image, creds)])))
    thread.start()
    assert eventually(lambda: waiter.shared.counts.waited >= 1)
    waiter.shared.close()  # SIGTERM: the process leaves without waiting out the peer
    thread.join(timeout=10)
    assert not thread.is_alive() and answers == [{}] and front.total() == 0


def test_a_result_published_between_the_lookup_and_the_lock_is_not_checked_again(store):
    key = ("registry.example.com/team/app:1", "anonymous")
    me, peer = SharedCache(store.url), SharedCache(store.url)
    result = CheckResult(Status.AVAILABLE, "sha256:" + "1" * 64, "registry.example.com", "", time.time())
    first_lookup = me.results.lookup

    def lookup_then_peer_finishes(keys):
        answer = first_lookup(keys)
        me.results.lookup = first_lookup
        flight.publish(peer, {key: (encode(result, result.checked_at + 600), 600)}, release=[key])  # its round ends now
        return answer

    me.results.lookup = lookup_then_peer_finishes
    plan = flight.plan(me, [key])
    assert plan.mine == [] and plan.waiting == [] and plan.found[key]["digest"] == result.digest
    assert not store.client().keys("kie:1:l:*")  # the lock taken meanwhile is given back


# -- first-seen times of the status page's problems --

ONE = ("kube_image_missing", "one", "shop", "Deployment", "web", "web", "container", "reg/shop/web:1", "")
TWO = ("kube_image_missing", "one", "shop", "Deployment", "api", "api", "container", "reg/shop/api:1", "shop")
LIST = ("kube_image_expected_missing", "release-1.4", "reg/shop/web:1", "")


def test_first_seen_times_are_stored_per_scope_with_a_ttl_and_read_back(store):
    cache = SharedCache(store.url, first_seen_ttl=3600)
    assert cache.first_seen.load(["0/1:one"]) == {}
    assert cache.first_seen.save(["0/1:one"], {"0/1:one": {ONE: 100.5, LIST: 120.0}, "0/1:two": {TWO: 99.0}}, {})
    assert SharedCache(store.url).first_seen.load(["0/1:one"]) == {ONE: 100.5, LIST: 120.0}  # another process
    assert cache.first_seen.load(["0/1:one", "0/1:two", "0/1:three"]) == {ONE: 100.5, LIST: 120.0, TWO: 99.0}
    raw = store.client()
    assert 0 < raw.ttl("kie:1:f:0/1:one") <= 3600 and 0 < raw.ttl("kie:1:f:0/1:two") <= 3600
    assert raw.hget("kie:1:f:0/1:one", orjson.dumps(list(ONE))) == b"100.5"
    # a forgotten problem is deleted; the last one of a scope takes the scope with it
    assert cache.first_seen.save(["0/1:one"], {}, {"0/1:two": [TWO], "0/1:one": [LIST]})
    assert cache.first_seen.load(["0/1:one", "0/1:two"]) == {ONE: 100.5} and not raw.exists("kie:1:f:0/1:two")
    # nothing changed and the TTL was just set: no round trip
    trips = cache.counts.round_trips
    assert cache.first_seen.save(["0/1:one"], {}, {}) and cache.counts.round_trips == trips
    # a field written in another form is left out, not an error
    raw.hset("kie:1:f:0/1:one", mapping={b"not json": b"1", orjson.dumps(["a"]): b"soon", orjson.dumps([1]): b"2"})
    assert cache.first_seen.load(["0/1:one"]) == {ONE: 100.5}


def test_first_seen_with_the_breaker_open_is_not_known_and_never_raises(store, caplog):
    now = [0.0]
    cache = SharedCache(store.url, breaker=Breaker(cooldown=10.0, clock=lambda: now[0]))
    assert cache.first_seen.save(["0/1:one"], {"0/1:one": {ONE: 100.0}}, {})
    cache.breaker.failed()  # as after a failed call
    with caplog.at_level(logging.INFO, logger="exporter.sources.registry.shared"):
        assert cache.first_seen.load(["0/1:one"]) is None  # not known, unlike "nothing stored" ({})
        assert cache.first_seen.save(["0/1:one"], {"0/1:one": {TWO: 200.0}}, {"0/1:one": [ONE]}) is False
    assert cache.counts.round_trips == 1 and not caplog.records  # refused before reaching Redis, quietly
    now[0] = 10.0  # half-open: the trial goes through and closes the breaker
    assert cache.first_seen.load(["0/1:one"]) == {ONE: 100.0} and cache.breaker.state == "closed"


def test_first_seen_with_redis_killed_is_not_known_logged_once_without_traceback(store, caplog):
    cache = SharedCache(store.url, timeout=0.2)
    store.kill()
    with caplog.at_level(logging.INFO, logger="exporter.sources.registry.shared"):
        assert cache.first_seen.save(["0/1:one"], {"0/1:one": {ONE: 100.0}}, {}) is False
        assert cache.first_seen.load(["0/1:one"]) is None
    assert cache.breaker.state == "open" and not cache.up
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
    assert not any(r.exc_info for r in caplog.records)


def test_an_expired_lock_taken_by_a_peer_is_neither_extended_nor_released_by_its_first_holder(store, caplog):
    """Two exporters in two pods have the same process id (1): only a token per acquisition tells their locks apart.
    The first holder's lock expires (a paused process), a peer claims the image; the first holder's extension and
    its release at publish leave the peer's lock as it is, and it learns that it lost the lock."""
    first, peer = SharedCache(store.url, lock_ttl=0.3), SharedCache(store.url, lock_ttl=30)
    key = ("reg.example/team/app:1", "fingerprint")
    assert first.locks.claim([key]) == {key}
    assert first.locks.extend([key]) == 1  # still its own
    time.sleep(0.5)  # expired
    assert peer.locks.claim([key]) == {key}
    with caplog.at_level(logging.WARNING):
        assert first.locks.extend([key]) == 0
        result = CheckResult(Status.AVAILABLE, "sha256:" + "0" * 64, "reg.example", "", checked_at=time.time())
        flight.publish(first, {key: (encode(result, time.time() + 60), 60.0)}, release=[key])
    assert peer.locks.locked([key]) == {key}  # the peer's lock stands, with its own lifetime
    assert first.counts.lost_locks == 2 and peer.counts.lost_locks == 0
    assert sum("taken by another exporter" in r.getMessage() for r in caplog.records) == 1  # said once
    flight.publish(peer, {}, release=[key])
    assert peer.locks.locked([key]) == set() and peer.counts.lost_locks == 0


def test_the_lock_keeper_survives_a_failure_and_keeps_extending(store, caplog, monkeypatch):
    """A bug in one extension (not a store outage: that is the breaker's) is logged once, counted, and the next
    beat extends again: one failure does not let the round's locks lapse while it still checks."""
    cache = SharedCache(store.url, lock_ttl=1.5)  # a beat every 0.5 s
    key = ("reg.example/team/app:1", "fingerprint")
    assert cache.locks.claim([key]) == {key}
    real_extend, calls = cache.locks.extend, []

    def flaky(keys):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_extend(keys)

    monkeypatch.setattr(cache.locks, "extend", flaky)
    with caplog.at_level(logging.ERROR), cache.locks.keeping([key]):
        assert eventually(lambda: len(calls) >= 4, timeout=10)
        assert cache.locks.locked([key]) == {key}  # extended past its 1.5 s lifetime, after the failure
    assert cache.counts.keeper_failures == 1
    assert sum("extending a round's locks failed" in r.getMessage() for r in caplog.records) == 1
