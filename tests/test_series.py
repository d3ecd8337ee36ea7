"""Rows describing the sources: watch health, expected lists and pull secrets, from plain health figures."""

from exporter.model.health import Health, Histogram, LastPull, ListHealth, WatchHealth
from exporter.snapshot.join import join
from exporter.views import series


def test_a_watch_is_up_only_after_a_list_and_while_no_error_is_pending():
    rows = series.watches([WatchHealth("b", "Pod", True, 0, 0, 5), WatchHealth("a", "Pod", False, 0, 0, 0),
                           WatchHealth("a", "Event", False, 3, 0, 2), WatchHealth("a", "Event", True, 1, 1, 4)])
    assert rows["kube_image_watch_up"] == ((("a", "Event"), 0.0), (("a", "Pod"), 0.0), (("b", "Pod"), 1.0))
    assert rows["kube_image_watch_errors_total"][0] == (("a", "Event"), 4.0)  # one kind in two namespaces adds up
    assert rows["kube_image_watch_objects"][2] == (("b", "Pod"), 5.0)


def test_a_list_fed_by_two_sources_is_up_only_when_both_are():
    states = [ListHealth("rel", True, 0, frozenset({"x"})), ListHealth("rel", False, 2, frozenset({"y", "x"})),
              ListHealth("new", False, 1, frozenset())]
    rows = series.expected_lists(states)
    assert rows["kube_image_expected_list_up"] == ((("new",), 0.0), (("rel",), 0.0))
    assert rows["kube_image_expected_list_images"] == ((("new",), 0.0), (("rel",), 2.0))
    assert rows["kube_image_expected_list_load_errors_total"] == ((("new",), 1.0), (("rel",), 2.0))


def test_pull_secret_rows_are_sorted_per_cluster():
    rows = series.pull_secrets([("two", "ns", "b", "invalid"), ("one", "ns", "a", "unreadable")])
    assert rows["kube_image_pull_secret_unusable"] == (
        (("one", "ns", "a", "unreadable"), 1.0), (("two", "ns", "b", "invalid"), 1.0))


def test_every_metric_row_comes_from_the_snapshot_alone():
    health = Health(
        registry_requests=((("r.example.com", "HEAD", "200"), 3),),
        registry_durations=(Histogram(("r.example.com",), (1.0,), (3,), 0.3, 3),),
        pulls=(LastPull("prod", "shop", "n1", "r.example.com/web:1", 2.5, None),),
        pull_failures=((("prod", "r.example.com", "not_found"), 2),),
        release_errors=((("prod", "apps", "corrupt"), 1),),
        cycle_seconds=0.25,
    )
    rows, histograms = series.of(join([], {}, {}, ["prod"], now=1234.0, health=health))
    assert rows["kube_image_registry_requests_total"] == ((("r.example.com", "HEAD", "200"), 3.0),)
    assert rows["kube_image_pull_duration_seconds"] == ((("prod", "shop", "n1", "r.example.com/web:1"), 2.5),)
    assert rows["kube_image_pull_size_bytes"] == ()  # the kubelet did not say
    assert rows["kube_image_pull_failures_total"] == ((("prod", "r.example.com", "not_found"), 2.0),)
    assert rows["kube_image_rollback_release_errors_total"] == ((("prod", "apps", "corrupt"), 1.0),)
    assert rows["kube_image_cycle_duration_seconds"] == (((), 0.25),)
    assert rows["kube_image_last_cycle_timestamp_seconds"] == (((), 1234.0),)
    assert histograms["kube_image_registry_request_duration_seconds"] == [health.registry_durations[0]]
    assert rows["kube_image_missing"] == ()  # the join's own families are there too
