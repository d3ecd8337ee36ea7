"""Manifests read by digest, in the store: `kie:1:m:<name@digest>`, what each says (an index's manifests and
platforms, a single manifest's platform from its config).

Content-addressed, so the same for every reader whatever its credentials; kept a week after the last write so the
memory of digests no one uses stays bounded.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from exporter.model.manifests import Manifest
from exporter.sources.registry.shared.connection import PREFIX, Connection

MANIFEST_TTL = 7 * 24 * 3600  # a digest's content never changes; bound the memory of digests no one uses


def _set(values) -> list[str] | None:
    return None if values is None else sorted(values)


def _frozen(values) -> frozenset[str] | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("not a list of strings")
    return frozenset(values)


class Indexes:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, names: list[str]) -> dict[str, Manifest]:
        """What each manifest (`name@digest`) says, where some exporter already read it; an entry that does not
        decode is read again."""
        if not names:
            return {}
        values = self._connection.call(lambda r: r.mget([f"{PREFIX}m:{n}" for n in names]), commands=1)
        found = {}
        for name, raw in zip(names, values or ()):
            if raw is not None:
                try:
                    entry = orjson.loads(raw)
                    found[name] = Manifest(_frozen(entry.get("children")), _frozen(entry.get("platforms")))
                except (orjson.JSONDecodeError, TypeError, AttributeError):
                    continue
        return found

    def put(self, manifests: Mapping[str, Manifest]) -> None:
        """Store what this exporter read, one pipeline."""
        def work(r):
            pipe = r.pipeline(transaction=False)
            for name, manifest in manifests.items():
                body = {"children": _set(manifest.children), "platforms": _set(manifest.platforms)}
                pipe.set(f"{PREFIX}m:{name}", orjson.dumps(body), px=MANIFEST_TTL * 1000)
            return pipe.execute()

        if manifests:
            self._connection.call(work, commands=len(manifests))
