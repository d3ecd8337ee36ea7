"""Platform coverage: the platforms each reference needs, and those its image lacks.

Pure functions around the one registry question a cycle asks of available images: which platforms does the
manifest a tag serves now offer? `needs` turns where references run (their pods' nodes) or may run (a template's
constraint among the cluster's nodes) into platforms; the cycle has the checker read the manifests `wanted` names;
`lacking` is the join's verdict: a reference whose image offers nothing a needed platform pulls is
`platform_missing`, for that reference only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exporter.model.manifests import Manifest
from exporter.model.platforms import Constraint, lacking as not_covered
from exporter.model.records import NodeImages, Reference, Status
from exporter.snapshot.drift import Result, pinned

Keyring = Any  # registry.credentials.Keyring: only its `fingerprint` is read here
Placement = str | Constraint  # a node's name, or what a template allows (sources.inventory.Placement)


def needs(placements: Mapping[Reference, Iterable[Placement]], nodes: Iterable[NodeImages],
          ) -> dict[Reference, frozenset[str]]:
    """The platforms each reference is pulled for: its nodes', or those its constraint allows among the cluster's
    nodes (every platform present when it has none). A node not listed (yet) or of unknown platform adds none."""
    platform_of = {node.name: node.platform for node in nodes if node.platform}
    present = frozenset(platform_of.values())
    allowed: dict[Constraint, frozenset[str]] = {}
    shared: dict[frozenset[str], frozenset[str]] = {}  # thousands of references need the same few platforms
    out = {}
    for ref, places in placements.items():
        needed: set[str] = set()
        for place in places:
            if isinstance(place, str):
                if place in platform_of:
                    needed.add(platform_of[place])
            else:
                if place not in allowed:
                    allowed[place] = frozenset(p for p in present if place.allows(p))
                needed |= allowed[place]
        if needed:
            frozen = frozenset(needed)
            out[ref] = shared.setdefault(frozen, frozen)
    return out


def wanted(refs: Iterable[tuple[Reference, Keyring]], needed: Mapping[Reference, frozenset[str]],
           results: Mapping[tuple[str, str], Result]) -> list[tuple[str, Keyring]]:
    """The manifests to read (`name@digest`, each once): what the tags of references with needs serve now."""
    out: dict[str, Keyring] = {}
    for ref, keyring in refs:
        if ref in needed:
            result = results.get((ref.image, keyring.fingerprint))
            if result is not None and result.status == Status.AVAILABLE and result.digest:
                out.setdefault(pinned(ref.image, result.digest), keyring)
    return list(out.items())


def verdicts(refs: Iterable[tuple[Reference, Keyring]], needed: Mapping[Reference, frozenset[str]],
             results: Mapping[tuple[str, str], Result], manifests: Mapping[str, Manifest],
             ) -> dict[Reference, tuple[str, ...]]:
    """The platforms each reference needs and its image lacks (references lacking none are left out); a manifest
    not read, or of unknown platforms, is no verdict: no alarm on a guess."""
    out = {}
    for ref, keyring in refs:
        if ref not in needed:
            continue
        result = results.get((ref.image, keyring.fingerprint))
        if result is None or result.status != Status.AVAILABLE or not result.digest:
            continue
        manifest = manifests.get(pinned(ref.image, result.digest))
        if manifest is None or manifest.platforms is None:
            continue
        if missing := not_covered(manifest.platforms, needed[ref]):
            out[ref] = missing
    return out
