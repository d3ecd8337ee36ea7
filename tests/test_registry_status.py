"""/report's `registry_status`: one status per image, the worst of those its credential sets met."""

import itertools

from exporter.model.records import Status
from exporter.views.report import SEVERITY, registry_statuses


def test_an_image_checked_with_two_credential_sets_reads_the_same_in_any_order():
    pairs = [("a:1", Status.AVAILABLE), ("a:1", Status.UNAUTHORIZED), ("b:1", Status.AVAILABLE)]
    results = {tuple(registry_statuses(order).items()) for order in itertools.permutations(pairs)}
    assert results == {(("a:1", "unauthorized"), ("b:1", "available"))}


def test_every_status_has_a_rank_and_available_is_the_mildest():
    assert set(SEVERITY) == set(Status) and SEVERITY[-1] is Status.AVAILABLE
    assert registry_statuses([("a", Status.UNCHECKED), ("a", Status.AVAILABLE)]) == {"a": "unchecked"}
