"""containerd hosts.toml: mirrors in file order, the server last, capabilities, TLS, paths, certs layout."""

import os
from pathlib import Path

import pytest

from exporter.sources.registry.node.containerd import (
    ALL_CAPABILITIES,
    HostsError,
    certs_layout,
    config_for,
    load,
    parse_hosts,
)

HOSTS = '''
server = "https://registry.example.com"
ca = "/etc/ssl/upstream.pem"

[host."http://mirror-b.local:5000"]
  capabilities = ["pull", "resolve"]

[host."https://mirror-a.local"]
  capabilities = ["pull"]
  ca = ["ca.crt", "/abs/other.crt"]
  skip_verify = true

[host."https://proxy.local/cache/v2"]
  override_path = true

[host."https://odd.local/api"]
  override_path = true
'''


def test_hosts_in_file_order_then_server_with_their_tls_and_capabilities():
    config = parse_hosts(HOSTS, "certs.d/registry.example.com/hosts.toml", Path("/certs.d/registry.example.com"))
    hosts = config.hosts("registry.example.com")
    assert [(h.host, h.base) for h in hosts] == [
        ("mirror-b.local:5000", "http://mirror-b.local:5000"),
        ("mirror-a.local", "https://mirror-a.local"),
        ("proxy.local", "https://proxy.local/cache"),  # the path is the API root: /v2 comes off the base
        ("registry.example.com", "https://registry.example.com"),
    ]
    assert hosts[0].capabilities == {"pull", "resolve"} and hosts[0].insecure
    assert hosts[1].capabilities == {"pull"} and hosts[1].skip_verify
    assert hosts[1].ca_files == (Path("/certs.d/registry.example.com/ca.crt"), Path("/abs/other.crt"))
    assert hosts[2].capabilities == ALL_CAPABILITIES  # the default
    assert hosts[3].ca_files == (Path("/etc/ssl/upstream.pem"),)
    assert any("odd.local" in p and "not supported" in p for p in config.problems)  # said, not silently dropped


def test_a_path_without_override_gets_v2_appended():
    config = parse_hosts('[host."https://mirror.local/prefix"]\n', "h", Path("."))
    assert config.hosts("r.io")[0].base == "https://mirror.local/prefix"


def test_default_server_is_the_registry_itself_and_docker_hubs_api_host():
    config = parse_hosts('[host."https://mirror.local"]\n', "h", Path("."))
    assert [h.base for h in config.hosts("quay.io")] == ["https://mirror.local", "https://quay.io"]
    assert config.hosts("docker.io")[-1].base == "https://registry-1.docker.io"


@pytest.mark.parametrize("text, message", [
    ("server = [", "not TOML"),
    ('[host."ftp://x"]\n', "not an http(s) URL"),
    ('[host."https://x"]\ncapabilities = ["fetch"]\n', "capabilities"),
    ('[host."https://x"]\nskip_verify = "yes"\n', "skip_verify"),
])
def test_errors_name_the_file(text, message):
    with pytest.raises(HostsError, match="certs.d/x/hosts.toml") as info:
        parse_hosts(text, "certs.d/x/hosts.toml", Path("."))
    assert message in str(info.value)


def test_certs_layout_without_hosts_toml(tmp_path):
    config = certs_layout(tmp_path, ["ca.crt", "client.cert", "client.key", "b.crt"])
    [server] = config.hosts("registry.local:5000")
    assert server.base == "https://registry.local:5000"
    assert server.ca_files == (tmp_path / "b.crt", tmp_path / "ca.crt")
    assert config.problems  # client certificates: said to be unused


def test_load_a_directory_with_default_and_a_broken_file(tmp_path):
    (tmp_path / "registry.local:5000").mkdir()
    (tmp_path / "registry.local:5000" / "hosts.toml").write_text('[host."http://127.0.0.1:1"]\n')
    (tmp_path / "_default").mkdir()
    (tmp_path / "_default" / "hosts.toml").write_text('[host."https://catch-all.local"]\n')
    (tmp_path / "broken.io").mkdir()
    (tmp_path / "broken.io" / "hosts.toml").write_text("server = [")
    with pytest.raises(HostsError, match="broken.io/hosts.toml: not TOML"):
        load(tmp_path)  # containerd fails that registry's pulls: a check would not go where the node goes
    (tmp_path / "broken.io" / "hosts.toml").unlink()
    os.mkfifo(tmp_path / "broken.io" / "hosts.toml")
    with pytest.raises(HostsError, match="broken.io/hosts.toml: not a regular file"):
        load(tmp_path)  # a FIFO is refused, not waited on, nor taken for a missing hosts.toml
    (tmp_path / "broken.io" / "hosts.toml").unlink()
    configs, problems = load(tmp_path)
    assert set(configs) == {"registry.local:5000", "_default", "broken.io"} and problems == []
    assert config_for(configs, "registry.local:5000").hosts("registry.local:5000")[0].host == "127.0.0.1:1"
    assert config_for(configs, "quay.io").hosts("quay.io")[0].host == "catch-all.local"
