"""Admission readiness: what a cluster's verifying policies require of an image, and what the registry holds.

Plain data and pure functions. A `Policy` (a Kyverno ClusterPolicy or Policy, a sigstore ClusterImagePolicy, a
`--require-signature` glob) is a list of `ImageRule`s: which images and workloads it covers, and which signature
and attestations it requires, read where its verifier reads them (`Where`). `Evidence` is what the registry holds
beside one digest (cosign's legacy tags, OCI 1.1 referrers); `unmet` says which requirements it leaves unmet.
Presence and type only: no signature is verified cryptographically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"  # cosign's OCI 1.1 signatures
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"  # cosign v3's default: bundles as referrers
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"  # an attestation bundle's annotation
INTOTO_PREDICATE = "in-toto.io/predicate-type"  # other attestations attached as referrers
COSIGN_PREDICATE = "predicateType"  # a layer annotation of cosign's legacy `.att` manifests


class Where(StrEnum):
    """Where a verifier looks for signatures and attestations."""

    COSIGN_TAGS = "cosign_tags"  # cosign's legacy `sha256-<hex>.sig` / `.att` tags (Kyverno's default)
    COSIGN_REFERRERS = "cosign_referrers"  # OCI 1.1 referrers: bundles, cosign signature artifacts (cosignOCI11)
    COSIGN_ANY = "cosign_any"  # either (sigstore policy-controller)
    NOTARY = "notary"  # notation signatures, as referrers
    ANY = "any"  # any signature of any of these kinds (`--require-signature`)


class Mode(StrEnum):
    ENFORCE = "enforce"  # a pod lacking it is rejected
    AUDIT = "audit"  # reported by the verifier only (Kyverno Audit, policy-controller warn)


@dataclass(frozen=True, slots=True)
class Need:
    """One thing a rule requires: a signature, or an attestation of `predicate_type`."""

    kind: str  # "signature" | "attestation"
    predicate_type: str = ""


SIGNATURE = Need("signature")


@dataclass(frozen=True, slots=True)
class ImageRule:
    """Images a rule covers (globs; skipped ones left out), in which workloads, and what it requires where.

    `glob` is how its patterns match: "kyverno" (`*` and `?` match any character, `/` too) or "sigstore" (`**`
    matches anything, `*` anything but `/`; Docker Hub images as `index.docker.io/...`). `kinds` and
    `namespaces` / `exclude_namespaces` (wildcards) narrow the workloads: empty means any. `namespace_label`
    names a label a namespace must carry (policy-controller's opt-in), checked against `labelled` namespaces."""

    images: tuple[str, ...]
    needs: tuple[Need, ...]
    where: Where
    skip: tuple[str, ...] = ()
    glob: str = "kyverno"
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()
    namespace_label: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """`name` as labels show it: `ClusterPolicy/NAME`, `Policy/NS/NAME`, `ClusterImagePolicy/NAME`, `flag/GLOB`.
    A namespaced policy (`namespace` set) covers its own namespace only."""

    name: str
    mode: Mode
    rules: tuple[ImageRule, ...]
    namespace: str = ""


@lru_cache(maxsize=4096)
def _pattern(glob: str, style: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*" and style == "sigstore" and glob[i:i + 2] == "**":
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append(".*" if style == "kyverno" else "[^/]*")
        elif char == "?":
            out.append("." if style == "kyverno" else "[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def matches(glob: str, value: str, style: str = "kyverno") -> bool:
    return _pattern(glob, style).match(value) is not None


def _image_forms(image: str, style: str) -> tuple[str, ...]:
    """The forms a verifier matches an image in: as normalized; policy-controller names Docker Hub
    `index.docker.io`."""
    if style == "sigstore" and image.startswith("docker.io/"):
        return (image, "index." + image)
    return (image,)


def covers(rule: ImageRule, image: str, namespace: str, workload_kind: str, labelled: frozenset[str] | None) -> bool:
    """Whether the rule applies to this image of a workload of this kind in this namespace. `labelled`: the
    namespaces carrying the rule's `namespace_label` (None: not known, the rule applies)."""
    if rule.kinds and workload_kind not in rule.kinds and "Pod" not in rule.kinds and "*" not in rule.kinds:
        return False  # a rule on Pods covers every workload's pods (Kyverno writes rules for controllers from it)
    if rule.namespaces and not any(matches(n, namespace) for n in rule.namespaces):
        return False
    if any(matches(n, namespace) for n in rule.exclude_namespaces):
        return False
    if rule.namespace_label and labelled is not None and namespace not in labelled:
        return False
    forms = _image_forms(image, rule.glob)
    if not any(matches(g, form, rule.glob) for g in rule.images for form in forms):
        return False
    return not any(matches(g, form, rule.glob) for g in rule.skip for form in forms)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A signature or attestation found beside a digest: its artifact type, and the predicate type it attests."""

    artifact_type: str
    predicate_type: str = ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the registry holds beside one digest. `referrers` None: not read (the verifier's place unknown)."""

    cosign_signature_tag: bool = False  # `sha256-<hex>.sig`
    cosign_attestation_types: frozenset[str] = frozenset()  # the predicate types of `sha256-<hex>.att`
    referrers: frozenset[Artifact] | None = frozenset()


def referrer_artifacts(entries: object) -> frozenset[Artifact]:
    """The artifacts an index of referrers lists (the referrers API's answer, or the referrers tag schema's)."""
    found = set()
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("artifactType"), str):
            continue
        annotations = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
        predicate = annotations.get(BUNDLE_PREDICATE) or annotations.get(INTOTO_PREDICATE) or ""
        found.add(Artifact(entry["artifactType"], predicate if isinstance(predicate, str) else ""))
    return frozenset(found)


def attestation_types(layers: object) -> frozenset[str]:
    """The predicate types of cosign's legacy `.att` manifest (one DSSE envelope a layer, annotated)."""
    return frozenset(layer["annotations"][COSIGN_PREDICATE] for layer in (layers if isinstance(layers, list) else ())
                     if isinstance(layer, dict) and isinstance(layer.get("annotations"), dict)
                     and isinstance(layer["annotations"].get(COSIGN_PREDICATE), str))


def _in_referrers(evidence: Evidence, need: Need, types: Iterable[str]) -> bool:
    types = set(types)
    for artifact in evidence.referrers or ():
        if need.kind == "signature" and artifact.artifact_type in types and not artifact.predicate_type:
            return True
        if need.kind == "attestation" and artifact.predicate_type == need.predicate_type:
            return True
        if need.kind == "attestation" and artifact.artifact_type == need.predicate_type:  # notation's kind
            return True
    return False


def found(evidence: Evidence, need: Need, where: Where) -> bool:
    """Whether what the verifier reads (`where`) holds what `need` asks."""
    tags = (evidence.cosign_signature_tag if need.kind == "signature"
            else need.predicate_type in evidence.cosign_attestation_types)
    cosign = _in_referrers(evidence, need, (SIGSTORE_BUNDLE, COSIGN_SIGNATURE))
    if where is Where.COSIGN_TAGS:
        return tags
    if where is Where.COSIGN_REFERRERS:
        return cosign
    if where is Where.COSIGN_ANY:
        return tags or cosign
    notary = _in_referrers(evidence, need, (NOTARY_SIGNATURE,))
    return notary if where is Where.NOTARY else tags or cosign or notary


def unmet(rule: ImageRule, evidence: Evidence) -> tuple[Need, ...]:
    """The rule's needs that the evidence does not meet."""
    return tuple(need for need in rule.needs if not found(evidence, need, rule.where))


def reads(rules: Iterable[ImageRule]) -> tuple[bool, bool, bool]:
    """What the registry must be asked for these rules: (referrers, cosign `.sig` tag, cosign `.att` tag)."""
    referrers = sig = att = False
    for rule in rules:
        legacy = rule.where in (Where.COSIGN_TAGS, Where.COSIGN_ANY, Where.ANY)
        referrers |= rule.where is not Where.COSIGN_TAGS
        sig |= legacy and any(n.kind == "signature" for n in rule.needs)
        att |= legacy and any(n.kind == "attestation" for n in rule.needs)
    return referrers, sig, att


def flag_policy(glob: str) -> Policy:
    """`--require-signature GLOB`: any signature of cosign or notation, wherever it is."""
    return Policy(f"flag/{glob}", Mode.ENFORCE, (ImageRule((glob,), (SIGNATURE,), Where.ANY),))


def policies_by_namespace(policies: Iterable[Policy]) -> Mapping[str, tuple[Policy, ...]]:
    """Namespaced policies by namespace; cluster-wide ones under ''."""
    out: dict[str, list[Policy]] = {}
    for policy in policies:
        out.setdefault(policy.namespace, []).append(policy)
    return {namespace: tuple(found) for namespace, found in out.items()}
