"""The parallel run's order: every worker's first run of tests begins with its share of the long ones."""

from tests.support.schedule import long_first


def runs(items, workers):
    """The contiguous runs pytest-xdist's worksteal scheduler first hands out (what remains over the workers left)."""
    out, remaining, start = [], len(items), 0
    for worker in range(workers):
        size = remaining // (workers - worker)
        out.append(items[start:start + size])
        start, remaining = start + size, remaining - size
    return out


def test_each_worker_starts_with_a_long_test_and_nothing_is_lost_or_doubled():
    items = [f"t{i}" for i in range(100)]
    long = {"t7", "t60", "t61", "t97", "t98", "t99", "t3"}
    ordered = long_first(items, long.__contains__, 6)
    assert sorted(ordered) == sorted(items)
    heads = [run[0] for run in runs(ordered, 6)]
    assert all(head in long for head in heads)
    assert {item for run in runs(ordered, 6) for item in run[:2] if item in long} == long  # 7 long: one run has two
    assert [i for i in ordered if i not in long] == [i for i in items if i not in long]  # the rest keep their order


def test_more_long_tests_than_room_and_a_single_worker():
    items = [f"t{i}" for i in range(5)]
    assert sorted(long_first(items, lambda item: True, 3)) == items
    assert long_first(items, lambda item: item == "t4", 1) == items
    assert long_first(items, lambda item: False, 4) == items
