"""What a manifest serves, read from Debian's docker-registry (token auth): OCI indexes with buildkit attestations,
Docker manifest lists, single manifests of another architecture (their config blob read), each digest read once."""

import pytest

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.settings import from_options
from tests.registry.conftest import checker_for
from tests.support import registry as real


@pytest.fixture(scope="module")
def platforms_registry(tmp_path_factory):
    reg = real.Registry(tmp_path_factory.mktemp("platforms"), "token")
    reg.pushed = {
        "oci-index": reg.push_index("multi/oci", "1", ("linux/amd64", "linux/arm64"), attestation=True)[0],
        "docker-list": reg.push_index("multi/docker", "1", ("linux/amd64", "linux/arm/v7"),
                                      media_type=real.DOCKER_LIST)[0],
        "arm64-only": reg.push_image("single/arm", "1", platform="linux/arm64"),
        "docker-v2": reg.push_image("single/docker", "1", real.DOCKER_MANIFEST, platform="linux/amd64"),
    }
    yield reg
    reg.stop()


def resolve(checker, reg, creds, repository):
    """The digest `repository:1` serves now, as a cycle's check learns it."""
    [result] = checker.check_many([(f"{reg.host}/{repository}:1", creds)]).values()
    assert result.status == Status.AVAILABLE
    return f"{reg.host}/{repository}@{result.digest}"


def test_each_kind_of_manifest_says_its_platforms_and_is_read_once(platforms_registry):
    reg = platforms_registry
    creds = Keyring.of([Credential(reg.host, "alice", "wonderland", source="secret shop/regcred")])
    checker = checker_for(reg)
    pinned = {name: resolve(checker, reg, creds, repository) for name, repository in [
        ("oci-index", "multi/oci"), ("docker-list", "multi/docker"), ("arm64-only", "single/arm"),
        ("docker-v2", "single/docker")]}
    before = checker.stats.total("GET")
    read = checker.manifests([(image, creds) for image in pinned.values()])
    assert {name: read[image].platforms for name, image in pinned.items()} == {
        "oci-index": {"linux/amd64", "linux/arm64"},  # the attestation manifest is no platform
        "docker-list": {"linux/amd64", "linux/arm/v7"},
        "arm64-only": {"linux/arm64"},  # from its config blob
        "docker-v2": {"linux/amd64"},
    }
    assert len(read[pinned["oci-index"]].children) == 3
    assert checker.stats.total("GET") - before == 4 + 2  # each manifest, and the config blob of each single one
    assert checker.manifests([(image, creds) for image in pinned.values()]) == read
    assert checker.stats.total("GET") - before == 6  # a digest never changes: nothing is read again


def test_a_manifest_gone_or_a_config_blob_refused_is_no_verdict_and_is_read_again_later(platforms_registry):
    reg = platforms_registry
    creds = Keyring.of([Credential(reg.host, "alice", "wonderland")])
    now = [1000.0]
    checker = Checker(from_options(insecure=[reg.host]), monotonic=lambda: now[0])
    gone = f"{reg.host}/single/arm@sha256:" + "0" * 64
    assert checker.manifests([(gone, creds)]) == {}
    sent = checker.stats.total("GET")
    assert checker.manifests([(gone, creds)]) == {} and checker.stats.total("GET") == sent  # within its TTL
    now[0] += checker.settings.ttl[Status.ABSENT] + 1
    assert checker.manifests([(gone, creds)]) == {} and checker.stats.total("GET") == sent + 1  # asked again
    wrong = Keyring.of([Credential(reg.host, "alice", "not her password")])
    assert checker.manifests([(f"{reg.host}/single/arm@{reg.pushed['arm64-only']}", wrong)]) == {}
