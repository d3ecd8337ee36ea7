"""What a registry holds beside a digest, read from Debian's docker-registry (no referrers API: cosign's legacy tags
and the referrers tag schema) and through a strict front that has the API; a mirror that copied an image without
its signature has none to show."""

import pytest

from exporter.model.admission import NOTARY_SIGNATURE, SIGSTORE_BUNDLE, Artifact, Evidence
from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import ANONYMOUS, Credential, Keyring
from exporter.sources.registry.settings import from_options
from exporter.sources.registry.signatures import Signatures, Wanted
from tests.support import registry as real
from tests.support.referrers import ReferrersFront

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed (scripts/setup installs it)")

SLSA = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def signed_registry(tmp_path_factory):
    """Token auth; shop/signed:1 with cosign's .sig and .att tags, shop/notary:1 signed with notation through the
    referrers tag schema, shop/plain:1 unsigned."""
    reg = real.Registry(tmp_path_factory.mktemp("signed"), "token")
    reg.signed = reg.push_image("shop/signed", "1")
    reg.push_cosign_signature("shop/signed", reg.signed)
    reg.push_cosign_attestation("shop/signed", reg.signed, SLSA)
    reg.notary = reg.push_image("shop/notary", "1")
    reg.push_referrers_tag("shop/notary", reg.notary,
                           [reg.push_referrer("shop/notary", reg.notary, NOTARY_SIGNATURE)])
    reg.plain = reg.push_image("shop/plain", "1")
    yield reg
    reg.stop()


def test_cosign_tags_and_the_referrers_tag_schema_where_the_registry_has_no_referrers_api(signed_registry):
    reg = signed_registry
    creds = Keyring.of([Credential(reg.host, "alice", "wonderland", source="secret shop/regcred")])
    checker = Checker(from_options(insecure=[reg.host]))
    signatures = Signatures(checker)

    def want(repository, digest):
        return Wanted(f"{reg.host}/{repository}@{digest}", creds, reg.host, referrers=True, signature_tag=True,
                      attestation_tag=True)

    found = signatures.evidence([want("shop/signed", reg.signed), want("shop/notary", reg.notary),
                                 want("shop/plain", reg.plain)])
    assert found == {
        f"{reg.host}/shop/signed@{reg.signed}": Evidence(True, frozenset({SLSA}), frozenset()),
        f"{reg.host}/shop/notary@{reg.notary}": Evidence(False, frozenset(), frozenset({Artifact(NOTARY_SIGNATURE)})),
        f"{reg.host}/shop/plain@{reg.plain}": Evidence(False, frozenset(), frozenset()),
    }
    # the ping, one digest probing the referrers API (404: the others are not asked it), then each one's three tags
    assert checker.stats.total("GET") == 1 + 1 + 3 * 3
    sent = checker.stats.total()
    assert signatures.evidence([want("shop/plain", reg.plain)]) == {f"{reg.host}/shop/plain@{reg.plain}": Evidence()}
    assert checker.stats.total() == sent  # kept by digest
    # the referrers API answered 404: this registry has none, and is not asked it again (the tag schema is)
    notary_again = Wanted(f"{reg.host}/shop/notary@{reg.notary}", creds, reg.host)
    assert signatures.evidence([notary_again]) == {notary_again.image: Evidence(referrers=frozenset(
        {Artifact(NOTARY_SIGNATURE)}))}
    assert checker.stats.total() == sent + 1


def test_what_cannot_be_read_is_no_evidence(signed_registry):
    reg = signed_registry
    checker = Checker(from_options(insecure=[reg.host]))
    wrong = Keyring.of([Credential(reg.host, "alice", "not her password")])
    image = f"{reg.host}/shop/signed@{reg.signed}"
    assert Signatures(checker).evidence([Wanted(image, wrong, reg.host, signature_tag=True)]) == {}


@pytest.fixture
def front_registry(tmp_path):
    reg = real.Registry(tmp_path, "none")
    front = ReferrersFront(reg.url)
    yield reg, front
    front.stop()
    reg.stop()


def test_the_referrers_api_lists_bundles_and_no_tag_is_asked_for(front_registry):
    reg, front = front_registry
    digest = reg.push_image("shop/app", "1")
    reg.push_referrer("shop/app", digest, SIGSTORE_BUNDLE, url=front.url)
    reg.push_referrer("shop/app", digest, SIGSTORE_BUNDLE, {"dev.sigstore.bundle.predicateType": SLSA}, url=front.url)
    checker = Checker(from_options(insecure=[front.host]))
    image = f"{front.host}/shop/app@{digest}"
    found = Signatures(checker).evidence([Wanted(image, ANONYMOUS, front.host)])
    assert found == {image: Evidence(referrers=frozenset({Artifact(SIGSTORE_BUNDLE), Artifact(SIGSTORE_BUNDLE, SLSA)}))}
    assert front.total("referrers") == 1 and front.requests[("GET", "manifests")] == 0  # no tag schema


def test_a_signature_deleted_is_seen_once_the_evidence_ages(front_registry):
    reg, front = front_registry
    digest = reg.push_image("shop/app", "1")
    referrer = reg.push_referrer("shop/app", digest, SIGSTORE_BUNDLE, url=front.url)
    now = [0.0]
    checker = Checker(from_options(insecure=[front.host]), monotonic=lambda: now[0])
    signatures, image = Signatures(checker), f"{front.host}/shop/app@{digest}"
    assert signatures.evidence([Wanted(image, ANONYMOUS, front.host)])[image].referrers
    front._http.delete(f"{front.url}/v2/shop/app/manifests/{referrer['digest']}")  # through the front: it forgets
    assert signatures.evidence([Wanted(image, ANONYMOUS, front.host)])[image].referrers  # kept for a while
    now[0] += checker.settings.ttl[Status.AVAILABLE] + 1
    assert signatures.evidence([Wanted(image, ANONYMOUS, front.host)])[image].referrers == frozenset()


def test_a_mirror_that_copied_the_image_but_not_its_signature_shows_none(tmp_path):
    (tmp_path / "up").mkdir()
    (tmp_path / "mirror").mkdir()
    upstream, mirror = real.Registry(tmp_path / "up", "none"), real.Registry(tmp_path / "mirror", "none")
    try:
        digest = upstream.push_image("shop/app", "1")
        upstream.push_cosign_signature("shop/app", digest)
        assert mirror.push_image("shop/app", "1") == digest  # the same image, copied without its .sig tag
        checker = Checker(from_options(insecure=[upstream.host, mirror.host],
                                       mirrors=[f"{upstream.host}={mirror.host}"]))
        [result] = checker.check_many([(f"{upstream.host}/shop/app:1", ANONYMOUS)]).values()
        assert (result.status, result.endpoint) == (Status.AVAILABLE, mirror.host)  # the mirror serves the pulls
        image = f"{upstream.host}/shop/app@{digest}"
        found = Signatures(checker).evidence([Wanted(image, ANONYMOUS, result.endpoint, referrers=False,
                                                     signature_tag=True)])
        assert found == {image: Evidence(cosign_signature_tag=False)}
        direct = Signatures(checker).evidence([Wanted(image, ANONYMOUS, upstream.host, referrers=False,
                                                      signature_tag=True)])
        assert direct == {image: Evidence(cosign_signature_tag=True)}
    finally:
        upstream.stop()
        mirror.stop()
