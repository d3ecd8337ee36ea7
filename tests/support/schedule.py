"""The order a parallel run starts its tests in: the long ones first, one at the head of each worker's queue.

pytest-xdist's `worksteal` scheduler cuts the collected list into one contiguous run per worker and a worker out of
work steals the back half of the longest queue. Collected in file order, the tests that last many seconds (a clock's
intervals elapsing, a real install) sit at the ends of those runs and start last: the run ended on one or two of
them with the other workers idle (the last 10 s of a 95 s run at a third of the CPU). Dealt to the heads of the runs,
they start at once, side by side, and the short tests fill in around them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def long_first(items: Sequence[T], is_long: Callable[[T], bool], workers: int) -> list[T]:
    """`items` reordered so that each of the `workers` runs worksteal first hands out (sizes as it cuts them:
    what remains divided by the workers still without a run) begins with its share of the long items, dealt in turn;
    the other items keep their order."""
    long = [item for item in items if is_long(item)]
    if workers < 2 or not long:
        return list(items)
    rest = iter([item for item in items if not is_long(item)])
    ordered: list[T] = []
    remaining = len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)
        remaining -= size
        heads = long[worker::workers]
        ordered += heads + list(islice(rest, max(0, size - len(heads))))
    return ordered + list(rest)
