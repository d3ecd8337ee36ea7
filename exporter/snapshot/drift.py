"""Digest drift: a container runs another digest than the one its tag serves now.

Pure functions around the two registry questions a cycle asks of drifted tags. `plan` picks the running
digests worth a second look from the round's results; the cycle has the checker read the manifests of the
indexes those tags serve (`indexes`) and the running digests themselves (`running`); `facts` hands the join
what was learnt, and `drifted` is the join's verdict: a platform manifest of the served index is no drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from exporter.model.images import parse
from exporter.model.records import Reference, Status


class Result(Protocol):
    """What the checker said of one reference (registry.checker.CheckResult)."""

    status: Status
    digest: str | None
    media_type: str | None


Keyring = Any  # registry.credentials.Keyring: only its `fingerprint` is read here
Results = Mapping[tuple[str, str], Result]  # (image, keyring fingerprint) -> what the checker said


@dataclass(frozen=True, slots=True)
class DigestFacts:
    """What the registry says of a tag whose running digest differs from the one it serves now."""

    registry_digest: str  # what the tag resolves to now
    index_children: frozenset[str] | None = frozenset()  # the index's manifests; None: an index not read yet
    running_status: Status = Status.UNCHECKED  # of `name@running_digest`


@dataclass(frozen=True, slots=True)
class Candidate:
    """A running digest that is not what its tag serves, both written `name@digest`."""

    running: str
    served: str
    registry_digest: str
    is_index: bool  # the tag serves a multi-arch index: its manifests are no drift
    keyring: Keyring


Candidates = dict[tuple[str, str], Candidate]  # by (image, running digest)


def pinned(image: str, digest: str) -> str:
    """`registry/repository@digest` of a normalized image: the reference a digest is pulled by."""
    return f"{parse(image).name}@{digest}"


def plan(refs: Iterable[tuple[Reference, Keyring]], results: Results, index_types: frozenset[str]) -> Candidates:
    """Every (image, running digest) whose tag, available, serves another digest now (`index_types`: the media
    types of multi-arch indexes)."""
    candidates: Candidates = {}
    for ref, keyring in refs:
        if not ref.running_digest or (ref.image, ref.running_digest) in candidates:
            continue
        result = results.get((ref.image, keyring.fingerprint))
        if result is None or result.status != Status.AVAILABLE or not result.digest:
            continue
        if result.digest != ref.running_digest:
            candidates[(ref.image, ref.running_digest)] = Candidate(
                pinned(ref.image, ref.running_digest), pinned(ref.image, result.digest), result.digest,
                result.media_type in index_types, keyring)
    return candidates


def indexes(candidates: Candidates) -> list[tuple[str, Keyring]]:
    """The indexes whose manifests are to be read, each once, by digest."""
    return list({c.served: c.keyring for c in candidates.values() if c.is_index}.items())


def running(candidates: Candidates) -> list[tuple[str, Keyring]]:
    """The running digests to check: one gone from the registry is a missing image."""
    return [(c.running, c.keyring) for c in candidates.values()]


def facts(candidates: Candidates, children: Mapping[str, frozenset[str]], results: Results) -> dict[tuple[str, str], DigestFacts]:
    """What the join needs of each candidate, from the index manifests and the running digests read."""
    read = {c.served for c in candidates.values() if c.is_index}
    out = {}
    for key, c in candidates.items():
        state = results.get((c.running, c.keyring.fingerprint))
        out[key] = DigestFacts(c.registry_digest, children.get(c.served) if c.served in read else frozenset(),
                               state.status if state is not None else Status.UNCHECKED)
    return out


def drifted(running_digest: str, facts: DigestFacts) -> bool:
    """True when the running digest is neither what the tag serves nor a manifest of the index it serves."""
    if running_digest == facts.registry_digest:
        return False
    if facts.index_children is None:  # an index whose manifests are not known yet: no alarm on a guess
        return False
    return running_digest not in facts.index_children
