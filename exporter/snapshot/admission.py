"""Admission readiness: the signatures and attestations each reference's verifying policies require, and those the
registry does not hold where the verifier reads them.

Pure functions, as `platforms` and `drift` are: `requirements` finds the rules covering each reference; the cycle
has the registry read what `wanted` names (the digest the pod runs, else the one its tag serves now, from the
endpoint that served it); `verdicts` says which needs are unmet. An image no policy covers needs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exporter.model.admission import Evidence, ImageRule, Mode, Need, Policy, covers, reads, unmet
from exporter.model.records import Reference, Status
from exporter.snapshot.drift import Result, pinned

Keyring = Any  # registry.credentials.Keyring: only its `fingerprint` is read here
Covering = tuple[tuple[Policy, ImageRule], ...]
Missing = tuple[tuple[str, Mode, Need], ...]  # (policy name, its mode, the need unmet)


def requirements(refs: Iterable[Reference], policies: Mapping[str, Iterable[Policy]],
                 labelled: Mapping[str, frozenset[str] | None]) -> dict[Reference, Covering]:
    """The (policy, rule) pairs covering each reference (references no rule covers are left out). `policies` and
    `labelled` (the namespaces opted in to policy-controller, None when not known) are by cluster."""
    out = {}
    seen: dict[tuple, Covering] = {}  # replicas of many workloads share image, namespace and kind
    for ref in refs:
        key = (ref.cluster, ref.image, ref.namespace, ref.workload_kind)
        if key not in seen:
            seen[key] = tuple((policy, rule) for policy in policies.get(ref.cluster, ())
                              if not policy.namespace or policy.namespace == ref.namespace
                              for rule in policy.rules
                              if covers(rule, ref.image, ref.namespace, ref.workload_kind,
                                        labelled.get(ref.cluster)))
        if seen[key]:
            out[ref] = seen[key]
    return out


def subject(ref: Reference, result: Result | None) -> str | None:
    """The digest a verifier checks, `name@digest`: the one the pod runs, else the one the tag serves now."""
    if "@" in ref.image:
        return pinned(ref.image, ref.image.split("@", 1)[1])
    if ref.running_digest:
        return pinned(ref.image, ref.running_digest)
    if result is not None and result.status == Status.AVAILABLE and result.digest:
        return pinned(ref.image, result.digest)
    return None


def wanted(refs: Iterable[tuple[Reference, Keyring]], covering: Mapping[Reference, Covering],
           results: Mapping[tuple[str, str], Result]) -> list[tuple[str, Keyring, str, tuple[bool, bool, bool]]]:
    """(digest, keyring, host that served it, (referrers, `.sig`, `.att`)) to read, each digest once."""
    out: dict[tuple[str, str], tuple[Keyring, set]] = {}
    for ref, keyring in refs:
        if ref not in covering:
            continue
        result = results.get((ref.image, keyring.fingerprint))
        if result is None or result.status != Status.AVAILABLE:
            continue  # an image not available is missing already: its signature is no question yet
        image = subject(ref, result)
        if image is not None:
            out.setdefault((image, result.endpoint), (keyring, set()))[1].update(rule for _, rule in covering[ref])
    return [(image, keyring, host, reads(rules)) for (image, host), (keyring, rules) in out.items()]


def verdicts(refs: Iterable[tuple[Reference, Keyring]], covering: Mapping[Reference, Covering],
             results: Mapping[tuple[str, str], Result], evidence: Mapping[str, Evidence]) -> dict[Reference, Missing]:
    """The needs each reference's policies have that the registry does not meet; evidence not read is no verdict."""
    out = {}
    for ref, keyring in refs:
        if ref not in covering:
            continue
        result = results.get((ref.image, keyring.fingerprint))
        image = subject(ref, result) if result is not None and result.status == Status.AVAILABLE else None
        found = evidence.get(image) if image is not None else None
        if found is None:
            continue
        missing = tuple((policy.name, policy.mode, need) for policy, rule in covering[ref]
                        for need in unmet(rule, found))
        if missing:
            out[ref] = tuple(dict.fromkeys(missing))
    return out
