"""Which credentials a workload's images are checked with: the pod's secrets, else its ServiceAccount's."""

import base64
import json

from exporter.sources.keyrings import KeyringSource
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.credentials import Credential, Keyring


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


class FlakyApi:
    """A getter over the emulator that fails while `down` is set, as an API server does during an outage."""

    def __init__(self, get):
        self.get, self.down, self.calls = get, False, 0

    def __call__(self, namespace, name):
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused")
        return self.get(namespace, name)


def test_an_api_outage_keeps_the_last_good_secrets_and_asks_again_soon(emulator, kubeconfig):
    """A private image must not turn `unauthorized` because the API was down when its credentials were due to
    be read again: the last good content stands in, and the object is asked for again after `retry`, not a TTL."""
    emulator.create(pull_secret("shop", "sa-secret", "sa"))
    emulator.create({"kind": "ServiceAccount", "metadata": {"namespace": "shop", "name": "builder"},
                     "imagePullSecrets": [{"name": "sa-secret"}]})
    [client] = load_clusters(kubeconfig)
    secrets = FlakyApi(lambda ns, name: client.get("v1", "Secret", ns, name))
    accounts = FlakyApi(lambda ns, name: client.get("v1", "ServiceAccount", ns, name))
    clock = Clock()
    source = KeyringSource(secrets, accounts, ttl=300, retry=30, clock=clock)
    assert users(source.keyring("shop", (), "builder")) == ["sa"]

    secrets.down = accounts.down = True
    clock.now = 301  # both are due to be read again, and the API is down
    source.new_cycle()
    assert users(source.keyring("shop", (), "builder")) == ["sa"]  # not anonymous
    assert source.unusable == {}

    secrets.down = accounts.down = False
    emulator.create(pull_secret("shop", "sa-secret-2", "sa2"))
    emulator.update({"kind": "ServiceAccount", "metadata": {"namespace": "shop", "name": "builder"},
                     "imagePullSecrets": [{"name": "sa-secret-2"}]})
    clock.now = 301 + 31  # the failed reads are tried again after `retry`, not after another TTL
    assert users(source.keyring("shop", (), "builder")) == ["sa2"]


def test_a_secret_never_read_while_the_api_is_down_is_reported_and_asked_again_soon(emulator, kubeconfig):
    emulator.create(pull_secret("shop", "regcred", "alice"))
    [client] = load_clusters(kubeconfig)
    secrets = FlakyApi(lambda ns, name: client.get("v1", "Secret", ns, name))
    clock = Clock()
    source = KeyringSource(secrets, lambda ns, name: None, ttl=300, retry=30, clock=clock)
    secrets.down = True
    assert users(source.keyring("shop", ("regcred",))) == []
    assert source.unusable == {("shop", "regcred"): "api_error"}
    secrets.down = False
    clock.now = 31
    source.new_cycle()
    assert users(source.keyring("shop", ("regcred",))) == ["alice"] and source.unusable == {}


def test_service_account_identities_expire_and_stay_bounded():
    """The ServiceAccounts a credential provider may get tokens for are kept `ttl` seconds, and at most
    IDENTITIES of them: a cluster's churn of ServiceAccounts does not grow the exporter."""
    from exporter.sources.keyrings import IDENTITIES
    from exporter.sources.registry.node.keyring import NodeKeyring

    clock = Clock()
    source = KeyringSource(lambda ns, name: None, lambda ns, name: {"metadata": {"name": name}}, NodeKeyring(),
                           ttl=300, clock=clock, get_token=lambda ns, name, audience: "token")
    first = source.keyring("shop", (), "builder").account
    assert source.keyring("shop", (), "builder").account is first  # kept
    clock.now += 301
    assert source.keyring("shop", (), "builder").account is not first  # expired: made again
    kept = source.keyring("shop", (), "builder").account
    for n in range(IDENTITIES):
        source.keyring("other", (), f"sa-{n}")
    assert source.keyring("shop", (), "builder").account is not kept  # the least recently used went first


def secret_with(name, data, kind="kubernetes.io/dockerconfigjson"):
    return {"kind": "Secret", "type": kind, "metadata": {"namespace": "shop", "name": name}, "data": data}


def encoded(document) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_secrets_of_any_garbage_shape_cost_themselves_only(emulator, kubeconfig, caplog):
    emulator.create(pull_secret("shop", "good", "ok"))
    emulator.create(secret_with("number", {".dockerconfigjson": 12345}))
    emulator.create(secret_with("list-data", ["s3cr3t"]))
    emulator.create(secret_with("list-config", {".dockerconfigjson": encoded(["s3cr3t"])}))
    emulator.create(secret_with("auths-list", {".dockerconfigjson": encoded({"auths": ["s3cr3t"]})}))
    emulator.create(secret_with("cfg-number", {".dockercfg": encoded(7)}, kind="kubernetes.io/dockercfg"))
    bad = ("number", "list-data", "list-config", "auths-list", "cfg-number")
    source = source_for(emulator, kubeconfig)
    assert users(source.keyring("shop", (*bad, "good"))) == ["ok"]
    assert source.unusable == {("shop", name): "invalid" for name in bad}
    for name in bad:
        assert any(f"shop/{name}" in problem for problem in source.problems), name
    assert "s3cr3t" not in caplog.text and "s3cr3t" not in " ".join(source.problems)


def test_a_service_account_of_the_wrong_shape_costs_its_pull_secrets_only(emulator, kubeconfig, caplog):
    emulator.create(pull_secret("shop", "sa-secret", "sa"))
    emulator.create({"kind": "ServiceAccount", "metadata": {"namespace": "shop", "name": "odd"},
                     "imagePullSecrets": "sa-secret"})
    emulator.create({"kind": "ServiceAccount", "metadata": {"namespace": "shop", "name": "fine"},
                     "imagePullSecrets": [{"name": "sa-secret"}, {"name": 5}, "x"]})
    source = source_for(emulator, kubeconfig)
    assert users(source.keyring("shop", (), "odd")) == []
    assert "service account shop/odd: imagePullSecrets is not a list of names" in caplog.text
    assert users(source.keyring("shop", (), "fine")) == ["sa"]
