"""Check results in the store: `kie:1:r:<credentials>:<image>`, one JSON record each.

A record is kept `stale_for` past its expiry and then answered only while another exporter re-checks it.
`<credentials>` is a slow salted hash of the fingerprint of the credentials that apply to the image (`scope`): a
result obtained with one credential set never answers for another, and the store holds nothing a password could
be recovered from cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import orjson

from exporter.model.images import InvalidReference, parse
from exporter.model.records import Status
from exporter.sources.registry.credentials import Keyring, fingerprint
from exporter.sources.registry.shared.connection import PREFIX, Connection

Key = tuple[str, str]  # (image, credentials fingerprint)


@lru_cache(maxsize=4096)
def credentials_key(credentials: str) -> str:
    """What names a credential set (its fingerprint) in the store: the same in every exporter, costly to reverse."""
    return hashlib.pbkdf2_hmac("sha256", credentials.encode(), b"kube-image-exporter/shared-cache", 50_000).hex()[:24]


def scope(image: str, keyring: Keyring) -> Key:
    """The shared name of a check: the image and the credentials that apply to it (those the kubelet would try
    for its registry and repository), not the whole keyring, so clusters whose pods also hold secrets for other
    registries still share the check. A reference that does not parse needs no credential."""
    try:
        ref = parse(image)
    except InvalidReference:
        return image, fingerprint(())
    return image, fingerprint(keyring.match(ref.registry, ref.repository))


def encode(result: Any, expires: float) -> dict:
    """The stored form of a check result (children stay out: index manifests have their own keys)."""
    return {"status": str(result.status), "digest": result.digest, "media_type": result.media_type,
            "endpoint": result.endpoint, "detail": result.detail, "checked_at": result.checked_at,
            "expires": expires}


def decode(record: dict, result_type: type) -> Any:
    return result_type(status=Status(record["status"]), digest=record.get("digest"),
                       endpoint=record.get("endpoint") or "", detail=record.get("detail") or "",
                       checked_at=float(record.get("checked_at") or 0.0), media_type=record.get("media_type"))


class Results:
    """Reads results in one MGET; writes them into a pipeline the caller sends (with the locks it releases)."""

    def __init__(self, connection: Connection, stale_for: float, clock: Callable[[], float]) -> None:
        self._connection = connection
        self.stale_for = stale_for
        self._clock = clock

    @staticmethod
    def key(key: Key) -> str:
        return f"{PREFIX}r:{credentials_key(key[1])}:{key[0]}"

    def lookup(self, keys: list[Key]) -> tuple[dict[Key, dict], dict[Key, dict]]:
        """(fresh, stale) records of `keys`, in one MGET; nothing when the store does not answer."""
        if not keys:
            return {}, {}
        values = self._connection.call(lambda r: r.mget([self.key(k) for k in keys]), commands=1)
        fresh, stale = {}, {}
        now = self._clock()
        for key, raw in zip(keys, values or ()):
            if raw is None:
                continue
            try:
                record = orjson.loads(raw)
                Status(record["status"])
                expires = float(record["expires"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # written by another version: checked again and overwritten
            (fresh if expires > now else stale)[key] = record
        self._connection.counts.hits += len(fresh)
        return fresh, stale

    def write(self, pipe: Any, records: Mapping[Key, tuple[dict, float]]) -> None:
        """Queue each (record, ttl) on `pipe`: one SET each, kept `stale_for` past its lifetime."""
        for key, (record, ttl) in records.items():
            keep = max(1, int((max(ttl, 0.0) + self.stale_for) * 1000))
            pipe.set(self.key(key), orjson.dumps(record), px=keep)
