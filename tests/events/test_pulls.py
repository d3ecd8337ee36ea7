"""Each event occurrence counted once, across replays and count increments; ignored namespaces ignored."""

import pytest

from exporter.sources.events.pulls import PullTracker


def event(uid, reason, message, count=1, namespace="shop", node="node-1"):
    return {"metadata": {"uid": uid, "namespace": namespace}, "reason": reason, "message": message, "count": count,
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "web-1"}, "source": {"host": node}}


PULLED = 'Successfully pulled image "nginx:1.27" in 2.5s (2.5s including waiting). Image size: 1000 bytes.'
FAILED = 'Failed to pull image "quay.io/a/b:1": not found'


def test_last_pull_and_histogram():
    tracker = PullTracker()
    tracker.apply("ADDED", event("e1", "Pulled", PULLED))
    last = tracker.last_pull[("shop", "node-1", "docker.io/library/nginx:1.27")]
    assert (last.seconds, last.size_bytes) == (2.5, 1000)
    histogram = tracker.histograms["docker.io"]
    assert histogram.count == 1 and histogram.sum == 2.5 and histogram.buckets[3] == 1  # <= 5 s


def test_replays_count_once_and_count_increments_count_the_difference():
    tracker = PullTracker()
    tracker.apply("ADDED", event("f1", "Failed", FAILED, count=1))
    tracker.apply("ADDED", event("f1", "Failed", FAILED, count=1))  # re-list replay
    tracker.apply("MODIFIED", event("f1", "Failed", FAILED, count=3))
    tracker.apply("ADDED", event("f1", "Failed", FAILED, count=3))  # watch restart replay
    assert tracker.failures[("quay.io", "not_found")] == 3
    tracker.apply("DELETED", event("f1", "Failed", FAILED, count=3))
    assert tracker.failures[("quay.io", "not_found")] == 3


def test_ignored_namespaces_and_other_reasons():
    tracker = PullTracker(keep_namespace=lambda ns: ns != "kube-system")
    tracker.apply("ADDED", event("a", "Pulled", PULLED, namespace="kube-system"))
    tracker.apply("ADDED", event("b", "Scheduled", "Successfully assigned"))
    tracker.apply("ADDED", event("c", "Pulled", "garbage"))
    assert tracker.last_pull == {} and tracker.ignored == 1


def test_backoff_counts_as_a_failure():
    tracker = PullTracker()
    tracker.apply("ADDED", event("b1", "BackOff", 'Back-off pulling image "r.example.com/x:1"', count=4))
    assert tracker.failures[("r.example.com", "back_off")] == 4


def pulled(uid, image, node, namespace="shop", seconds=2.5):
    message = f'Successfully pulled image "{image}" in {seconds}s ({seconds}s including waiting). Image size: 1000 bytes.'
    return event(uid, "Pulled", message, namespace=namespace, node=node)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_pull_is_kept_while_a_pod_runs_its_image_on_its_node_and_for_the_retention_after():
    clock = Clock()
    tracker = PullTracker(retention=600, clock=clock)
    tracker.apply("ADDED", pulled("e1", "nginx:1.27", "node-1"))
    tracker.apply("ADDED", pulled("e2", "redis:7", "node-2"))
    running = [("shop", "node-1", "nginx:1.27")]  # as the pod spec writes it; the event's image is normalized
    clock.now = 601
    assert tracker.forget_unused(running) == 1  # redis left node-2 more than the retention ago
    assert list(tracker.last_pull) == [("shop", "node-1", "docker.io/library/nginx:1.27")]
    clock.now = 1200
    assert tracker.forget_unused([("shop", "node-3", "nginx:1.27")]) == 1  # its node left: gone too
    assert tracker.last_pull == {}


def test_at_most_max_pulls_are_kept_the_most_recent():
    clock = Clock()
    tracker = PullTracker(max_pulls=3, clock=clock)
    for i in range(5):
        clock.now = i
        tracker.apply("ADDED", pulled(f"e{i}", f"app{i}:1", "node-1"))
    tracker.apply("ADDED", pulled("again", "app2:1", "node-1"))  # observed again: now the most recent
    assert [key[2] for key in tracker.last_pull] == ["docker.io/library/app3:1", "docker.io/library/app4:1",
                                                    "docker.io/library/app2:1"]


@pytest.mark.long
def test_churning_10000_distinct_pulls_keeps_series_and_memory_bounded():
    """Pods come and go, each with a new image on one of 20 nodes; events expire (DELETED) an hour later, as
    the API's event TTL does. The series and the memory follow the 100 pods running, not the 10,000 pulls."""
    import tracemalloc

    from exporter.model.health import Health, LastPull
    from exporter.model.images import parse
    from exporter.views import series

    clock = Clock()
    tracker = PullTracker(retention=600, clock=clock)
    running: list[tuple[str, str, str]] = []
    expiring: list[tuple[float, dict]] = []
    sizes = {}
    tracemalloc.start()
    try:
        for i in range(10_000):
            clock.now = i * 1.0  # one pull a second
            image, node = f"registry.example.com/team/app-{i}:1", f"node-{i % 20}"
            running = (running + [("shop", node, image)])[-100:]  # 100 pods run at any time
            raw = pulled(f"uid-{i}", image, node)
            tracker.apply("ADDED", raw)
            expiring.append((clock.now + 3600, raw))
            while expiring and expiring[0][0] <= clock.now:
                tracker.apply("DELETED", expiring.pop(0)[1])
            if i % 60 == 0:  # a cycle a minute
                tracker.forget_unused(running)
            if i in (4_000, 9_999):  # after the first hour: events expire as fast as they come
                parse.cache_clear()  # the reference parser's own cache is a fixed 65,536 entries: not the tracker's
                sizes[i] = tracemalloc.get_traced_memory()[0]
        last, _, _ = tracker.snapshot()
        rows = series.pulls(Health(pulls=tuple(LastPull("one", namespace, node, image, pull.seconds, pull.size_bytes)
                                               for (namespace, node, image), pull in last.items())))
    finally:
        tracemalloc.stop()
    # at most the pods running plus the pulls of the last retention (600 s at one a second)
    assert len(rows["kube_image_pull_duration_seconds"]) <= 100 + 600 + 60
    assert len(tracker.last_pull) <= 100 + 600 + 60
    assert sizes[9_999] < sizes[4_000] * 1.1, sizes  # flat: nothing grows with the pulls seen
