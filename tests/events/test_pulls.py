"""Each event occurrence counted once, across replays and count increments; ignored namespaces ignored."""

from exporter.events.pulls import PullTracker


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
