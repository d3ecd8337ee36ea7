"""Which credentials a workload's images are checked with: the pod's secrets, else its ServiceAccount's."""

import base64
import json

from exporter.keyrings import KeyringSource
from exporter.kube.clusters import load_clusters
from exporter.registry.credentials import Credential, Keyring


def pull_secret(namespace, name, user, host="registry.example.com"):
    auth = base64.b64encode(f"{user}:pw".encode()).decode()
    config = base64.b64encode(json.dumps({"auths": {host: {"auth": auth}}}).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"namespace": namespace, "name": name}, "data": {".dockerconfigjson": config}}


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def source_for(emulator, kubeconfig, node=Keyring(), clock=None):
    [client] = load_clusters(kubeconfig)
    return KeyringSource(
        lambda ns, name: client.get("v1", "Secret", ns, name),
        lambda ns, name: client.get("v1", "ServiceAccount", ns, name),
        node,
        ttl=300,
        clock=clock or Clock(),
    )


def users(keyring):
    return [c.username for c in keyring.credentials]


def test_pod_secrets_first_else_service_account_then_node(emulator, kubeconfig):
    emulator.create(pull_secret("shop", "pod-secret", "pod"))
    emulator.create(pull_secret("shop", "sa-secret", "sa"))
    emulator.create({"kind": "ServiceAccount", "metadata": {"namespace": "shop", "name": "builder"},
                     "imagePullSecrets": [{"name": "sa-secret"}]})
    node = Keyring.of([Credential("registry.example.com", "node", "pw", source="node docker config")])
    source = source_for(emulator, kubeconfig, node)
    assert users(source.keyring("shop", ("pod-secret",), "builder")) == ["pod", "node"]
    assert users(source.keyring("shop", (), "builder")) == ["sa", "node"]
    assert users(source.keyring("shop", (), "default")) == ["node"]


def test_namespaces_do_not_share_secrets(emulator, kubeconfig):
    emulator.create(pull_secret("a", "regcred", "alice"))
    emulator.create(pull_secret("b", "regcred", "bob"))
    source = source_for(emulator, kubeconfig)
    one, two = source.keyring("a", ("regcred",)), source.keyring("b", ("regcred",))
    assert users(one) == ["alice"] and users(two) == ["bob"]
    assert one.fingerprint != two.fingerprint


def test_garbage_missing_and_forbidden_secrets_are_reported_and_skipped(emulator, kubeconfig):
    emulator.create(pull_secret("shop", "good", "ok"))
    emulator.create({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"namespace": "shop", "name": "garbage"},
                     "data": {".dockerconfigjson": base64.b64encode(b"{not json").decode()}})
    clock = Clock()
    source = source_for(emulator, kubeconfig, clock=clock)
    keyring = source.keyring("shop", ("garbage", "absent", "good"))
    assert users(keyring) == ["ok"]
    assert any("shop/garbage" in p and "not base64 of JSON" in p for p in source.problems)
    assert any("shop/absent" in p for p in source.problems)
    assert source.unusable == {("shop", "garbage"): "invalid", ("shop", "absent"): "unreadable"}
    emulator.forbid("secrets")
    source.new_cycle()
    assert users(source.keyring("shop", ("good",))) == ["ok"] and source.unusable == {}  # read 1 min ago
    clock.now += 301
    source.new_cycle()
    assert users(source.keyring("shop", ("good",))) == []  # read again after the TTL: forbidden now
    assert any("not found or not readable" in p for p in source.problems)
    assert source.unusable == {("shop", "good"): "unreadable"}


def test_secrets_and_accounts_are_read_once_per_ttl_not_per_cycle(emulator, kubeconfig):
    emulator.create(pull_secret("shop", "regcred", "u"))
    clock = Clock()
    source = source_for(emulator, kubeconfig, clock=clock)
    for _ in range(100):
        source.new_cycle()
        source.keyring("shop", ("regcred",))
        source.keyring("shop", (), "default")
    assert emulator.requests[("get", "secrets")] == 1
    assert emulator.requests[("get", "serviceaccounts")] == 1
    clock.now += 301
    source.keyring("shop", ("regcred",))
    assert emulator.requests[("get", "secrets")] == 2
