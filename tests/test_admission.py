"""Admission readiness as pure functions: what Kyverno and policy-controller policies require (read from their
objects), which references they cover, and which needs the evidence beside a digest leaves unmet."""

import pytest

from exporter.model.admission import (
    COSIGN_SIGNATURE, NOTARY_SIGNATURE, SIGNATURE, SIGSTORE_BUNDLE, Artifact, Evidence, Mode, Need, Where, covers,
    flag_policy, matches, reads, unmet,
)
from exporter.model.manifests import read_document
from exporter.model.records import Reference, Status
from exporter.snapshot import admission
from exporter.snapshot.join import ImageState, join
from exporter.sources.kube.policies import trim_policy

SLSA = "https://slsa.dev/provenance/v1"
SBOM = "https://spdx.dev/Document"


def kyverno(name, *entries, action="Enforce", kind="ClusterPolicy", namespace=None, match=None, exclude=None):
    rule = {"name": "verify", "match": match or {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "verifyImages": list(entries)}
    if exclude:
        rule["exclude"] = exclude
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "kyverno.io/v1", "kind": kind, "metadata": metadata,
            "spec": {"validationFailureAction": action, "rules": [rule]}}


KEY = [{"entries": [{"keys": {"publicKeys": "-----BEGIN PUBLIC KEY-----..."}}]}]


def test_a_kyverno_policy_requires_a_signature_and_the_attestations_it_names_where_it_reads_them():
    policy = trim_policy(kyverno("signed", {"imageReferences": ["ghcr.io/acme/*"], "attestors": KEY,
                                            "attestations": [{"predicateType": SLSA}],
                                            "skipImageReferences": ["ghcr.io/acme/debug*"]}))
    assert (policy.name, policy.mode, policy.namespace) == ("ClusterPolicy/signed", Mode.ENFORCE, "")
    [rule] = policy.rules
    assert rule.needs == (SIGNATURE, Need("attestation", SLSA)) and rule.where is Where.COSIGN_TAGS
    assert covers(rule, "ghcr.io/acme/team/web:1", "shop", "Deployment", None)  # `*` crosses `/` in Kyverno
    assert not covers(rule, "ghcr.io/acme/debug-tools:1", "shop", "Deployment", None)
    assert not covers(rule, "docker.io/library/nginx:1", "shop", "Deployment", None)


@pytest.mark.parametrize("entry, where, mode", [
    ({"cosignOCI11": True}, Where.COSIGN_REFERRERS, Mode.ENFORCE),
    ({"type": "Notary"}, Where.NOTARY, Mode.ENFORCE),
    ({"failureAction": "Audit"}, Where.COSIGN_TAGS, Mode.AUDIT),
])
def test_kyverno_fields_that_change_where_it_reads_or_whether_it_rejects(entry, where, mode):
    [rule] = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY, **entry})).rules
    assert rule.where is where
    assert trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY, **entry})).mode is mode


def test_kyverno_policies_that_require_nothing_have_no_rules():
    assert trim_policy(kyverno("optional", {"imageReferences": ["*"], "attestors": KEY, "required": False})).rules == ()
    assert trim_policy(kyverno("digest-only", {"imageReferences": ["*"], "verifyDigest": True})).rules == ()
    assert trim_policy({"kind": "ClusterPolicy", "spec": {"rules": "garbage"}}).rules == ()
    assert trim_policy({"kind": "ClusterPolicy", "spec": []}).rules == ()
    assert trim_policy(kyverno("audit", {"imageReferences": ["*"], "attestors": KEY}, action="Audit")).mode is Mode.AUDIT


def test_a_kyverno_rule_covers_the_kinds_and_namespaces_it_matches_and_not_those_it_excludes():
    match = {"any": [{"resources": {"kinds": ["Deployment"], "namespaces": ["prod-*"]}}]}
    exclude = {"any": [{"resources": {"namespaces": ["prod-sandbox"]}}]}
    [rule] = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY}, match=match,
                                 exclude=exclude)).rules
    assert covers(rule, "r.example/a:1", "prod-eu", "Deployment", None)
    assert not covers(rule, "r.example/a:1", "prod-eu", "CronJob", None)
    assert not covers(rule, "r.example/a:1", "dev", "Deployment", None)
    assert not covers(rule, "r.example/a:1", "prod-sandbox", "Deployment", None)
    policy = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY}, kind="Policy", namespace="shop"))
    assert (policy.name, policy.namespace) == ("Policy/shop/p", "shop")


def cip(name, *authorities, globs=("ghcr.io/acme/**",), mode=None):
    spec = {"images": [{"glob": g} for g in globs], "authorities": list(authorities)}
    if mode:
        spec["mode"] = mode
    return {"apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy", "metadata": {"name": name},
            "spec": spec}


def test_a_cluster_image_policy_requires_a_signature_in_opted_in_namespaces():
    policy = trim_policy(cip("acme", {"keyless": {"url": "https://fulcio.sigstore.dev"},
                                      "attestations": [{"name": "p", "predicateType": SLSA}]}))
    [rule] = policy.rules
    assert policy.name == "ClusterImagePolicy/acme" and policy.mode is Mode.ENFORCE
    assert rule.needs == (SIGNATURE, Need("attestation", SLSA)) and rule.where is Where.COSIGN_ANY
    assert covers(rule, "ghcr.io/acme/team/web:1", "shop", "Deployment", frozenset({"shop"}))
    assert not covers(rule, "ghcr.io/acme/team/web:1", "dev", "Deployment", frozenset({"shop"}))


def test_cluster_image_policy_authorities_are_alternatives():
    either = trim_policy(cip("p", {"key": {"data": "k"}, "attestations": [{"predicateType": SLSA}]},
                             {"keyless": {}}))
    assert either.rules[0].needs == (SIGNATURE,)  # one authority asks no attestation: none is required
    assert trim_policy(cip("p", {"static": {"action": "pass"}})).rules == ()
    assert trim_policy(cip("p", {"key": {}}, mode="warn")).mode is Mode.AUDIT


@pytest.mark.parametrize("glob, image, matched", [
    ("ghcr.io/acme/**", "ghcr.io/acme/team/web:1", True),
    ("ghcr.io/acme/*", "ghcr.io/acme/team/web:1", False),  # `*` stops at `/` in policy-controller's globs
    ("ghcr.io/acme/*", "ghcr.io/acme/web:1", True),
    ("index.docker.io/library/*", "docker.io/library/nginx:1.27", True),  # how policy-controller names Docker Hub
])
def test_sigstore_globs(glob, image, matched):
    [rule] = trim_policy(cip("p", {"key": {}}, globs=(glob,))).rules
    assert covers(rule, image, "ns", "Pod", None) is matched


def test_kyverno_wildcards_match_any_character_slash_included():
    assert matches("ghcr.io/*/web:*", "ghcr.io/a/b/web:1") and matches("*", "anything/at:all")
    assert not matches("ghcr.io/acme/web:1", "ghcr.io/acme/web:10") and matches("web:?", "web:1")


LEGACY = Evidence(cosign_signature_tag=True, cosign_attestation_types=frozenset({SLSA}), referrers=frozenset())
BUNDLES = Evidence(referrers=frozenset({Artifact(SIGSTORE_BUNDLE), Artifact(SIGSTORE_BUNDLE, SLSA)}))
NOTATION = Evidence(referrers=frozenset({Artifact(NOTARY_SIGNATURE)}))
COSIGN_OCI11 = Evidence(referrers=frozenset({Artifact(COSIGN_SIGNATURE)}))
NOTHING = Evidence()


@pytest.mark.parametrize("where, evidence, signed", [
    (Where.COSIGN_TAGS, LEGACY, True),
    (Where.COSIGN_TAGS, BUNDLES, False),  # signatures moved to referrers; Kyverno without cosignOCI11 sees none
    (Where.COSIGN_REFERRERS, BUNDLES, True),
    (Where.COSIGN_REFERRERS, COSIGN_OCI11, True),
    (Where.COSIGN_REFERRERS, LEGACY, False),
    (Where.COSIGN_ANY, LEGACY, True), (Where.COSIGN_ANY, BUNDLES, True), (Where.COSIGN_ANY, NOTATION, False),
    (Where.NOTARY, NOTATION, True), (Where.NOTARY, BUNDLES, False),
    (Where.ANY, NOTATION, True), (Where.ANY, LEGACY, True), (Where.ANY, NOTHING, False),
])
def test_a_signature_counts_where_the_verifier_reads_it(where, evidence, signed):
    rule = flag_policy("*").rules[0]
    rule = type(rule)(rule.images, (SIGNATURE,), where)
    assert (unmet(rule, evidence) == ()) is signed


def test_an_attestation_counts_by_its_predicate_type():
    [rule] = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestations": [{"predicateType": SBOM}],
                                       "cosignOCI11": True})).rules
    assert unmet(rule, BUNDLES) == (Need("attestation", SBOM),)  # an SLSA bundle is no SBOM
    assert unmet(rule, Evidence(referrers=frozenset({Artifact(SIGSTORE_BUNDLE, SBOM)}))) == ()


def test_what_the_registry_is_asked_follows_where_the_verifiers_read():
    tags = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY})).rules[0]
    oci11 = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY, "cosignOCI11": True})).rules[0]
    attest = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestations": [{"predicateType": SLSA}]})).rules[0]
    assert reads([tags]) == (False, True, False)  # only the `.sig` tag
    assert reads([oci11]) == (True, False, False)
    assert reads([attest, oci11]) == (True, False, True)


def test_referrers_and_attestation_manifests_are_read_from_their_documents():
    referrers = read_document({"schemaVersion": 2, "manifests": [
        {"digest": "sha256:a", "artifactType": SIGSTORE_BUNDLE,
         "annotations": {"dev.sigstore.bundle.predicateType": SLSA}},
        {"digest": "sha256:b", "artifactType": NOTARY_SIGNATURE}, {"digest": "sha256:c"}]})
    assert referrers.artifacts == {Artifact(SIGSTORE_BUNDLE, SLSA), Artifact(NOTARY_SIGNATURE)}
    att = read_document({"config": {"digest": "sha256:d"}, "layers": [
        {"mediaType": "application/vnd.dsse.envelope.v1+json", "annotations": {"predicateType": SBOM}}]})
    assert att.predicates == {SBOM}


def ref(workload, image="ghcr.io/acme/web:1", namespace="shop", running=""):
    return Reference("c", namespace, "Deployment", workload, "main", "container", image, None, running_digest=running)


class Keyring:
    fingerprint = "anonymous"


class Result:
    def __init__(self, digest, status=Status.AVAILABLE, endpoint="ghcr.io"):
        self.status, self.digest, self.endpoint, self.media_type = status, digest, endpoint, None


def test_only_covered_references_are_read_and_judged_by_the_digest_they_run():
    policy = trim_policy(kyverno("signed", {"imageReferences": ["ghcr.io/acme/*"], "attestors": KEY}))
    runs_old, fresh, other = ref("old", running="sha256:old"), ref("fresh"), ref("x", image="quay.io/x:1")
    refs = [(runs_old, Keyring()), (fresh, Keyring()), (other, Keyring())]
    covering = admission.requirements([r for r, _ in refs], {"c": [policy]}, {"c": None})
    assert set(covering) == {runs_old, fresh}  # an image no policy covers needs nothing
    results = {("ghcr.io/acme/web:1", "anonymous"): Result("sha256:new"), ("quay.io/x:1", "anonymous"): Result("d")}
    wanted = admission.wanted(refs, covering, results)
    assert sorted((image, host, reads) for image, _, host, reads in wanted) == [
        ("ghcr.io/acme/web@sha256:new", "ghcr.io", (False, True, False)),
        ("ghcr.io/acme/web@sha256:old", "ghcr.io", (False, True, False))]
    evidence = {"ghcr.io/acme/web@sha256:new": LEGACY, "ghcr.io/acme/web@sha256:old": NOTHING}
    missing = admission.verdicts(refs, covering, results, evidence)
    assert missing == {runs_old: (("ClusterPolicy/signed", Mode.ENFORCE, SIGNATURE),)}
    assert admission.verdicts(refs, covering, results, {}) == {}  # nothing read: no verdict on a guess

    state = ImageState(Status.AVAILABLE, "ghcr.io", "sha256:new")
    snapshot = join([(r, state) for r, _ in refs], {}, {}, ["c"], 1.0, signatures=missing)
    assert [labels[3:] for labels, _ in snapshot.series["kube_image_signature_missing"]] == [
        ("old", "main", "container", "ghcr.io/acme/web:1", "", "ClusterPolicy/signed", "signature", "", "enforce")]
    assert snapshot.series["kube_image_missing"] == ()  # the image is there: a signature is its own question


def test_a_namespaced_policy_covers_its_namespace_only():
    policy = trim_policy(kyverno("p", {"imageReferences": ["*"], "attestors": KEY}, kind="Policy", namespace="shop"))
    covering = admission.requirements([ref("a"), ref("b", namespace="dev")], {"c": [policy]}, {})
    assert set(covering) == {ref("a")}
