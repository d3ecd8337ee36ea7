"""Checks against Debian's docker-registry on 127.0.0.1: no auth, Basic (htpasswd) and token auth."""

from exporter.model.records import Status
from exporter.sources.registry.credentials import ANONYMOUS, Credential, Keyring
from tests.registry.conftest import checker_for


def keyring(reg, password="wonderland", source="secret shop/regcred"):
    return Keyring.of([Credential(reg.host, "alice", password, source=source)])


def test_present_tags_and_digests_are_available_with_their_digest(loaded_registry):
    reg = loaded_registry
    checker = checker_for(reg)
    creds = keyring(reg)
    images = {
        "oci": f"{reg.host}/team/app:1.0",
        "docker": f"{reg.host}/team/app:docker",
        "pinned": f"{reg.host}/team/app@{reg.digests['oci']}",
        "tag+digest": f"{reg.host}/team/app:whatever@{reg.digests['oci']}",
    }
    results = checker.check_many((image, creds) for image in images.values())
    by_name = {name: results[(image, creds.fingerprint)] for name, image in images.items()}
    assert {n: r.status for n, r in by_name.items()} == dict.fromkeys(images, Status.AVAILABLE)
    assert by_name["oci"].digest == reg.digests["oci"]
    assert by_name["docker"].digest == reg.digests["docker"]
    assert by_name["tag+digest"].digest == reg.digests["oci"]  # the digest is checked, not the tag


def test_absent_tag_repository_and_digest(loaded_registry):
    reg = loaded_registry
    checker = checker_for(reg)
    creds = keyring(reg)
    missing = [f"{reg.host}/team/app:nope", f"{reg.host}/team/nothing:1", f"{reg.host}/team/app@sha256:" + "0" * 64]
    results = checker.check_many((image, creds) for image in missing)
    assert {r.status for r in results.values()} == {Status.ABSENT}


def test_index_is_available(loaded_registry):
    reg = loaded_registry
    result = checker_for(reg).check_many([(f"{reg.host}/public/multi:1", keyring(reg))])
    [r] = result.values()
    assert (r.status, r.digest) == (Status.AVAILABLE, reg.digests["index"])
    assert r.media_type == "application/vnd.oci.image.index.v1+json"


def test_index_children_read_once_and_kept(loaded_registry):
    reg = loaded_registry
    checker = checker_for(reg)
    creds = keyring(reg)
    index = f"{reg.host}/public/multi@{reg.digests['index']}"
    single = f"{reg.host}/team/app@{reg.digests['oci']}"
    children = checker.index_children([(index, creds), (single, creds)])
    platform = checker.check_many([(f"{reg.host}/public/multi:1-linux-amd64", creds)])
    assert set(children) == {index}  # a single-platform manifest has no children
    assert next(iter(platform.values())).digest in children[index] and len(children[index]) == 2
    sent = checker.stats.total()
    # the /v2/ ping, one GET of each manifest, and the single manifest's config blob (its platform)
    assert checker.stats.total("GET") == 1 + 2 + 1
    assert checker.index_children([(index, creds), (single, creds)]) == children
    assert checker.stats.total() == sent  # kept: a digest never changes


def test_credentials_decide_per_keyring_and_never_leak(loaded_registry):
    reg = loaded_registry
    checker = checker_for(reg)
    good, bad = keyring(reg), keyring(reg, "wrong", "secret other/regcred")
    image = f"{reg.host}/team/app:1.0"
    results = checker.check_many([(image, good), (image, bad), (image, ANONYMOUS)])
    expected_without = Status.AVAILABLE if reg.auth == "none" else Status.UNAUTHORIZED
    assert results[(image, good.fingerprint)].status == Status.AVAILABLE
    assert results[(image, bad.fingerprint)].status == expected_without
    assert results[(image, ANONYMOUS.fingerprint)].status == expected_without
    for result in results.values():
        assert "wonderland" not in result.detail and "wrong" not in result.detail
    if reg.auth != "none":
        assert "other/regcred" in results[(image, bad.fingerprint)].detail


def test_one_request_per_unique_reference_and_none_inside_the_ttl(loaded_registry):
    reg = loaded_registry
    checker = checker_for(reg)
    creds = keyring(reg)
    images = [f"{reg.host}/team/app:1.0", f"{reg.host}/team/app:docker", f"{reg.host}/team/app:nope"]
    requests = [(image, creds) for image in images for _ in range(50)]  # 50 pods each
    rounds = []
    checker.check_many(requests, before_round=lambda: rounds.append(checker.stats.total()))
    heads = checker.stats.total("HEAD")
    assert heads == 3 and rounds == [0]  # told before the first request
    tokens = checker.stats.total("TOKEN")
    assert tokens == (1 if reg.auth == "token" else 0)  # one scope, one credential: one token
    checker.check_many(requests, before_round=lambda: rounds.append(checker.stats.total()))
    assert checker.stats.total() == heads + tokens + checker.stats.total("GET")  # nothing new
    assert rounds == [0]  # and no round to announce


def test_anonymous_token_pulls_public_repositories(loaded_registry):
    reg = loaded_registry
    [r] = checker_for(reg).check_many([(f"{reg.host}/public/multi:1", ANONYMOUS)]).values()
    assert r.status == (Status.UNAUTHORIZED if reg.auth == "basic" else Status.AVAILABLE)


def test_deleted_manifest_becomes_absent_after_the_cache(tmp_path):
    from tests.support.registry import Registry

    reg = Registry(tmp_path, "none")
    try:
        digest = reg.push_image("team/gone", "1")
        checker = checker_for(reg)
        image = f"{reg.host}/team/gone:1"
        assert checker.check_many([(image, ANONYMOUS)])[(image, "anonymous")].status == Status.AVAILABLE
        reg.delete("team/gone", digest)
        fresh = checker_for(reg)
        assert fresh.check_many([(image, ANONYMOUS)])[(image, "anonymous")].status == Status.ABSENT
    finally:
        reg.stop()


def test_tokens_for_many_repositories_are_fetched_several_scopes_at_a_time(tmp_path):
    from tests.support.registry import Registry

    reg = Registry(tmp_path, "token")
    try:
        images = []
        for i in range(25):
            reg.push_image(f"team/svc{i}", "1")
            images.append(f"{reg.host}/team/svc{i}:1")
        checker = checker_for(reg)
        creds = keyring(reg)
        results = checker.check_many((image, creds) for image in images)
        assert {r.status for r in results.values()} == {Status.AVAILABLE}
        assert checker.stats.total("HEAD") == 25
        assert checker.stats.total("TOKEN") == 3  # 25 scopes, 10 per token request
        assert max(len(scopes) for scopes in reg.token_server.scopes_seen) == 10
    finally:
        reg.stop()


def test_a_plain_http_registry_checked_over_tls_names_the_flag(loaded_registry):
    """The registry speaks plain HTTP and the exporter was not told: the TLS library's WRONG_VERSION_NUMBER
    would tell a new user nothing; the detail says what happened and which setting to use."""
    reg = loaded_registry
    from exporter.sources.registry.checker import Checker
    from exporter.sources.registry.settings import from_options

    result = Checker(from_options()).check_many([(f"{reg.host}/team/app:1.0", ANONYMOUS)])
    [verdict] = result.values()
    assert verdict.status == Status.TLS_ERROR
    assert "answered plain HTTP, not TLS" in verdict.detail
    assert f"--insecure-registry {reg.host}" in verdict.detail and "insecure_registries" in verdict.detail
