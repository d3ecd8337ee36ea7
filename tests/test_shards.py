"""Sharding one cluster: every reference on exactly one shard, all rows of a workload on the same one."""

import subprocess
import sys
from collections import Counter

import pytest

from exporter.commands.config import ConfigError, load
from exporter.model.records import Reference
from exporter.sources.shards import Shard, fnv32a


def refs(n):
    return [Reference("c", f"ns{i % 7}", "Deployment", f"app{i}", container, "container", f"img{i}:{container}", None)
            for i in range(n) for container in ("main", "sidecar")]


def test_fnv32a_matches_the_reference_values():
    # FNV-1a 32-bit test vectors (kube-state-metrics hashes UIDs with the same function)
    assert fnv32a("") == 0x811C9DC5
    assert fnv32a("a") == 0xE40C292C
    assert fnv32a("foobar") == 0xBF9CF968


def test_stable_across_processes():
    code = "from exporter.sources.shards import fnv32a; print(fnv32a('ns/Deployment/web'))"
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(2)}
    assert outputs == {f"{fnv32a('ns/Deployment/web')}\n"}


@pytest.mark.parametrize("total", [1, 2, 3, 5])
def test_every_reference_on_exactly_one_shard_and_workloads_kept_whole(total):
    rows = refs(400)
    shards = [Shard(i, total) for i in range(total)]
    kept = [[r for r in rows if s.keeps_reference(r)] for s in shards]
    assert Counter(r for part in kept for r in part) == Counter(rows)  # none lost, none doubled
    for part in kept:
        assert {(r.workload, r.container) for r in part} == {(r.workload, c) for r in part for c in ("main", "sidecar")}
    if total > 1:
        assert min(len(part) for part in kept) > len(rows) / total / 2  # roughly even


def test_shard_settings():
    assert load(None, {"shard": "kube-image-exporter-2", "total_shards": 3}).shard == 2  # a StatefulSet pod name
    assert load(None, {"shard": "1", "total_shards": 2}).shard == 1
    with pytest.raises(ConfigError, match="shard 2 is not below total_shards 2"):
        load(None, {"shard": "2", "total_shards": 2})
    with pytest.raises(ConfigError, match="pod name ending in -N"):
        load(None, {"shard": "exporter", "total_shards": 2})
    with pytest.raises(ConfigError, match="expected lists are compared with the whole cluster"):
        load(None, {"total_shards": 2, "expected": ["list.txt"]})
