"""Sharding one cluster between replicas, as kube-state-metrics does: `--shard N --total-shards M`.

A replica keeps what hashes to its shard: `fnv32a(key) % M == N`, FNV-1a being kube-state-metrics' hash and
stable across processes and versions (Python's `hash()` is salted per process). The key is the workload a
reference belongs to, not each pod's UID: series are per workload, so the pods of one Deployment spread over
two shards would give its series twice. Every replica lists and watches the whole cluster; the split divides
the references held, checked and exposed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from exporter.model.records import Reference


@lru_cache(maxsize=1 << 18)
def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    total: int = 1

    def keeps(self, key: str) -> bool:
        return self.total <= 1 or fnv32a(key) % self.total == self.index

    def keeps_reference(self, ref: Reference) -> bool:
        """Whether this replica holds the reference: every row of one workload lands on the same shard."""
        return self.total <= 1 or self.keeps(f"{ref.cluster}/{ref.namespace}/{ref.workload_kind}/{ref.workload}")
