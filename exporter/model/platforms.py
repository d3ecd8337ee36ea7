"""Platforms: what a node pulls (`linux/arm64`), what an image serves, and whether the one covers the other.

Written `os/architecture[/variant]`, normalized as containerd normalizes them (its `platforms` package): `x86_64`
is `amd64`, `aarch64` is `arm64`; `arm64/v8` is `arm64` and a bare `arm` is `arm/v7`. A node pulls the first entry of
an index that its runtime accepts (containerd's `platforms.Only`): its own platform, older variants of its
architecture (`arm/v7` takes `arm/v6`), and the compatible ones (`amd64` takes `386`, `arm64` takes `arm/v8`..`v5`).
So an image "lacks" a node's platform only when nothing it offers is accepted there: exactly when the kubelet's
pull fails with "no matching manifest for linux/arm64".

What a pod may be placed on is a `Constraint`: the `kubernetes.io/os` and `kubernetes.io/arch` requirements of its
`nodeSelector` and required node affinity; other keys (pools, zones) are not read, so a template pinned to a pool by
another label is judged by the platforms the whole cluster has.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OS_LABELS = ("kubernetes.io/os", "beta.kubernetes.io/os")
ARCH_LABELS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
UNKNOWN = "unknown"  # buildkit's attestation manifests: `unknown/unknown`, not a platform

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}
_DEFAULT_VARIANT = {"armhf": "v7", "armel": "v6"}


def platform(os: str, architecture: str, variant: str = "") -> str:
    """`os/arch[/variant]`, normalized (containerd's `Normalize`); '' when os or architecture is missing."""
    os, architecture, variant = (str(v or "").strip().lower() for v in (os, architecture, variant))
    if not os or not architecture:
        return ""
    variant = variant or _DEFAULT_VARIANT.get(architecture, "")
    architecture = _ARCH.get(architecture, architecture)
    if architecture == "arm64" and variant in ("v8", "8"):
        variant = ""
    elif architecture == "arm":
        variant = {"": "v7", "5": "v5", "6": "v6", "7": "v7", "8": "v8"}.get(variant, variant)
    elif architecture == "amd64" and variant == "v1":
        variant = ""
    return sys.intern("/".join(p for p in (os, architecture, variant) if p))


def parse(text: str) -> str:
    """A platform as a user writes it (`linux/arm64`, `linux/arm/v7`); ValueError saying what is wrong."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"{text!r} is not a platform: write os/architecture[/variant], e.g. linux/arm64")
    return platform(*parts)


def _split(value: str) -> tuple[str, str, str]:
    os, architecture, *rest = value.split("/")
    return os, architecture, rest[0] if rest else ""


def _variant_number(variant: str) -> int | None:
    return int(variant[1:]) if variant[:1] == "v" and variant[1:].isdigit() else None


def accepted(node: str) -> tuple[str, ...]:
    """The platforms a node of platform `node` pulls, best first (containerd's `platformVector`)."""
    os, architecture, variant = _split(node)
    vector = [node]
    number = _variant_number(variant)
    if architecture == "amd64":
        if number is not None and number > 1:  # amd64/v3 takes v2 and v1 (written bare)
            vector += [f"{os}/amd64/v{n}" for n in range(number - 1, 1, -1)] + [f"{os}/amd64"]
        vector.append(f"{os}/386")
    elif architecture == "arm" and number is not None:
        vector += [f"{os}/arm/v{n}" for n in range(number - 1, 4, -1)]
    elif architecture == "arm64":
        vector += [f"{os}/arm/v{n}" for n in range(8, 4, -1)]
    return tuple(dict.fromkeys(vector))


def covers(offered: Iterable[str], node: str) -> bool:
    """Whether an image offering these platforms has one a node of platform `node` pulls."""
    offered = set(offered)
    return any(p in offered for p in accepted(node))


def lacking(offered: frozenset[str], needed: Iterable[str]) -> tuple[str, ...]:
    """The needed platforms the image does not serve, sorted."""
    return tuple(sorted(p for p in set(needed) if not covers(offered, p)))


def of_index(manifests: Any) -> frozenset[str] | None:
    """The platforms an index's `manifests` serve; attestation manifests (`unknown/unknown`) are none. None when an
    entry names no platform: containerd pulls such an entry on any node, so nothing can be said to be lacking."""
    found = set()
    for entry in manifests if isinstance(manifests, list) else ():
        if not isinstance(entry, dict):
            continue
        annotations = entry.get("annotations")
        if isinstance(annotations, dict) and "vnd.docker.reference.type" in annotations:
            continue  # an attestation, whatever its platform says
        spec = entry.get("platform")
        if not isinstance(spec, dict):
            return None
        if UNKNOWN in (spec.get("os"), spec.get("architecture")):
            continue
        if value := platform(spec.get("os", ""), spec.get("architecture", ""), spec.get("variant", "")):
            found.add(value)
    return frozenset(found)


def of_node(labels: Mapping[str, Any], node_info: Mapping[str, Any]) -> str:
    """A node's platform: its `kubernetes.io/os` and `/arch` labels, else its `status.nodeInfo`. Kubernetes labels
    no variant: an arm node is taken as `arm/v7`, containerd's default."""
    os = next((labels[k] for k in OS_LABELS if isinstance(labels.get(k), str)), node_info.get("operatingSystem", ""))
    arch = next((labels[k] for k in ARCH_LABELS if isinstance(labels.get(k), str)), node_info.get("architecture", ""))
    return platform(os if isinstance(os, str) else "", arch if isinstance(arch, str) else "")


Requirement = tuple[str, str, frozenset[str]]  # ("os" | "arch", In | NotIn | Exists | DoesNotExist, values)


@dataclass(frozen=True, slots=True)
class Constraint:
    """What a pod spec requires of its node's os and architecture: every requirement of `selector` and, when
    `terms` are given, every requirement of at least one term (required node affinity's terms are ORed)."""

    selector: tuple[Requirement, ...] = ()
    terms: tuple[tuple[Requirement, ...], ...] | None = None

    def allows(self, node: str) -> bool:
        os, architecture, _ = _split(node)
        values = {"os": os, "arch": architecture}
        if not all(_meets(r, values) for r in self.selector):
            return False
        return self.terms is None or any(all(_meets(r, values) for r in term) for term in self.terms)


ANYWHERE = Constraint()


def _meets(requirement: Requirement, values: Mapping[str, str]) -> bool:
    key, operator, wanted = requirement
    value = values[key]
    if operator == "In":
        return value in wanted
    if operator == "NotIn":
        return value not in wanted
    return operator == "Exists"  # every node has its os and arch labels; DoesNotExist matches none


def _key(label: Any) -> str | None:
    if label in OS_LABELS:
        return "os"
    if label in ARCH_LABELS:
        return "arch"
    return None


def _arch(key: str, value: str) -> str:
    return _ARCH.get(value, value) if key == "arch" else value


def constraint(spec: Mapping[str, Any]) -> Constraint:
    """The os/arch part of a pod spec's `nodeSelector` and `requiredDuringSchedulingIgnoredDuringExecution`."""
    selector = []
    node_selector = spec.get("nodeSelector")
    for label, value in (node_selector.items() if isinstance(node_selector, dict) else ()):
        if (key := _key(label)) is not None and isinstance(value, str):
            selector.append((key, "In", frozenset({_arch(key, value)})))
    terms = None
    affinity = spec.get("affinity")
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    required = (node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
                if isinstance(node_affinity, dict) else None)
    raw_terms = required.get("nodeSelectorTerms") if isinstance(required, dict) else None
    if isinstance(raw_terms, list) and raw_terms:
        terms = tuple(_term(term) for term in raw_terms if isinstance(term, dict))
        if any(not term for term in terms):  # a term on other labels only: any platform may satisfy it
            terms = None
    if not selector and terms is None:
        return ANYWHERE
    return Constraint(tuple(selector), terms)


def _term(term: Mapping[str, Any]) -> tuple[Requirement, ...]:
    requirements = []
    for expression in term.get("matchExpressions") or ():
        if not isinstance(expression, dict) or (key := _key(expression.get("key"))) is None:
            continue
        values = expression.get("values") if isinstance(expression.get("values"), list) else []
        requirements.append((key, str(expression.get("operator", "")),
                             frozenset(_arch(key, str(v)) for v in values)))
    return tuple(requirements)
