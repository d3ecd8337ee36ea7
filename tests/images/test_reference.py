"""Reference parsing and normalization, as distribution/reference does it (REFERENCE.md §1)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.model.images import InvalidReference, _parsed, _plain, digest_of_image_id, normalize, parse

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


# near the common shape and just outside it: hosts with and without dots, ports, Docker Hub's, uppercase; components
# with every separator and a stray one; tags of every allowed character and a few that are not; paths near 255
NEAR_PLAIN = st.builds(
    lambda host, components, tag: f"{host}/{'/'.join(components)}{tag}",
    st.one_of(st.sampled_from(["docker.io", "index.docker.io", "localhost", "localhost:5000", "Quay.io", "a-.b",
                               "127.0.0.1:8000", "[::1]:5000", "x.y:", "example.com"]),
              st.from_regex(r"[a-zA-Z0-9-]{1,6}(\.[a-z0-9-]{1,6}){0,3}(:[0-9]{1,5})?", fullmatch=True)),
    st.lists(st.one_of(st.from_regex(r"[a-z0-9]{1,4}([._-]|__|--)?[a-z0-9]{0,4}", fullmatch=True),
                       st.sampled_from(["a" * 120, "A", "a..b", "_a", "a-", "a:b", ""])), min_size=1, max_size=4),
    st.one_of(st.just(""), st.from_regex(r":[A-Za-z0-9_.\-]{1,130}", fullmatch=True),
              st.sampled_from([":", ":-a", ":.a", "@" + DIGEST, ":v1@" + DIGEST, ":a b"])),
)


@settings(max_examples=300)  # about one in ten has the plain shape
@given(NEAR_PLAIN)
def test_the_plain_shortcut_returns_what_the_library_returns(text):
    """`parse` answers the common shape without the library: wherever it does, the library agrees exactly."""
    plain = _plain(text)
    if plain is not None:
        assert plain == _parsed(text)


def test_the_plain_shortcut_takes_the_common_shape_and_leaves_the_rest():
    assert _plain("registry.example.com:5000/team/app:v1.2") is not None
    assert _plain("quay.io/" + "/".join(["a" * 50] * 5)) is not None  # 254 characters of path
    for other in ("nginx", "team/app", "docker.io/app", "index.docker.io/a/b", "localhost:5000/a",
                  "quay.io/a@" + DIGEST, "Quay.io/a"):
        assert _plain(other) is None
        assert parse(other) == _parsed(other)
    too_long = "quay.io/" + "/".join(["a" * 51] * 5)
    assert _plain(too_long) is None
    with pytest.raises(InvalidReference, match="255 characters"):
        parse(too_long)
