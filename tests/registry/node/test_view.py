"""The node view's plumbing: files re-read when they change (and only then), problems kept per source, routes."""

import logging

import pytest

from exporter.model.images import parse
from exporter.sources.registry.node.files import Reloading
from exporter.sources.registry.node.providers import ProviderConfigError, load_config
from exporter.sources.registry.node.view import NodeConfigError, NodeOptions, NodeView


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_reloading_reads_again_only_after_a_change_and_the_recheck_interval(tmp_path, caplog):
    path = tmp_path / "list.txt"
    path.write_text("one")
    clock = Clock()

    def load():
        text = path.read_text()
        if text == "broken":
            raise ValueError("broken content")
        return text

    value = Reloading(lambda: [path], load, "test file", recheck=5.0, clock=clock)
    assert value.get() == "one" and value.loads == 1
    path.write_text("two")
    assert value.get() == "one"  # not looked at again before the recheck interval
    clock.now += 5
    assert value.get() == "two" and value.loads == 2
    clock.now += 5
    assert value.get() == "two" and value.loads == 2  # unchanged on disk: not read
    path.write_text("broken")
    clock.now += 5
    with caplog.at_level(logging.WARNING):
        assert value.get() == "two"  # the last good version stays
        clock.now += 5
        assert value.get() == "two"
    assert caplog.text.count("broken content") == 1  # said once, not every recheck


def test_a_first_read_that_fails_is_an_error_at_start(tmp_path):
    bad = tmp_path / "providers.yaml"
    bad.write_text("kind: CredentialProviderConfig\n")
    with pytest.raises(NodeConfigError, match="providers.yaml"):
        NodeView(NodeOptions(bad, tmp_path))
    with pytest.raises(ProviderConfigError):
        load_config(bad)


def test_what_checks_cannot_follow_is_kept_as_problems(tmp_path):
    (tmp_path / "certs.d" / "r.io").mkdir(parents=True)
    (tmp_path / "certs.d" / "r.io" / "hosts.toml").write_text('[host."https://m.local/api"]\noverride_path = true\n')
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "q.io"\n')
    (tmp_path / "certs.d" / "s.io").mkdir(parents=True)
    (tmp_path / "certs.d" / "s.io" / "client.cert").write_text("")
    view = NodeView(NodeOptions(containerd_hosts_dir=tmp_path / "certs.d", registries_conf=conf))
    assert len(view.problems) == 2 and any("override_path" in p for p in view.problems)
    assert any("client certificates" in p for p in view.problems)


def test_routes_by_runtime(tmp_path):
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
                    '[[registry.mirror]]\nlocation = "mirror.local:5000/hub"\ninsecure = true\n')
    view = NodeView(NodeOptions(registries_conf=conf))
    route = view.route(parse("nginx:1.27"))
    assert [(e.host, e.base, e.repository) for e in route.endpoints] == [
        ("mirror.local:5000", "http://mirror.local:5000", "hub/library/nginx"),
        ("registry-1.docker.io", "https://registry-1.docker.io", "library/nginx")]
    assert view.route(parse("quay.io/a/b:1")) is None  # not configured: the checker's own endpoints
    assert view.host_options("mirror.local:5000").insecure


def test_containerd_wins_where_both_configure_a_registry(tmp_path):
    (tmp_path / "certs.d" / "docker.io").mkdir(parents=True)
    (tmp_path / "certs.d" / "docker.io" / "hosts.toml").write_text('[host."https://containerd-mirror.local"]\n')
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "crio-mirror.local"\n')
    view = NodeView(NodeOptions(containerd_hosts_dir=tmp_path / "certs.d", registries_conf=conf))
    assert view.route(parse("nginx:1")).endpoints[0].host == "containerd-mirror.local"
