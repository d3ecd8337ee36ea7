"""Pod credentials, then the node's: order as the kubelet tries them, fingerprints as the result cache needs."""

import base64
import json

from exporter.sources.keyrings import KeyringSource
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.node.keyring import NodeKeyring
from exporter.sources.registry.node.providers import FailedCredential
from exporter.sources.registry.node.view import NodeOptions, NodeView
from tests.registry.node.conftest import provider_config


def secret(namespace, name, host, password):
    config = {"auths": {host: {"username": "u", "password": password}}}
    return {"type": "kubernetes.io/dockerconfigjson", "metadata": {"namespace": namespace, "name": name},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def node_view(tmp_path, make_plugin, clock=None, **answer):
    plugin = make_plugin()
    plugin.answer(auth={"reg.example.com": {"username": "plugin", "password": "p"}}, **answer)
    root = tmp_path / "kubelet"
    root.mkdir(exist_ok=True)
    (root / "config.json").write_text(json.dumps({"auths": {"reg.example.com": {"username": "docker", "password": "d"}}}))
    config = provider_config(tmp_path / "providers.json", [{"name": plugin.name, "matchImages": ["*.example.com"]}])
    options = NodeOptions(config, plugin.bin_dir, kubelet_root_dir=root)
    view = NodeView(options, clock=clock) if clock else NodeView(options)
    return plugin, view, root


def test_pod_secrets_then_plugins_then_node_docker_config(tmp_path, make_plugin):
    _, view, _ = node_view(tmp_path, make_plugin)
    secrets = {("shop", "regcred"): secret("shop", "regcred", "reg.example.com", "s")}
    source = KeyringSource(lambda ns, n: secrets.get((ns, n)), lambda ns, n: None, view.keyring())
    keyring = source.keyring("shop", ("regcred",))
    assert isinstance(keyring, NodeKeyring)
    assert [c.username for c in keyring.match("reg.example.com", "team/app")] == ["u", "plugin", "docker"]
    assert [c.username for c in keyring.match("other.io", "team/app")] == []  # nothing matches, nothing runs


def test_a_failed_provider_comes_last(tmp_path, make_plugin):
    _, view, _ = node_view(tmp_path, make_plugin, mode="fail")
    matched = view.keyring(Keyring.of([Credential("reg.example.com", "u", "s")])).match("reg.example.com", "app")
    assert [type(c) for c in matched] == [Credential, Credential, FailedCredential]


def test_fingerprints_separate_namespaces_but_not_rotating_plugin_answers(tmp_path, make_plugin):
    clock = [0.0]
    plugin, view, root = node_view(tmp_path, make_plugin, clock=lambda: clock[0], cacheDuration="0s")
    one = Keyring.of([Credential("reg.example.com", "u", "a")]) + view.keyring()
    other = Keyring.of([Credential("reg.example.com", "u", "b")]) + view.keyring()
    assert one.fingerprint != other.fingerprint
    before = one.fingerprint
    one.match("reg.example.com", "app")
    plugin.answer(cacheDuration="0s", auth={"reg.example.com": {"username": "plugin", "password": "renewed"}})
    one.match("reg.example.com", "app")
    assert one.fingerprint == before  # a renewed token is the same node identity: results stay cached
    assert view.keyring().fingerprint not in ("anonymous", Keyring().fingerprint)

    (root / "config.json").write_text(json.dumps({"auths": {"reg.example.com": {"username": "new", "password": "x"}}}))
    clock[0] += 10
    view.refresh()
    assert one.fingerprint != before  # another node docker config is another credential set


def test_no_node_configuration_keeps_the_plain_fingerprint(tmp_path):
    own = Keyring.of([Credential("reg.example.com", "u", "a")])
    assert NodeKeyring(own.credentials, None).fingerprint == own.fingerprint
