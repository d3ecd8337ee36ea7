"""What a registry holds beside a digest: its signatures and attestations (exporter.model.admission.Evidence).

Read where verifiers read them, in at most two rounds through the checker (same credentials, mirrors, load control
and pauses as every check):

1. the OCI 1.1 referrers API, `GET /v2/<name>/referrers/<digest>`: one request lists every referrer type (the
   exporter filters them itself, so a registry that ignores `artifactType` filters misleads nothing). A registry
   with the API never answers it 404; one that does has none, and is not asked again for an hour. A host not known
   yet is asked for one digest first;
2. where the API is missing, the referrers tag schema (`<name>:sha256-<hex>`, an index of the referrers); and, for
   verifiers that read them, cosign's legacy tags `sha256-<hex>.sig` and `.att` (its layers' predicate types).

Only the endpoint that served the image is asked: a mirror that copied an image without its signature has none
to show. What could not be read (refused, unreachable, paused) gives no evidence: no verdict on a guess. Evidence
is kept by digest for the lifetime of an available result, so a signature deleted later is seen within it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cachetools import TLRUCache

from exporter.model.admission import Evidence
from exporter.model.images import parse
from exporter.model.records import Status
from exporter.sources.registry.credentials import Keyring

if TYPE_CHECKING:
    from exporter.sources.registry.checker import Checker

NO_REFERRERS_API = 3600.0  # seconds a registry that answered 404 to the referrers API is not asked it again


@dataclass(frozen=True, slots=True)
class Wanted:
    """The evidence to read for one digest (`name@digest`) from the endpoint that served it."""

    image: str
    keyring: Keyring
    host: str  # the endpoint that served the image (a mirror's, when a mirror had it)
    referrers: bool = True
    signature_tag: bool = False  # cosign's `.sig`
    attestation_tag: bool = False  # cosign's `.att`


class Signatures:
    """Evidence by digest, read through a checker and kept; one per checker."""

    def __init__(self, checker: Checker) -> None:
        self._checker = checker
        ttl = checker.settings.ttl.get(Status.AVAILABLE, 1800)
        self._kept: TLRUCache = TLRUCache(maxsize=checker.settings.cache_size,
                                          ttu=lambda _key, _value, now: now + ttl, timer=checker._monotonic)
        self._no_api: dict[str, float] = {}  # host -> monotonic time its referrers API may be asked again
        self._has_api: set[str] = set()  # hosts whose referrers API answered

    def evidence(self, wanted: Iterable[Wanted]) -> dict[str, Evidence]:
        """What the registry holds beside each digest; a digest whose reads failed is left out."""
        answers: dict[str, Evidence] = {}
        todo: dict[tuple, Wanted] = {}
        for want in wanted:
            key = (want.image, want.host, want.referrers, want.signature_tag, want.attestation_tag)
            known = self._kept.get(key)
            if known is not None:
                answers[want.image] = known
            else:
                todo.setdefault(key, want)
        if todo:
            for key, found in self._read(list(todo.values())).items():
                self._kept[key] = answers[key[0]] = found
        return answers

    def _listed(self, wanted: list[Wanted], now: float) -> dict:
        """The referrers API's answers: one digest first on a host whose API is not known yet (a 404 there spares
        asking it for the others), then the rest where the API is known or the probe found it."""
        api = [w for w in wanted if w.referrers and self._no_api.get(w.host, 0.0) <= now]
        probes = {w.host: w for w in api if w.host not in self._has_api}
        listed = self._fetch([(w, w.image) for w in probes.values()], "referrers")
        for host, probe in probes.items():
            result = listed.get(probe.image)
            if result is not None and result.status == Status.ABSENT:
                self._no_api[host] = now + NO_REFERRERS_API
            elif result is not None and result.status == Status.AVAILABLE:
                self._has_api.add(host)
        rest = [w for w in api if w.host in self._has_api and w not in probes.values()]
        return {**listed, **self._fetch([(w, w.image) for w in rest], "referrers")}

    def _read(self, wanted: list[Wanted]) -> dict[tuple, Evidence]:
        now = self._checker._monotonic()
        listed = self._listed(wanted, now)
        tags: list[tuple[Wanted, str, str]] = []  # (wanted, what, image of the tag)
        for want in wanted:
            tag = tag_of(want.image)
            result = listed.get(want.image)
            if want.referrers and self._no_api.get(want.host, 0.0) > now:
                tags.append((want, "schema", tag))  # no referrers API there: the tag schema
            if want.signature_tag:
                tags.append((want, "sig", f"{tag}.sig"))
            if want.attestation_tag:
                tags.append((want, "att", f"{tag}.att"))
        read = self._fetch([(want, image) for want, _, image in tags], "manifests")
        out: dict[tuple, Evidence] = {}
        for want in wanted:
            evidence, complete = Evidence(referrers=None if want.referrers else frozenset()), True
            result = listed.get(want.image)
            if result is not None and result.status == Status.AVAILABLE and result.manifest is not None:
                evidence = replace(evidence, referrers=result.manifest.artifacts)
            for _, what, image in (t for t in tags if t[0] is want):
                result = read.get(image)
                if result is None or result.status not in (Status.AVAILABLE, Status.ABSENT):
                    complete = False
                    continue
                there = result.status == Status.AVAILABLE
                manifest = result.manifest
                if what == "schema":
                    evidence = replace(evidence, referrers=manifest.artifacts if there and manifest else frozenset())
                elif what == "sig":
                    evidence = replace(evidence, cosign_signature_tag=there)
                elif there and manifest is not None:
                    evidence = replace(evidence, cosign_attestation_types=manifest.predicates)
            if complete and (evidence.referrers is not None or not want.referrers):
                out[(want.image, want.host, want.referrers, want.signature_tag, want.attestation_tag)] = evidence
        return out

    def _fetch(self, items: list[tuple[Wanted, str]], path: str) -> dict:
        """GET each image (a digest's referrers, or a tag's manifest) from the endpoint that served its subject."""
        if not items:
            return {}
        checker = self._checker
        todo = [((image, want.keyring.fingerprint), (image, want.keyring)) for want, image in items]
        hosts = {image: want.host for want, image in items}
        jobs, known = checker.plan(todo)
        jobs = [replace(job, endpoints=tuple(e for e in job.endpoints if e.host == hosts[job.key[0]])
                        or job.endpoints) for job in jobs]
        results = {**known, **checker._round(jobs, fetch=True, path=path)}
        return {image: result for (image, _), result in results.items()}


def tag_of(image: str) -> str:
    """`name:sha256-<hex>` of a `name@sha256:<hex>` reference (the referrers tag schema; cosign's prefix)."""
    name, digest = parse(image).name, image.split("@", 1)[1]
    return f"{name}:{digest.replace(':', '-')}"
