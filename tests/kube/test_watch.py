"""The reflector keeps a trimmed mirror current through drops, 410s and outages (emulator over HTTP)."""

import pytest

from exporter.sources.kube.clusters import load_clusters
from exporter.sources.kube.objects import trim
from exporter.sources.kube.watch import Backoff, Reflector
from tests.conftest import make_pod
from tests.support import eventually


def wait_until(predicate, timeout=10.0):
    assert eventually(predicate, timeout), "condition not reached in time"


def names(reflector):
    return sorted(p.meta.name for p in reflector.snapshot().values())


@pytest.fixture
def reflector(emulator, kubeconfig):
    [client] = load_clusters(kubeconfig)
    r = Reflector(client, "v1", "Pod", trim=trim, watch_timeout=2, backoff=Backoff(initial=0.05, maximum=0.2))
    yield r
    r.stop()


def test_add_change_delete_reach_the_snapshot(emulator, reflector):
    emulator.create(make_pod("web-1"))
    reflector.start()
    assert reflector.synced.wait(5)
    assert names(reflector) == ["web-1"]
    emulator.create(make_pod("web-2"))
    wait_until(lambda: names(reflector) == ["web-1", "web-2"])
    changed = dict(emulator.get("Pod", "default", "web-1"))
    changed["spec"] = {"containers": [{"name": "main", "image": "nginx:1.28"}]}
    emulator.update(changed)
    wait_until(lambda: any(c.image == "nginx:1.28" for p in reflector.snapshot().values() for c in p.containers))
    emulator.delete("Pod", "default", "web-1")
    wait_until(lambda: names(reflector) == ["web-2"])


def test_snapshot_is_not_mutated_after_it_is_returned(emulator, reflector):
    emulator.create(make_pod("a"))
    reflector.start()
    reflector.synced.wait(5)
    before = reflector.snapshot()
    emulator.create(make_pod("b"))
    wait_until(lambda: len(reflector.snapshot()) == 2)
    assert len(before) == 1


def test_dropped_watch_resumes_without_losing_or_repeating_changes(emulator, reflector):
    reflector.start()
    reflector.synced.wait(5)
    lists_before = reflector.stats.lists
    emulator.drop_watches()
    emulator.create(make_pod("during-drop"))
    wait_until(lambda: names(reflector) == ["during-drop"])
    emulator.drop_watches()
    emulator.create(make_pod("after-drop"))
    wait_until(lambda: names(reflector) == ["after-drop", "during-drop"])
    assert reflector.stats.lists == lists_before  # resumed from its version, no re-list needed


def test_expired_version_forces_a_relist(emulator, reflector):
    reflector.start()
    reflector.synced.wait(5)
    emulator.stop()  # the watch breaks; while it is down, history is compacted past our version
    emulator.create(make_pod("created-while-away"))
    emulator.compact()
    emulator.start()
    wait_until(lambda: names(reflector) == ["created-while-away"])
    assert reflector.stats.relists_after_expiry >= 1 and reflector.stats.lists >= 2


def test_outage_backs_off_and_recovers(emulator, reflector):
    reflector.start()
    reflector.synced.wait(5)
    emulator.stop()
    wait_until(lambda: reflector.stats.errors >= 2)
    emulator.start()
    emulator.create(make_pod("back"))
    wait_until(lambda: names(reflector) == ["back"])
    assert "cannot reach the API server" in reflector.stats.last_error


def test_forbidden_resource_keeps_retrying_without_spinning(emulator, kubeconfig):
    emulator.forbid("pods")
    [client] = load_clusters(kubeconfig)
    delays = []
    r = Reflector(client, "v1", "Pod", sleep=lambda s: delays.append(s) or False, backoff=Backoff(initial=1, maximum=8))
    r.run(max_iterations=5)
    assert not r.synced.is_set() and r.stats.errors == 5
    assert delays[-1] >= 4  # exponential: 1, 2, 4, 8, 8 (jittered down to half at most)


def test_one_bad_object_is_skipped_and_the_rest_kept(emulator, kubeconfig):
    emulator.create(make_pod("good"))
    emulator.create(make_pod("bad"))
    [client] = load_clusters(kubeconfig)

    def picky(obj):
        if obj["metadata"]["name"] == "bad":
            raise ValueError("cannot trim")
        return trim(obj)

    r = Reflector(client, "v1", "Pod", trim=picky, watch_timeout=1)
    r.start()
    try:
        assert r.synced.wait(5)
        assert names(r) == ["good"]
        assert r.stats.skipped == 1  # counted for kube_image_watch_skipped_objects_total
    finally:
        r.stop()


# -- an API server that forgets: restored from a backup, its resourceVersion goes back --

def _restored(emulator, reflector):
    """Run the reflector; take a backup; change the cluster; restore the backup while the API is down."""
    emulator.create(make_pod("kept"))
    emulator.create(make_pod("deleted-after-backup"))
    reflector.start()
    assert reflector.synced.wait(5)
    backup = emulator.backup()
    emulator.delete("Pod", "default", "deleted-after-backup")
    for i in range(5):  # the reflector's version moves well past the backup's
        emulator.create(make_pod(f"gone-after-restore-{i}"))
    wait_until(lambda: len(names(reflector)) == 6)
    port = emulator.port
    emulator.stop()
    emulator.restore(backup)
    emulator.start(port)
    emulator.create(make_pod("created-after-restore"))


@pytest.mark.parametrize("future_versions", ["reject", "serve"])
def test_restored_api_server_is_listed_again(emulator, reflector, future_versions):
    # reject: the apiserver's answer to a watch from a version it never had (504 Too large resource version);
    # serve: a server that accepts it silently, so only asking it for its version shows it forgot
    emulator.future_versions = future_versions
    _restored(emulator, reflector)
    wait_until(lambda: names(reflector) == ["created-after-restore", "deleted-after-backup", "kept"])
    assert reflector.stats.lists >= 2 and reflector.stats.failing_since is None


def test_watch_from_a_newer_version_than_the_server_has_is_a_relist(emulator, kubeconfig):
    from exporter.sources.kube.api import Expired

    [client] = load_clusters(kubeconfig)
    with pytest.raises(Expired, match="504 Too large resource version"):
        client.watch("v1", "Pod", str(emulator.resource_version + 100))


def test_bookmark_going_back_in_version_is_a_relist(emulator, reflector):
    emulator.bookmark_interval = 0.2
    emulator.future_versions = "serve"
    emulator.create(make_pod("kept"))
    reflector.start()
    assert reflector.synced.wait(5)
    backup = emulator.backup()
    emulator.create(make_pod("phantom"))
    wait_until(lambda: names(reflector) == ["kept", "phantom"])
    emulator.restore(backup, restart=False)  # under an open watch: only the bookmarks tell
    wait_until(lambda: names(reflector) == ["kept"])
    assert reflector.stats.relists_after_reset >= 1


def test_repeated_watch_errors_of_any_kind_lead_to_a_relist(emulator, reflector):
    emulator.create(make_pod("deleted-while-watches-fail"))
    emulator.create(make_pod("kept"))
    reflector.start()
    assert reflector.synced.wait(5)
    emulator.watch_error = 500  # lists work, watches fail: deletions are seen only by listing again
    emulator.drop_watches()
    emulator.delete("Pod", "default", "deleted-while-watches-fail")
    wait_until(lambda: names(reflector) == ["kept"])
    assert reflector.stats.relists_after_errors >= 1 and reflector.stats.errors >= 3


def test_a_quiet_watch_dropped_again_and_again_is_resumed_not_listed_again(emulator, kubeconfig):
    """A load balancer closing idle connections: each drop comes after the watch stayed open a while, so it
    does not count towards a relist (the clock here moves a minute at each reading)."""
    import itertools

    minutes = itertools.count(step=60)
    [client] = load_clusters(kubeconfig)
    r = Reflector(client, "v1", "Pod", trim=trim, backoff=Backoff(initial=0.05, maximum=0.1),
                  clock=lambda: float(next(minutes)))
    r.start()
    try:
        assert r.synced.wait(5)
        for _ in range(5):
            wait_until(lambda: emulator.open_watches == 1)
            errors = r.stats.errors
            emulator.drop_watches()
            wait_until(lambda: r.stats.errors > errors)
        wait_until(lambda: emulator.open_watches == 1)
        assert r.stats.lists == 1 and r.stats.relists_after_errors == 0
    finally:
        r.stop()


def test_a_watch_that_ends_without_a_word_asks_the_server_its_version(emulator, kubeconfig):
    """No bookmarks and no restart: the server forgot under an open watch and stays silent. When that watch
    ends at its timeout without any event, the reflector asks the version and lists again."""
    emulator.future_versions = "serve"
    emulator.create(make_pod("kept"))
    [client] = load_clusters(kubeconfig)
    r = Reflector(client, "v1", "Pod", trim=trim, watch_timeout=1)
    r.start()
    try:
        assert r.synced.wait(5)
        backup = emulator.backup()
        emulator.create(make_pod("phantom"))
        wait_until(lambda: names(r) == ["kept", "phantom"])
        emulator.restore(backup, restart=False)
        wait_until(lambda: names(r) == ["kept"])
        assert r.stats.relists_after_reset == 1 and r.stats.errors == 0
    finally:
        r.stop()


def test_an_optional_kind_not_installed_is_no_failure_and_is_found_once_its_crd_is(emulator, kubeconfig, caplog):
    """A CRD not installed (Kyverno's, policy-controller's): held as empty, synced, no error counted, said once at
    info level; looked up again after the wait, so a CRD installed later is read."""
    import logging

    from tests.emulator.server import Resource

    [client] = load_clusters(kubeconfig)
    delays = []
    r = Reflector(client, "kyverno.io/v1", "ClusterPolicy", sleep=lambda s: delays.append(s) or False,
                  optional=True, watch_timeout=1)
    with caplog.at_level(logging.INFO, logger="exporter.sources.kube.watch"):
        r.run(max_iterations=3)
    assert r.synced.is_set() and r.snapshot() == {} and r.stats.not_installed
    assert (r.stats.errors, r.stats.failing_since) == (0, None) and delays == [300.0] * 3
    said = [rec for rec in caplog.records if "not installed" in rec.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    emulator.register(Resource("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", namespaced=False))
    emulator.create({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "signed"}})
    r.run(max_iterations=1)  # lists it now; its watch ends at the timeout
    assert [obj["metadata"]["name"] for obj in r.snapshot().values()] == ["signed"] and not r.stats.not_installed


def test_a_required_kind_not_served_is_a_failure(emulator, kubeconfig):
    [client] = load_clusters(kubeconfig)
    r = Reflector(client, "kyverno.io/v1", "ClusterPolicy", sleep=lambda s: False, backoff=Backoff(initial=0.01))
    r.run(max_iterations=2)
    assert r.stats.errors == 2 and not r.synced.is_set() and not r.stats.not_installed
