"""Credential provider config, plugin execution and the kubelet's cache, with a real plugin process."""

import logging
import os

import pytest

from exporter.common.durations import go_duration
from exporter.sources.registry.node import plugin, providers
from exporter.sources.registry.node.providers import (
    CredentialProviders,
    FailedCredential,
    ProviderConfigError,
    load_config,
    parse_config,
)
from tests.registry.node.conftest import provider_config

V1 = "kubelet.config.k8s.io/v1"


def config(*providers_, version=V1):
    return {"apiVersion": version, "kind": "CredentialProviderConfig", "providers": list(providers_)}


def provider(**fields):
    return {"name": "ecr-credential-provider", "matchImages": ["*.dkr.ecr.*.amazonaws.com"],
            "defaultCacheDuration": "12h", "apiVersion": "credentialprovider.kubelet.k8s.io/v1", **fields}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def runner(bin_dir, timeout=10.0):
    def run(spec, request):
        return plugin.run(bin_dir / spec.name, spec.args, providers.environment(spec, os.environ), request, timeout)
    return run


@pytest.mark.parametrize("text, seconds", [("6h", 21600), ("1m30s", 90), ("0", 0), ("0s", 0), ("500ms", 0.5),
                                           ("1h30m", 5400), ("1.5h", 5400), ("-5s", -5), ("+1m", 60), ("-0", 0)])
def test_go_durations(text, seconds):
    assert go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "1h 30m", "six hours", "--5s", "- 5s", "+", 6])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        go_duration(text)


def test_a_negative_default_cache_duration_is_refused():
    with pytest.raises(ProviderConfigError, match="defaultCacheDuration: must not be negative"):
        parse_config(config(provider(defaultCacheDuration="-1h")), "f")


@pytest.mark.parametrize("version", ["kubelet.config.k8s.io/v1", "kubelet.config.k8s.io/v1beta1",
                                     "kubelet.config.k8s.io/v1alpha1"])
def test_every_config_version_is_read(version):
    [spec] = parse_config(config(provider(args=["get-credentials"], env=[{"name": "AWS_PROFILE", "value": "x"}]),
                                 version=version), "f")
    assert spec.name == "ecr-credential-provider" and spec.default_cache_duration == 12 * 3600
    assert spec.args == ("get-credentials",) and spec.env == (("AWS_PROFILE", "x"),)
    assert "AWS_PROFILE" not in repr(spec)


@pytest.mark.parametrize("document, message", [
    ({"kind": "KubeletConfiguration", "apiVersion": V1}, "kind is 'KubeletConfiguration'"),
    (config(provider(), version="kubelet.config.k8s.io/v2"), "apiVersion 'kubelet.config.k8s.io/v2'"),
    (config(), "at least one provider"),
    (config(provider(name="../bin/x")), "must be a file name"),
    (config(provider(matchImages=[])), "matchImages: at least one"),
    (config(provider(matchImages=["host:port"])), "matchImages"),
    (config(provider(defaultCacheDuration=None)), "defaultCacheDuration: required"),
    (config(provider(defaultCacheDuration="soon")), "defaultCacheDuration"),
    (config(provider(apiVersion="credentialprovider.kubelet.k8s.io/v9")), "apiVersion"),
    (config(provider(), provider()), "unique (ecr-credential-provider)"),
    (config(provider(tokenAttributes={"requireServiceAccount": True})), "serviceAccountTokenAudience: required"),
    (config(provider(tokenAttributes={"serviceAccountTokenAudience": "a", "requireServiceAccount": True}),
            version="kubelet.config.k8s.io/v1beta1"), "only in kubelet.config.k8s.io/v1"),
])
def test_config_errors_name_the_file_and_field(document, message):
    with pytest.raises(ProviderConfigError, match="creds.yaml") as info:
        parse_config(document, "creds.yaml")
    assert message in str(info.value)


def test_load_config_reads_yaml(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n"
                    "- name: p\n  matchImages: ['*.example.com']\n  defaultCacheDuration: 1m\n"
                    "  apiVersion: credentialprovider.kubelet.k8s.io/v1\n")
    assert [s.name for s in load_config(path)] == ["p"]
    with pytest.raises(ProviderConfigError, match="not valid YAML"):
        (tmp_path / "bad.yaml").write_text("a: [")
        load_config(tmp_path / "bad.yaml")


def test_plugin_gets_the_request_args_and_env_and_its_answer_is_matched(tmp_path, make_plugin):
    p = make_plugin()
    p.answer(auth={"*.example.com": {"username": "u", "password": "pw"},
                   "registry.example.com/team": {"username": "team", "password": "tpw"},
                   "other.io": {"username": "o", "password": "opw"}})
    specs = load_config(provider_config(tmp_path / "c.json", [{
        "name": p.name, "matchImages": ["*.example.com"], "args": ["--flag"],
        "env": [{"name": "PLUGIN_ENV", "value": "from-config"}]}]))
    found = CredentialProviders(specs, runner(p.bin_dir)).credentials("registry.example.com/team/app")
    assert [(c.key, c.username) for c in found] == [("registry.example.com/team", "team"), ("*.example.com", "u")]
    assert found[0].source == f"credential provider {p.name}"
    assert p.calls() == [{"image": "registry.example.com/team/app", "args": ["--flag"], "env": "from-config",
                          "token": "", "annotations": None}]


def test_images_that_match_no_provider_run_nothing(tmp_path, make_plugin):
    p = make_plugin()
    specs = load_config(provider_config(tmp_path / "c.json", [{"name": p.name, "matchImages": ["*.example.com"]}]))
    assert CredentialProviders(specs, runner(p.bin_dir)).credentials("docker.io/library/nginx") == []
    assert p.calls() == []


@pytest.mark.parametrize("key_type, second, cached", [
    ("Image", "reg.example.com/team/app", True),
    ("Image", "reg.example.com/team/other", False),
    ("Registry", "reg.example.com/team/other", True),
    ("Registry", "eu.example.com/team/app", False),
    ("Global", "eu.example.com/team/app", True),
])
def test_cache_key_types(tmp_path, make_plugin, key_type, second, cached):
    p = make_plugin()
    p.answer(cacheKeyType=key_type, auth={"*.example.com": {"username": "u", "password": "pw"}})
    specs = load_config(provider_config(tmp_path / "c.json", [{"name": p.name, "matchImages": ["*.example.com"]}]))
    node = CredentialProviders(specs, runner(p.bin_dir), clock=Clock())
    node.credentials("reg.example.com/team/app")
    assert node.credentials(second)[0].username == "u"
    assert len(p.calls()) == (1 if cached else 2)


def test_cache_duration_then_default_then_zero(tmp_path, make_plugin):
    p = make_plugin()
    clock = Clock()
    specs = load_config(provider_config(tmp_path / "c.json", [
        {"name": p.name, "matchImages": ["*.example.com"], "defaultCacheDuration": "10m"}]))
    node = CredentialProviders(specs, runner(p.bin_dir), clock=clock)
    image = "reg.example.com/app"

    p.answer(cacheDuration="1m", auth={"*.example.com": {"username": "u", "password": "pw"}})
    node.credentials(image)
    clock.now += 59
    node.credentials(image)
    assert len(p.calls()) == 1  # inside the answer's cacheDuration
    clock.now += 2
    p.answer(auth={"*.example.com": {"username": "u", "password": "pw"}})  # no cacheDuration: the default
    node.credentials(image)
    clock.now += 599
    node.credentials(image)
    assert len(p.calls()) == 2
    clock.now += 2
    p.answer(cacheDuration="0s", auth={"*.example.com": {"username": "u", "password": "pw"}})
    node.credentials(image)
    node.credentials(image)
    assert len(p.calls()) == 4  # 0 keeps nothing: every lookup runs the plugin


def test_several_providers_combined_in_config_order(tmp_path, make_plugin):
    first, second = make_plugin("first"), make_plugin("second")
    first.answer(auth={"reg.example.com": {"username": "first", "password": "1"}})
    second.answer(auth={"reg.example.com": {"username": "second", "password": "2"},
                        "*.example.com": {"username": "wide", "password": "3"}})
    specs = load_config(provider_config(tmp_path / "c.json", [
        {"name": "first", "matchImages": ["reg.example.com"]},
        {"name": "second", "matchImages": ["*.example.com"]}]))
    found = CredentialProviders(specs, runner(first.bin_dir)).credentials("reg.example.com/app")
    # both are asked; the first provider's entry wins an overlapping key, the second adds its other key after
    assert [c.username for c in found] == ["first", "wide"]
    assert len(first.calls()) == len(second.calls()) == 1


@pytest.mark.parametrize("mode, why", [
    ("fail", "exited with status 1"),
    ("hang", "timed out after 1s"),
    ("garbage", "not JSON"),
    ("deep", "answered JSON nested deeper than 20 levels"),
    ("flood", "answered more than 1024 KiB"),
    ("wrong-version", "apiVersion 'v0'"),
])
def test_failures_name_the_provider_never_its_output(tmp_path, make_plugin, caplog, mode, why):
    p = make_plugin()
    p.answer(mode=mode, leak="hunter2")
    specs = load_config(provider_config(tmp_path / "c.json", [{"name": p.name, "matchImages": ["*.example.com"]}]))
    clock = Clock()
    node = CredentialProviders(specs, runner(p.bin_dir, timeout=1.0), clock=clock, failure_ttl=60)
    with caplog.at_level(logging.DEBUG):
        [failed] = node.credentials("reg.example.com/app")
        assert node.credentials("reg.example.com/other") == [failed]  # remembered: one timeout, not one per image
    assert isinstance(failed, FailedCredential)
    assert failed.source.startswith(f"credential provider {p.name}: ") and why in failed.source
    assert "hunter2" not in failed.source and "hunter2" not in caplog.text
    assert len(p.calls()) == 1
    clock.now += 61
    node.credentials("reg.example.com/app")
    assert len(p.calls()) == 2  # asked again once the failure is old


def test_missing_and_not_executable_plugins(tmp_path, make_plugin):
    p = make_plugin()
    specs = load_config(provider_config(tmp_path / "c.json", [{"name": "absent", "matchImages": ["*.example.com"]}]))
    [failed] = CredentialProviders(specs, runner(p.bin_dir)).credentials("reg.example.com/app")
    assert "credential provider absent: not found at" in failed.source
    p.path.chmod(0o644)
    specs = load_config(provider_config(tmp_path / "d.json", [{"name": p.name, "matchImages": ["*.example.com"]}]))
    [failed] = CredentialProviders(specs, runner(p.bin_dir)).credentials("reg.example.com/app")
    assert "is not executable" in failed.source


def test_a_provider_that_requires_a_service_account_token_is_reported(tmp_path, make_plugin):
    p = make_plugin()
    specs = load_config(provider_config(tmp_path / "c.json", [{
        "name": p.name, "matchImages": ["*.example.com"],
        "tokenAttributes": {"serviceAccountTokenAudience": "aud", "requireServiceAccount": True}}]))
    [failed] = CredentialProviders(specs, runner(p.bin_dir)).credentials("reg.example.com/app")
    assert "ServiceAccount token" in failed.source and p.calls() == []


def test_answers_and_failures_kept_are_bounded(tmp_path, make_plugin):
    """Past `maxsize` the least recently used answer (or failure) goes: asked again, the plugin runs again."""
    p = make_plugin()
    p.answer(cacheKeyType="Image", auth={"*.example.com": {"username": "u", "password": "pw"}})
    specs = load_config(provider_config(tmp_path / "c.json", [{"name": p.name, "matchImages": ["*.example.com"]}]))
    node = CredentialProviders(specs, runner(p.bin_dir), clock=Clock(), maxsize=2)
    for app in ("a", "b", "c"):
        node.credentials(f"reg.example.com/{app}")
    node.credentials("reg.example.com/c")
    assert len(p.calls()) == 3  # the last two are kept
    node.credentials("reg.example.com/a")
    assert len(p.calls()) == 4  # the first was dropped

    failing = make_plugin("failing")
    failing.answer(mode="fail")
    attributes = {"serviceAccountTokenAudience": "x", "requireServiceAccount": True}
    specs = load_config(provider_config(tmp_path / "f.json", [
        {"name": failing.name, "matchImages": ["*.example.com"], "tokenAttributes": attributes}]))
    node = CredentialProviders(specs, runner(failing.bin_dir), clock=Clock(), maxsize=2)
    accounts = [providers.ServiceAccount("shop", name, lambda audience: "token", dict) for name in "abc"]
    for account in accounts:  # a failure is remembered per ServiceAccount
        assert isinstance(node.credentials("reg.example.com/app", account)[0], FailedCredential)
    node.credentials("reg.example.com/app", accounts[2])
    assert len(failing.calls()) == 3
    node.credentials("reg.example.com/app", accounts[0])
    assert len(failing.calls()) == 4
