"""What a manifest (or a config blob) read from a registry says, as plain data: the one reading of a document for
every question asked of it — an index's children and platforms, a single manifest's config blob, a config's
platform, the referrers an index lists and the predicate types of cosign's `.att` layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.model.admission import Artifact, attestation_types, referrer_artifacts
from exporter.model.platforms import of_index, platform


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a manifest read by digest says (a digest never changes: kept for the life of the process).

    An index lists `children`, the `platforms` they serve and, as referrers, the `artifacts` they are; a single
    manifest names its `config` blob, whose `platforms` (one) are filled in once the blob is read, and the
    `predicates` its layers attest (cosign's `.att`); None where not known."""

    children: frozenset[str] | None = None
    platforms: frozenset[str] | None = None
    config: str | None = None
    artifacts: frozenset[Artifact] = frozenset()
    predicates: frozenset[str] = frozenset()


def read_document(body: Any) -> Manifest | None:
    """What a manifest or config blob (parsed JSON) says; None when it is neither."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("manifests"), list):  # an OCI index or a Docker manifest list (or a referrers list)
        children = frozenset(m["digest"] for m in body["manifests"]
                             if isinstance(m, dict) and isinstance(m.get("digest"), str))
        return Manifest(children=children, platforms=of_index(body["manifests"]),
                        artifacts=referrer_artifacts(body["manifests"]))
    config = body.get("config")
    if isinstance(config, dict) and isinstance(config.get("digest"), str):  # a single image manifest
        return Manifest(config=config["digest"], predicates=attestation_types(body.get("layers")))
    architecture, os = body.get("architecture"), body.get("os")
    if isinstance(architecture, str) and (isinstance(os, str) or body.get("schemaVersion") == 1):
        # a config blob; or a Docker schema 1 manifest, which names its architecture and is Linux only
        found = platform(os if isinstance(os, str) else "linux", architecture, str(body.get("variant") or ""))
        return Manifest(platforms=frozenset({found}) if found else None)
    return None
