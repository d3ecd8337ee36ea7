"""Credential providers with tokenAttributes (Kubernetes 1.33): the workload's ServiceAccount token and annotations.

Unit cases drive `CredentialProviders` with ServiceAccounts whose token and annotations are plain functions;
the end-to-end case runs `serve` against the API emulator (TokenRequest served over real HTTP) and a real
Basic-auth registry, with the test plugin giving credentials only to a request that carries a token.
"""

import logging
import urllib.request
from dataclasses import replace

import pytest

from exporter.serve.endpoints import Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.node.providers import CredentialProviders, FailedCredential, ServiceAccount, load_config
from exporter.sources.registry.node.view import NodeOptions, NodeView
from exporter.sources.registry.settings import from_options
from tests.conftest import make_pod
from tests.registry.node.conftest import provider_config
from tests.registry.node.test_providers import runner
from tests.support import eventually
from tests.support import registry as real

TOKENS = {"serviceAccountTokenAudience": "registry.example.com", "requireServiceAccount": True,
          "requiredServiceAccountAnnotationKeys": ["example.com/role"],
          "optionalServiceAccountAnnotationKeys": ["example.com/region"]}


def account(name, annotations, tokens_issued):
    def token(audience):
        tokens_issued.append((name, audience))
        return f"token-of-{name}"
    return ServiceAccount("shop", name, token, lambda: annotations)


@pytest.fixture
def providers(tmp_path, make_plugin):
    plugin = make_plugin()
    plugin.answer(cacheKeyType="Registry", auth={"*.example.com": {"username": "u", "password": "p"}})
    specs = load_config(provider_config(tmp_path / "c.json", [
        {"name": plugin.name, "matchImages": ["*.example.com"], "tokenAttributes": TOKENS}]))
    return plugin, CredentialProviders(specs, runner(plugin.bin_dir))


def test_the_token_and_only_the_named_annotations_are_sent(providers):
    plugin, node = providers
    issued = []
    builder = account("builder", {"example.com/role": "puller", "example.com/region": "eu", "other": "x"}, issued)
    [credential] = node.credentials("reg.example.com/app", builder)
    assert credential.username == "u"
    [call] = plugin.calls()
    assert call["token"] == "token-of-builder" and issued == [("builder", "registry.example.com")]
    assert call["annotations"] == {"example.com/role": "puller", "example.com/region": "eu"}


def test_answers_are_cached_per_service_account(providers):
    plugin, node = providers
    issued = []
    one = account("one", {"example.com/role": "a"}, issued)
    two = account("two", {"example.com/role": "b"}, issued)
    node.credentials("reg.example.com/app", one)
    node.credentials("reg.example.com/other", one)
    node.credentials("reg.example.com/app", two)
    assert [c["token"] for c in plugin.calls()] == ["token-of-one", "token-of-two"]


def test_a_missing_required_annotation_fails_without_running_the_plugin(providers):
    plugin, node = providers
    [failed] = node.credentials("reg.example.com/app", account("bare", {}, []))
    assert isinstance(failed, FailedCredential)
    assert "ServiceAccount shop/bare lacks the required annotation example.com/role" in failed.source
    assert plugin.calls() == []


def test_a_token_request_that_fails_names_the_service_account(providers):
    plugin, node = providers

    def refused(audience):
        raise RuntimeError("403 Forbidden")

    [failed] = node.credentials("reg.example.com/app",
                                ServiceAccount("shop", "builder", refused, lambda: {"example.com/role": "a"}))
    assert "cannot get a token for ServiceAccount shop/builder: 403 Forbidden" in failed.source
    assert plugin.calls() == []


def test_without_tokens_a_provider_that_requires_them_is_an_error(providers):
    plugin, node = providers
    [failed] = node.credentials("reg.example.com/app")
    assert "requires the pod's ServiceAccount token" in failed.source and plugin.calls() == []


# -- end to end --

PASSWORD = "wonderland"


@pytest.mark.skipif(not real.available(), reason="docker-registry not installed")
@pytest.mark.parametrize("enabled", [True, False], ids=["tokens", "no-tokens"])
def test_serve_gets_the_workloads_token_for_the_provider(enabled, emulator, kubeconfig, tmp_path, make_plugin,
                                                         caplog):
    reg = real.Registry(tmp_path, "basic")
    try:
        image = f"{reg.host}/team/app:1.0"
        reg.push_image("team/app", "1.0")
        plugin = make_plugin()
        plugin.answer(cacheKeyType="Registry", requireToken=True,
                      auth={reg.host: {"username": "alice", "password": PASSWORD}})
        config = provider_config(tmp_path / "providers.json", [{
            "name": plugin.name, "matchImages": [reg.host],
            "tokenAttributes": {"serviceAccountTokenAudience": "test-registry", "requireServiceAccount": True}}])
        emulator.create_many([
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": "shop"}},
            make_pod("app", "shop", image, serviceAccountName="builder"),
        ])
        view = NodeView(NodeOptions(config, plugin.bin_dir))
        published = Published()
        server = Server(published, "127.0.0.1", 0).start()
        exporter = Exporter(load_clusters(kubeconfig), Checker(replace(from_options(insecure=[reg.host]), node=view)),
                            published, node_keyring=view.keyring(), interval=0.3, watch_timeout=5,
                            service_account_tokens=enabled)
        want = "available" if enabled else "error"
        try:
            with caplog.at_level(logging.DEBUG):
                exporter.start()
                assert eventually(lambda: f'status="{want}"' in get(server.port, "/metrics"), timeout=30)
                exposed = get(server.port, "/metrics") + get(server.port, "/report")
        finally:
            exporter.stop()
            server.stop()
        if enabled:
            assert emulator.tokens == [("shop", "builder", ["test-registry"])]
            [call] = plugin.calls()
            assert call["token"].startswith("emulated.shop.builder.")
            assert call["token"] not in exposed + caplog.text
        else:
            assert emulator.tokens == [] and plugin.calls() == []
        assert PASSWORD not in exposed + caplog.text
    finally:
        reg.stop()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()
