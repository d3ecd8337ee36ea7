"""Verifying admission policies, trimmed to what they require of images (exporter.model.admission).

Kyverno `ClusterPolicy` / `Policy` (`kyverno.io/v1`): each rule's `verifyImages` entries — `imageReferences`,
`skipImageReferences`, `type` (Cosign, the default, or Notary), `cosignOCI11` (cosign signatures read from OCI 1.1
referrers instead of the legacy tags), `required` (false: nothing is enforced), `attestors` (a signature is
required), `attestations[].predicateType` (or `type`) — and the rule's `match`/`exclude` on resource kinds and
namespace names; `failureAction` of the entry, else `validationFailureAction` of the policy (Kyverno's default:
Audit). Not read: label and namespace selectors, subjects, roles, preconditions, keys and certificates.

sigstore policy-controller `ClusterImagePolicy` (`policy.sigstore.dev/v1beta1`): `spec.images[].glob`,
`spec.authorities` (a signature, in cosign's tags or referrers; a `static` authority that passes requires none),
their `attestations[].predicateType` (authorities are alternatives: an attestation is required when every
authority asks for it), `spec.mode` (`warn` is audit), and the namespace opt-in label
`policy.sigstore.dev/include=true`. Not read: `policy` (CUE, Rego), `match` on resources.

Every function tolerates any shape: what is not what Kyverno or policy-controller would accept requires nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from exporter.model.admission import SIGNATURE, ImageRule, Mode, Need, Policy, Where

SIGSTORE_INCLUDE = "policy.sigstore.dev/include"
WATCHED = (("kyverno.io/v1", "ClusterPolicy"), ("kyverno.io/v1", "Policy"),
           ("policy.sigstore.dev/v1beta1", "ClusterImagePolicy"))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in _list(value) if isinstance(v, str) and v)


def _mode(value: Any, default: Mode) -> Mode:
    text = str(value or "").lower()
    return Mode.ENFORCE if text == "enforce" else Mode.AUDIT if text in ("audit", "warn") else default


def trim_policy(obj: Mapping[str, Any]) -> Policy:
    """Any of the watched kinds, as a Policy (no rules when it requires nothing)."""
    kind = obj.get("kind")
    if kind == "ClusterImagePolicy":
        return _sigstore(obj)
    return _kyverno(obj)


def _filters(block: Any) -> Iterator[dict]:
    """The resource filters of a Kyverno `match` or `exclude`: `any` and `all` entries, or the legacy `resources`."""
    block = _dict(block)
    for entry in (*_list(block.get("any")), *_list(block.get("all"))):
        yield _dict(_dict(entry).get("resources"))
    if "resources" in block:
        yield _dict(block.get("resources"))


def _scope(rule: dict) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(kinds, namespaces, excluded namespaces) of a rule; an empty tuple means any."""
    kinds, namespaces, any_namespace = set(), set(), False
    for resources in _filters(rule.get("match")):
        kinds.update(k.rsplit("/", 1)[-1] for k in _strings(resources.get("kinds")))
        names = _strings(resources.get("namespaces"))
        namespaces.update(names)
        any_namespace |= not names
    excluded = set()
    for resources in _filters(rule.get("exclude")):
        if set(resources) <= {"namespaces", "kinds"} and (not _strings(resources.get("kinds"))
                                                          or "Pod" in _strings(resources.get("kinds"))):
            excluded.update(_strings(resources.get("namespaces")))  # a whole namespace excluded
    return tuple(sorted(kinds)), (() if any_namespace else tuple(sorted(namespaces))), tuple(sorted(excluded))


def _kyverno(obj: Mapping[str, Any]) -> Policy:
    metadata, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
    namespace = str(metadata.get("namespace") or "") if obj.get("kind") == "Policy" else ""
    name = f"Policy/{namespace}/{metadata.get('name', '')}" if namespace else f"ClusterPolicy/{metadata.get('name', '')}"
    policy_mode = _mode(spec.get("validationFailureAction"), Mode.AUDIT)
    rules, modes = [], set()
    for rule in map(_dict, _list(spec.get("rules"))):
        kinds, namespaces, excluded = _scope(rule)
        for entry in map(_dict, _list(rule.get("verifyImages"))):
            if entry.get("required") is False:
                continue
            needs = [SIGNATURE] if any(_list(_dict(a).get("entries")) for a in _list(entry.get("attestors"))) else []
            for attestation in map(_dict, _list(entry.get("attestations"))):
                predicate = attestation.get("predicateType") or attestation.get("type")
                if isinstance(predicate, str) and predicate:
                    needs.append(Need("attestation", predicate))
            images = _strings(entry.get("imageReferences")) or _strings(entry.get("image"))
            if not needs or not images:
                continue
            notary = str(entry.get("type") or "Cosign").lower() == "notary"
            where = Where.NOTARY if notary else Where.COSIGN_REFERRERS if entry.get("cosignOCI11") is True \
                else Where.COSIGN_TAGS
            modes.add(_mode(entry.get("failureAction"), policy_mode))
            rules.append(ImageRule(images, tuple(dict.fromkeys(needs)), where,
                                   skip=_strings(entry.get("skipImageReferences")), kinds=kinds,
                                   namespaces=namespaces, exclude_namespaces=excluded))
    mode = (Mode.ENFORCE if Mode.ENFORCE in modes else Mode.AUDIT) if modes else policy_mode  # enforce where any rule does
    return Policy(name, mode, tuple(rules), namespace)


def _sigstore(obj: Mapping[str, Any]) -> Policy:
    metadata, spec = _dict(obj.get("metadata")), _dict(obj.get("spec"))
    name = f"ClusterImagePolicy/{metadata.get('name', '')}"
    mode = Mode.AUDIT if str(spec.get("mode") or "enforce").lower() == "warn" else Mode.ENFORCE
    globs = tuple(g for g in (_dict(i).get("glob") for i in _list(spec.get("images"))) if isinstance(g, str) and g)
    authorities = [_dict(a) for a in _list(spec.get("authorities"))]
    if not globs or not authorities or any("static" in a for a in authorities):
        return Policy(name, mode, ())  # a static authority passes (or fails) without reading the registry
    common = None
    for authority in authorities:
        types = {p for p in (_dict(a).get("predicateType") for a in _list(authority.get("attestations")))
                 if isinstance(p, str) and p}
        common = types if common is None else common & types
    needs = (SIGNATURE, *(Need("attestation", p) for p in sorted(common or ())))
    return Policy(name, mode, (ImageRule(globs, needs, Where.COSIGN_ANY, glob="sigstore",
                                         namespace_label=SIGSTORE_INCLUDE),))
