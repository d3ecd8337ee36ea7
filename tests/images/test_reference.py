"""Reference parsing and normalization, as distribution/reference does it (REFERENCE.md §1)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.model.images import InvalidReference, digest_of_image_id, normalize, parse

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "text, registry, repository",
    [
        ("foo", "docker.io", "library/foo"),
        ("docker.io/foo", "docker.io", "library/foo"),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar"),
        ("library/foo/bar", "docker.io", "library/foo/bar"),
        ("test_com/foo", "docker.io", "test_com/foo"),
        ("localhost/foo", "localhost", "foo"),
        ("localhost:5000/foo", "localhost:5000", "foo"),
        ("127.0.0.1:8000/private/moonbase", "127.0.0.1:8000", "private/moonbase"),
        ("[::1]:5000/x", "[::1]:5000", "x"),
        ("Foo/bar", "Foo", "bar"),
    ],
)
def test_reference_table(text, registry, repository):
    ref = parse(text)
    assert (ref.registry, ref.repository) == (registry, repository)


@pytest.mark.parametrize(
    "text, message",
    [
        ("example.com/Foo", "must be lowercase"),
        ("a" * 64, "64-byte hexadecimal"),
        ("", "empty"),
        (" nginx", "whitespace"),
        ("nginx:", "invalid reference format"),
        ("nginx@sha256:abc", "invalid reference format"),
        ("example.com/" + "a" * 300, "255 characters"),
        ("nginx:" + "t" * 129, "invalid reference format"),
        ("x" * 5000, "too long"),
        ("/etc/passwd", "invalid"),
    ],
)
def test_invalid_references_say_what_is_wrong(text, message):
    with pytest.raises(InvalidReference, match=message):
        parse(text)


def test_tag_and_digest_both_kept_and_the_digest_is_checked():
    ref = parse(f"quay.io/jetstack/cert-manager-controller:v1.16.2@{DIGEST}")
    assert (ref.tag, ref.digest) == ("v1.16.2", DIGEST)
    assert ref.manifest_reference == DIGEST
    assert str(ref) == f"quay.io/jetstack/cert-manager-controller:v1.16.2@{DIGEST}"


def test_digest_alone():
    ref = parse(f"busybox@{DIGEST}")
    assert (ref.name, ref.tag, ref.manifest_reference) == ("docker.io/library/busybox", None, DIGEST)


def test_tagless_reference_checks_latest_but_normalizes_without_tag():
    ref = parse("busybox")
    assert ref.manifest_reference == "latest"
    assert normalize("busybox") == "docker.io/library/busybox"


def test_ports_with_tags():
    ref = parse("registry.example.com:5000/team/app:1.0")
    assert (ref.registry, ref.repository, ref.tag) == ("registry.example.com:5000", "team/app", "1.0")


@pytest.mark.parametrize(
    "image_id, digest",
    [
        (f"docker-pullable://nginx@{DIGEST}", DIGEST),
        (f"docker.io/library/nginx@{DIGEST}", DIGEST),
        (DIGEST, None),  # a config digest, which no registry serves
        ("", None),
        (None, None),
        ("nginx@notadigest", None),
    ],
)
def test_digest_of_image_id(image_id, digest):
    assert digest_of_image_id(image_id) == digest


@given(st.text(max_size=80))
def test_parse_raises_nothing_but_invalid_reference(text):
    try:
        parse(text)
    except InvalidReference:
        pass


REFS = st.builds(
    lambda host, path, tag: f"{host}{path}{tag}",
    st.sampled_from(["", "docker.io/", "quay.io/", "localhost:5000/", "index.docker.io/"]),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["", ":1", ":v1.2.3", "@" + DIGEST, ":latest@" + DIGEST]),
)


@given(REFS)
def test_normalizing_is_a_fixed_point(text):
    once = normalize(text)
    assert normalize(once) == once


def test_docker_hub_is_asked_at_its_api_host_every_other_registry_at_itself():
    from exporter.model.images import api_host

    assert api_host(parse("nginx").registry) == "registry-1.docker.io"
    assert (api_host("quay.io"), api_host("localhost:5000")) == ("quay.io", "localhost:5000")
