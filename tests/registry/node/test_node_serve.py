"""The node's view through the whole exporter and through `check`: verdicts, endpoint, and no password anywhere.

`serve` watches the emulated cluster; a pod pulls `registry.example.invalid/team/app:1.0` with a stale pull
secret. The node's containerd hosts lead the name to a real Basic-auth registry and the test plugin holds the
working credential: the kubelet's order (pull secret, then node) makes it `available`. /metrics, /report and
the logs never show the password.
"""

import base64
import json
import logging
import urllib.request
from dataclasses import replace

import pytest

from exporter.cli import main
from exporter.serve.endpoints import Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.node.view import NodeOptions, NodeView
from exporter.sources.registry.settings import from_options
from tests.conftest import make_pod
from tests.registry.node.conftest import provider_config
from tests.support import eventually
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed")

PASSWORD = "wonderland"
IMAGE = "registry.example.invalid/team/app:1.0"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    registry = real.Registry(tmp_path_factory.mktemp("node-serve"), "basic")
    registry.digest = registry.push_image("team/app", "1.0")
    yield registry
    registry.stop()


@pytest.fixture
def node_files(reg, tmp_path, make_plugin):
    hosts = tmp_path / "certs.d" / "registry.example.invalid"
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(f'[host."http://{reg.host}"]\n  capabilities = ["pull", "resolve"]\n')
    plugin = make_plugin("node-provider")
    plugin.answer(cacheKeyType="Registry", auth={"*.example.invalid": {"username": "alice", "password": PASSWORD}})
    config = provider_config(tmp_path / "providers.yaml", [{"name": plugin.name, "matchImages": ["*.example.invalid"]}])
    return plugin, NodeOptions(config, plugin.bin_dir, containerd_hosts_dir=tmp_path / "certs.d")


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def stale_secret():
    config = {"auths": {"registry.example.invalid": {"username": "alice", "password": "stale-one"}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "stale", "namespace": "shop"},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def test_serve_reports_available_through_the_node_and_leaks_nothing(reg, node_files, emulator, kubeconfig, caplog):
    plugin, options = node_files
    emulator.create_many([stale_secret(), make_pod("app", "shop", IMAGE, imagePullSecrets=[{"name": "stale"}])])
    view = NodeView(options)
    settings = from_options()
    published = Published()
    server = Server(published, "127.0.0.1", 0).start()
    exporter = Exporter(load_clusters(kubeconfig), Checker(replace(settings, node=view)), published,
                        node_keyring=view.keyring(), interval=0.3, watch_timeout=5)
    try:
        with caplog.at_level(logging.DEBUG):
            exporter.start()
            assert eventually(lambda: 'status="available"' in get(server.port, "/metrics"), timeout=30)
            metrics, report = get(server.port, "/metrics"), get(server.port, "/report")
        # the registry label names the endpoint that answered: the node's mirror
        assert (f'kube_image_status{{cluster="one",image="{IMAGE}",registry="{reg.host}",status="available"}} 1'
                in metrics.splitlines())
        assert IMAGE in report and "unauthorized" not in report and "unreachable" not in report
        assert "kube_image_missing{" not in metrics
        assert PASSWORD not in metrics + report + caplog.text and "stale-one" not in metrics + report + caplog.text
        assert len(plugin.calls()) == 1  # every cycle after the first is answered from the caches
    finally:
        exporter.stop()
        server.stop()


def test_check_takes_the_node_flags(reg, node_files, tmp_path, capsys):
    plugin, options = node_files
    flags = ["--image-credential-provider-config", str(options.provider_config),
             "--image-credential-provider-bin-dir", str(options.provider_bin_dir),
             "--containerd-hosts-dir", str(options.containerd_hosts_dir)]
    assert main(["check", IMAGE, "--json"]) == 1
    [without] = json.loads(capsys.readouterr().out)
    assert without["status"] == "unreachable"

    assert main(["check", IMAGE, "--json", *flags]) == 0
    out, err = capsys.readouterr()
    [result] = json.loads(out)
    assert (result["status"], result["digest"], result["endpoint"]) == ("available", reg.digest, reg.host)
    assert PASSWORD not in out + err

    config = tmp_path / "config.yaml"  # the same settings from the config file
    config.write_text(json.dumps({"image_credential_provider_config": str(options.provider_config),
                                  "image_credential_provider_bin_dir": str(options.provider_bin_dir),
                                  "containerd_hosts_dir": str(options.containerd_hosts_dir)}))
    assert main(["check", IMAGE, "--config", str(config)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("flags, message", [
    (["--containerd-hosts-dir", "/nonexistent/certs.d"], "--containerd-hosts-dir /nonexistent/certs.d: no such file"),
    (["--image-credential-provider-config", "{config}"], "needs --image-credential-provider-bin-dir"),
    (["--image-credential-provider-config", "{broken}", "--image-credential-provider-bin-dir", "{dir}"],
     "providers: at least one provider"),
])
def test_bad_node_flags_are_one_clear_line(tmp_path, capsys, flags, message):
    config = provider_config(tmp_path / "ok.yaml", [{"name": "p", "matchImages": ["*.example.com"]}])
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n")
    flags = [f.format(config=config, broken=broken, dir=tmp_path) for f in flags]
    code = main(["check", "x.io/a:1", *flags])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


@pytest.mark.parametrize("with_node", [True, False], ids=["node", "no-node"])
def test_expected_lists_are_checked_as_the_node_would_pull(with_node, reg, node_files, emulator, kubeconfig, tmp_path):
    """An expected image no pod runs yet (a release's pre-flight) gets the node's credentials and mirrors too."""
    _, options = node_files
    listed = tmp_path / "release.txt"
    listed.write_text(IMAGE + "\n")
    settings, keyring = from_options(), None
    if with_node:
        view = NodeView(options)
        settings, keyring = replace(settings, node=view), view.keyring()
    published = Published()
    server = Server(published, "127.0.0.1", 0).start()
    exporter = Exporter(load_clusters(kubeconfig), Checker(settings), published, expected=[str(listed)],
                        **({"node_keyring": keyring} if keyring else {}), interval=0.3, watch_timeout=5)
    try:
        exporter.start()
        assert eventually(lambda: exporter.checker.stats.total() > 0, timeout=30)  # the check was sent
        cycles = exporter.cycles
        assert eventually(lambda: exporter.cycles >= cycles + 2, timeout=30)  # and its result published
        metrics = get(server.port, "/metrics")
    finally:
        exporter.stop()
        server.stop()
    missing = [line for line in metrics.splitlines() if line.startswith("kube_image_expected_missing{")]
    if with_node:
        assert missing == []
    else:
        assert len(missing) == 1 and 'reason="unreachable"' in missing[0]
