"""Rows describing the sources: watch health, expected lists and pull secrets, from plain state."""

from exporter import series
from exporter.expected.sources import ListState
from exporter.kube.watch import ReflectorStats


def test_a_watch_is_up_only_after_a_list_and_while_no_error_is_pending():
    never_listed = ReflectorStats()
    working = ReflectorStats(lists=1)
    failing = ReflectorStats(lists=1, errors=3, failing_since=10.0)
    rows = series.watches([("b", "Pod", working, 5), ("a", "Pod", never_listed, 0), ("a", "Event", failing, 2)])
    assert rows["kube_image_watch_up"] == ((("a", "Event"), 0.0), (("a", "Pod"), 0.0), (("b", "Pod"), 1.0))
    assert rows["kube_image_watch_errors_total"][0] == (("a", "Event"), 3.0)
    assert rows["kube_image_watch_objects"][2] == (("b", "Pod"), 5.0)
    assert failing.down_for(25.0) == 15.0 and working.down_for(25.0) == 0.0


def test_a_list_fed_by_two_sources_is_up_only_when_both_are():
    states = [ListState("rel", "a.txt", {"x": frozenset()}, up=True),
              ListState("rel", "configmap:f/rel", {"y": frozenset(), "x": frozenset()}, up=False, errors=2),
              ListState("new", "http://h/new", None, up=False, errors=1)]
    rows = series.expected_lists(states)
    assert rows["kube_image_expected_list_up"] == ((("new",), 0.0), (("rel",), 0.0))
    assert rows["kube_image_expected_list_images"] == ((("new",), 0.0), (("rel",), 2.0))
    assert rows["kube_image_expected_list_load_errors_total"] == ((("new",), 1.0), (("rel",), 2.0))


def test_pull_secret_rows_are_sorted_per_cluster():
    rows = series.pull_secrets([("two", {("ns", "b"): "invalid"}), ("one", {("ns", "a"): "unreadable"})])
    assert rows["kube_image_pull_secret_unusable"] == (
        (("one", "ns", "a", "unreadable"), 1.0), (("two", "ns", "b", "invalid"), 1.0))
