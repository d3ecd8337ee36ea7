"""The verdict a node would get, against real registries: with the node's configuration and without it.

Registries are Debian's docker-registry behind Basic and token auth on 127.0.0.1. Names under `.invalid`
never resolve: only the node's containerd hosts or registries.conf lead them to the real registry.
Credentials come from the test plugin (a real process speaking the kubelet protocol) or the kubelet's
docker config. No password may appear in a detail or a log line.
"""

import json
import logging
from dataclasses import replace

import pytest

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.node.view import NodeOptions, NodeView
from exporter.sources.registry.settings import from_options
from exporter.sources.registry.stats import DURATION_BUCKETS
from tests.registry.node.conftest import provider_config
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed (scripts/setup installs it)")

PASSWORD = "wonderland"
MIRRORED = "registry.example.invalid"


@pytest.fixture(scope="module", params=["basic", "token"])
def reg(request, tmp_path_factory):
    registry = real.Registry(tmp_path_factory.mktemp(f"node-{request.param}"), request.param)
    registry.digest = registry.push_image("team/app", "1.0")
    registry.push_image("team/other", "2.0")
    yield registry
    registry.stop()


def check(reg, images, node=None, keyring=None):
    """(results by image, the node view) for one round with a fresh checker."""
    settings = from_options(insecure=[reg.host])
    view = NodeView(node) if node is not None else None
    if view is not None:
        settings = replace(settings, node=view)
    keyring = keyring or Keyring()
    if view is not None:
        keyring = view.keyring(keyring)
    results = Checker(settings).check_many((image, keyring) for image in images)
    return {image: results[(image, keyring.fingerprint)] for image in images}, view


def hosts_dir(tmp_path, reg, capabilities='["pull", "resolve"]'):
    directory = tmp_path / "certs.d"
    (directory / MIRRORED).mkdir(parents=True)
    (directory / MIRRORED / "hosts.toml").write_text(
        f'server = "https://{MIRRORED}"\n\n[host."http://{reg.host}"]\n  capabilities = {capabilities}\n')
    return directory


def plugin_for(tmp_path, make_plugin, pattern, key_type="Registry", name="test-provider", **answer):
    plugin = make_plugin(name)
    plugin.answer(cacheKeyType=key_type, auth={pattern: {"username": "alice", "password": PASSWORD}}, **answer)
    config = provider_config(tmp_path / f"{name}.yaml",
                             [{"name": plugin.name, "matchImages": [pattern]}])
    return plugin, NodeOptions(provider_config=config, provider_bin_dir=plugin.bin_dir)


def test_containerd_mirror_and_plugin_credentials_make_it_available(reg, tmp_path, make_plugin, caplog):
    image = f"{MIRRORED}/team/app:1.0"
    plugin, plugin_options = plugin_for(tmp_path, make_plugin, "*.example.invalid")
    node = replace(plugin_options, containerd_hosts_dir=hosts_dir(tmp_path, reg))
    with caplog.at_level(logging.DEBUG):
        [without] = check(reg, [image])[0].values()
        [mirror_only] = check(reg, [image], NodeOptions(containerd_hosts_dir=node.containerd_hosts_dir))[0].values()
        [with_node] = check(reg, [image], node)[0].values()
    assert without.status == Status.UNREACHABLE  # the name never resolves
    assert mirror_only.status == Status.UNAUTHORIZED  # reached through the mirror, no credentials
    assert (with_node.status, with_node.digest, with_node.endpoint) == (Status.AVAILABLE, reg.digest, reg.host)
    assert [c["image"] for c in plugin.calls()] == [f"{MIRRORED}/team/app"]  # the name, not the tag
    assert PASSWORD not in caplog.text + "".join(r.detail for r in (without, mirror_only, with_node))


def test_plugin_runs_no_more_often_than_its_cache_allows(reg, tmp_path, make_plugin):
    images = [f"{reg.host}/team/app:1.0", f"{reg.host}/team/other:2.0", f"{reg.host}/team/app@{reg.digest}"]
    plugin, node = plugin_for(tmp_path, make_plugin, reg.host, key_type="Registry")
    results, view = check(reg, images, node)
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert len(plugin.calls()) == 1  # one registry, cached by registry

    settings, keyring = replace(from_options(insecure=[reg.host]), node=view), view.keyring()
    Checker(settings).check_many([(f"{reg.host}/team/app:1.0", keyring)])  # a new round, a fresh result cache
    assert len(plugin.calls()) == 1

    plugin, node = plugin_for(tmp_path, make_plugin, reg.host, key_type="Image", name="image-keyed")
    results, _ = check(reg, images, node)
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert sorted(c["image"] for c in plugin.calls()) == [f"{reg.host}/team/app", f"{reg.host}/team/other"]


def test_without_the_plugin_the_same_images_are_unauthorized(reg):
    [result] = check(reg, [f"{reg.host}/team/app:1.0"])[0].values()
    assert result.status == Status.UNAUTHORIZED


@pytest.mark.parametrize("mode", ["fail", "hang", "garbage"])
def test_a_failing_plugin_gives_error_naming_it(reg, tmp_path, make_plugin, caplog, mode):
    plugin, node = plugin_for(tmp_path, make_plugin, reg.host, mode=mode, leak=PASSWORD)
    view = NodeView(node, plugin_timeout=1.0)
    keyring = view.keyring()
    with caplog.at_level(logging.DEBUG):
        results = Checker(replace(from_options(insecure=[reg.host]), node=view)).check_many(
            [(f"{reg.host}/team/app:1.0", keyring), (f"{reg.host}/team/other:2.0", keyring)])
    assert {r.status for r in results.values()} == {Status.ERROR}
    assert all(f"credential provider {plugin.name}" in r.detail for r in results.values())
    assert len(plugin.calls()) == 1  # the failure is remembered: one timeout, not one per image
    assert PASSWORD not in caplog.text + "".join(r.detail for r in results.values())


def test_a_pull_secret_that_fails_is_followed_by_the_node_credentials(reg, tmp_path, make_plugin):
    plugin, node = plugin_for(tmp_path, make_plugin, reg.host)
    wrong = Keyring.of([Credential(reg.host, "alice", "not-it", source="secret shop/stale")])
    [result] = check(reg, [f"{reg.host}/team/app:1.0"], node, wrong)[0].values()
    assert result.status == Status.AVAILABLE


def test_kubelet_docker_config_is_a_node_credential(reg, tmp_path):
    root = tmp_path / "kubelet"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"auths": {reg.host: {"username": "alice", "password": PASSWORD}}}))
    [without] = check(reg, [f"{reg.host}/team/app:1.0"])[0].values()
    [result] = check(reg, [f"{reg.host}/team/app:1.0"], NodeOptions(kubelet_root_dir=root))[0].values()
    assert (without.status, result.status) == (Status.UNAUTHORIZED, Status.AVAILABLE)
    (root / "config.json").unlink()
    (root / ".dockercfg").write_text(json.dumps({reg.host: {"username": "alice", "password": PASSWORD}}))
    [legacy] = check(reg, [f"{reg.host}/team/app:1.0"], NodeOptions(kubelet_root_dir=root))[0].values()
    assert legacy.status == Status.AVAILABLE


def test_a_pull_only_mirror_answers_digests_but_not_tags(reg, tmp_path, make_plugin):
    _, node = plugin_for(tmp_path, make_plugin, "*.example.invalid")
    node = replace(node, containerd_hosts_dir=hosts_dir(tmp_path, reg, '["pull"]'))
    results, _ = check(reg, [f"{MIRRORED}/team/app:1.0", f"{MIRRORED}/team/app@{reg.digest}"], node)
    by_tag, by_digest = results.values()
    assert (by_digest.status, by_digest.endpoint) == (Status.AVAILABLE, reg.host)
    assert by_tag.status == Status.UNREACHABLE  # only the upstream may resolve a tag, and it does not resolve


def test_registries_conf_mirror_and_blocked(reg, tmp_path, make_plugin):
    _, node = plugin_for(tmp_path, make_plugin, "*.example.invalid")
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nprefix = "{MIRRORED}"\nlocation = "{MIRRORED}"\n'
                    f'[[registry.mirror]]\nlocation = "{reg.host}"\ninsecure = true\n\n'
                    f'[[registry]]\nlocation = "blocked.example.invalid"\nblocked = true\n')
    node = replace(node, registries_conf=conf)
    results, _ = check(reg, [f"{MIRRORED}/team/app:1.0", "blocked.example.invalid/team/app:1.0"], node)
    mirrored, blocked = results.values()
    assert (mirrored.status, mirrored.endpoint) == (Status.AVAILABLE, reg.host)
    assert blocked.status == Status.FORBIDDEN and "blocked" in blocked.detail
    [without] = check(reg, [f"{MIRRORED}/team/app:1.0"])[0].values()
    assert without.status == Status.UNREACHABLE


def test_edited_node_files_count_without_a_restart(reg, tmp_path, make_plugin):
    clock = [0.0]
    directory = tmp_path / "certs.d"
    directory.mkdir()
    _, node = plugin_for(tmp_path, make_plugin, "*.example.invalid")
    view = NodeView(replace(node, containerd_hosts_dir=directory), clock=lambda: clock[0], recheck=5.0)
    settings, keyring = replace(from_options(insecure=[reg.host]), node=view), view.keyring()
    image = f"{MIRRORED}/team/app:1.0"
    assert Checker(settings).check_many([(image, keyring)])[(image, keyring.fingerprint)].status == Status.UNREACHABLE
    hosts_dir(tmp_path, reg)
    clock[0] += 6
    assert Checker(settings).check_many([(image, keyring)])[(image, keyring.fingerprint)].status == Status.AVAILABLE


@pytest.fixture(scope="module")
def open_reg(tmp_path_factory):
    """A registry without auth (no password hashing to time): latency is the registry's alone."""
    registry = real.Registry(tmp_path_factory.mktemp("node-open"), "none")
    registry.digest = registry.push_image("team/app", "1.0")
    for tag in ("1", "2", "3", "4", "5"):
        registry.push_image("team/other", tag)
    yield registry
    registry.stop()


def test_a_slow_plugin_holds_up_only_the_checks_that_need_it(open_reg, tmp_path, make_plugin):
    """A plugin that takes 2 s runs off the round's event loop: the other images' checks complete while it
    runs (they release it), no registry request is timed with it nor times out (the timeout is shorter than
    the plugin) so the adaptive limit hears no pushback, and two checks that need the same plugin answer wait
    for one run."""
    reg = open_reg
    others = [f"{reg.host}/team/other:{tag}" for tag in ("1", "2", "3", "4", "5")]
    needy = [f"{reg.host}/team/app:1.0", f"{reg.host}/team/app@{reg.digest}"]  # one plugin key: team/app's
    plugin = make_plugin("slow-provider")
    plugin.answer(cacheKeyType="Image", sleep=2,
                  auth={f"{reg.host}/team/app": {"username": "alice", "password": PASSWORD}})
    config = provider_config(tmp_path / "slow.yaml", [{"name": plugin.name, "matchImages": [f"{reg.host}/team/app"]}])
    view = NodeView(NodeOptions(provider_config=config, provider_bin_dir=plugin.bin_dir))
    keyring = view.keyring()
    checker = Checker(replace(from_options(insecure=[reg.host]), node=view, timeout=1.0))

    def progress(done, total):
        if done == len(others):  # only the others can be done before the plugin answers
            plugin.release()

    results = checker.check_many([(image, keyring) for image in others + needy], progress)
    assert {image: results[(image, keyring.fingerprint)].status for image in others + needy} == {
        image: Status.AVAILABLE for image in others + needy}
    assert plugin.slept() == ["released"]  # the others did not wait for it
    assert [call["image"] for call in plugin.calls()] == [f"{reg.host}/team/app"]  # one run for both
    assert checker.hosts.control(reg.host).pushbacks == 0  # a latency cut may come from the registry itself
    [histogram] = [h for h in checker.stats.figures()[1] if h.labels == (reg.host,)]
    assert histogram.cumulative[DURATION_BUCKETS.index(1.0)] == histogram.count  # no request timed with the plugin
