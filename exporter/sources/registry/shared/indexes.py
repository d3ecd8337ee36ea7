"""Index manifests in the store: `kie:1:c:<name@digest>`, the digests of an index's manifests.

Content-addressed, so the same for every reader whatever its credentials; kept a week after the last write so the
memory of digests no one uses stays bounded.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from exporter.sources.registry.shared.connection import PREFIX, Connection

CHILDREN_TTL = 7 * 24 * 3600  # a digest's manifests never change; bound the memory of digests no one uses


class Indexes:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, names: list[str]) -> dict[str, frozenset[str]]:
        """The manifests of each index (`name@digest`) some exporter already read."""
        if not names:
            return {}
        values = self._connection.call(lambda r: r.mget([f"{PREFIX}c:{n}" for n in names]), commands=1)
        found = {}
        for name, raw in zip(names, values or ()):
            if raw is not None:
                try:
                    found[name] = frozenset(orjson.loads(raw))
                except (orjson.JSONDecodeError, TypeError):
                    continue
        return found

    def put(self, children: Mapping[str, frozenset[str]]) -> None:
        """Store what this exporter read, one pipeline."""
        def work(r):
            pipe = r.pipeline(transaction=False)
            for name, digests in children.items():
                pipe.set(f"{PREFIX}c:{name}", orjson.dumps(sorted(digests)), px=CHILDREN_TTL * 1000)
            return pipe.execute()

        if children:
            self._connection.call(work, commands=len(children))
