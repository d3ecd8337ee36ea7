"""Pull secrets and docker config files, matched as the kubelet matches them."""

import base64
import json

import pytest

from exporter.sources.registry.credentials import (
    CredentialError,
    Keyring,
    from_docker_config_file,
    from_secret,
)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(auths, kind="kubernetes.io/dockerconfigjson", name="regcred"):
    if kind == "kubernetes.io/dockerconfigjson":
        data = {".dockerconfigjson": b64(json.dumps({"auths": auths}))}
    else:
        data = {".dockercfg": b64(json.dumps(auths))}
    return {"metadata": {"namespace": "shop", "name": name}, "type": kind, "data": data}


def test_dockerconfigjson_forms_auth_username_password_identitytoken():
    creds = from_secret(secret({
        "a.example.com": {"auth": b64("alice:s3cret")},
        "b.example.com": {"username": "bob", "password": "pw"},
        "c.example.com": {"identitytoken": "tok"},
    }))
    got = {c.key: (c.username, c.password, c.identity_token) for c in creds}
    assert got == {"a.example.com": ("alice", "s3cret", ""), "b.example.com": ("bob", "pw", ""),
                   "c.example.com": ("", "", "tok")}
    assert all(c.source == "secret shop/regcred" for c in creds)


def test_legacy_dockercfg():
    [cred] = from_secret(secret({"https://index.docker.io/v1/": {"auth": b64("u:p")}}, "kubernetes.io/dockercfg"))
    assert (cred.host, cred.username) == ("docker.io", "u")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"metadata": {"namespace": "a", "name": "s"}, "type": "Opaque", "data": {}}, "not a pull secret type"),
        ({"metadata": {"namespace": "a", "name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {}}, "has no .dockerconfigjson"),
        ({"metadata": {"namespace": "a", "name": "s"}, "type": "kubernetes.io/dockerconfigjson",
          "data": {".dockerconfigjson": "!!!notbase64"}}, "not base64 of JSON"),
        (secret({"x": {"auth": "%%%"}}), "not base64 of user:password"),
        (secret({"x": {"auth": b64("no-colon")}}), "not user:password"),
    ],
)
def test_garbage_secrets_name_the_secret_not_its_content(bad, message):
    with pytest.raises(CredentialError, match=message) as err:
        from_secret(bad)
    assert "no-colon" not in str(err.value) and "%%%" not in str(err.value)


def test_secret_content_never_in_repr():
    [cred] = from_secret(secret({"a.example.com": {"auth": b64("alice:s3cret")}}))
    assert "s3cret" not in repr(cred) and "s3cret" not in repr(Keyring.of([cred]))


def test_matching_most_specific_path_first_and_docker_hub_aliases():
    creds = from_secret(secret({
        "registry.example.com": {"auth": b64("host:1")},
        "https://registry.example.com/team": {"auth": b64("team:2")},
        "registry.example.com/team/app": {"auth": b64("app:3")},
        "https://index.docker.io/v1/": {"auth": b64("hub:4")},
    }))
    ring = Keyring.of(creds)
    assert [c.username for c in ring.match("registry.example.com", "team/app")] == ["app", "team", "host"]
    assert [c.username for c in ring.match("registry.example.com", "team/application")] == ["team", "host"]
    assert [c.username for c in ring.match("registry.example.com", "other/x")] == ["host"]
    assert [c.username for c in ring.match("docker.io", "library/nginx")] == ["hub"]
    assert ring.match("quay.io", "x/y") == []


def test_fingerprints_differ_by_content_and_reveal_nothing():
    one = Keyring.of(from_secret(secret({"a.example.com": {"auth": b64("alice:one")}})))
    two = Keyring.of(from_secret(secret({"a.example.com": {"auth": b64("alice:two")}})))
    assert one.fingerprint != two.fingerprint and Keyring().fingerprint == "anonymous"
    assert "alice" not in one.fingerprint


def test_docker_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"quay.io": {"auth": b64("q:p")}}, "credsStore": "desktop"}))
    [cred] = from_docker_config_file(path)
    assert cred.host == "quay.io"
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(CredentialError, match="not JSON"):
        from_docker_config_file(tmp_path / "broken.json")
    with pytest.raises(CredentialError, match="absent.json"):
        from_docker_config_file(tmp_path / "absent.json")


def test_a_dockercfg_file_is_read_in_its_older_format_under_the_name_given(tmp_path):
    path = tmp_path / ".dockercfg"
    path.write_text(json.dumps({"quay.io": {"auth": b64("q:p")}}))
    [cred] = from_docker_config_file(path, "node docker config X")
    assert (cred.host, cred.username, cred.source) == ("quay.io", "q", "node docker config X")
    path.write_text("{")
    with pytest.raises(CredentialError, match=r"^node docker config X:1:2: not JSON"):
        from_docker_config_file(path, "node docker config X")


def test_a_docker_config_is_read_bounded():
    with pytest.raises(CredentialError, match=r"^docker config /dev/zero: not a regular file"):
        from_docker_config_file("/dev/zero")
