"""containerd's registry hosts (`config_path`, conventionally /etc/containerd/certs.d): where a node pulls from.

`DIR/HOST[:PORT]/hosts.toml` configures one registry, `DIR/_default/hosts.toml` every other one. Its
`[host."URL"]` tables are mirrors, tried in file order, then `server` (default `https://HOST`; Docker Hub's
is `https://registry-1.docker.io`). A host answers a tag lookup only with the `resolve` capability and a
digest fetch only with `pull` (both, and `push`, when `capabilities` is not set). A URL's path is the API
root's prefix: `/v2` is appended unless `override_path` says the path is the API root itself. `ca` and
`skip_verify` set TLS per host. A host directory without hosts.toml is read as Docker's certs layout
(`*.crt` CAs) for the registry itself.

Parsing is pure (`parse_hosts`, `certs_layout`); `load` reads a directory into {namespace: HostsConfig}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from exporter.common.files import ReadError, parse_toml, read_text
from exporter.model.images import api_host

ALL_CAPABILITIES = frozenset({"pull", "resolve", "push"})
DEFAULT = "_default"


class HostsError(ValueError):
    """A hosts.toml containerd would refuse; the message names the file."""


@dataclass(frozen=True, slots=True)
class Host:
    """One place to pull from: its API base (`scheme://host[:port][/prefix]`, without `/v2`) and TLS."""

    host: str  # host[:port]
    base: str
    capabilities: frozenset[str] = ALL_CAPABILITIES
    ca_files: tuple[Path, ...] = ()
    skip_verify: bool = False

    @property
    def insecure(self) -> bool:
        return self.base.startswith("http://")


@dataclass(frozen=True, slots=True)
class HostsConfig:
    """One host directory: mirrors in file order, and the server when the file names one."""

    source: str
    mirrors: tuple[Host, ...] = ()
    server: Host | None = None
    server_tls: tuple[tuple[Path, ...], bool] = ((), False)  # ca, skip_verify for the default server
    problems: tuple[str, ...] = ()

    def hosts(self, registry: str) -> list[Host]:
        """Hosts to try for an image of `registry`, in the node's order (mirrors, then the server)."""
        server = self.server
        if server is None:
            ca, skip_verify = self.server_tls
            netloc = api_host(registry)
            server = Host(netloc, f"https://{netloc}", ALL_CAPABILITIES, ca, skip_verify)
        return [*self.mirrors, server]


def _ca_files(value: Any, directory: Path, where: str) -> tuple[Path, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise HostsError(f"{where}: ca must be a path or a list of paths")
    return tuple(p if p.is_absolute() else directory / p for p in map(Path, items))


def _host(url: str, table: dict, where: str, directory: Path) -> tuple[Host | None, str]:
    """A Host from a URL and its table; (None, why) for what the checker cannot follow."""
    text = url if "://" in url else f"https://{url}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HostsError(f"{where}: {url!r} is not an http(s) URL")
    capabilities = table.get("capabilities")
    if capabilities is None:
        caps = ALL_CAPABILITIES
    elif isinstance(capabilities, list) and all(c in ALL_CAPABILITIES for c in capabilities):
        caps = frozenset(capabilities)
    else:
        raise HostsError(f"{where}: capabilities of {url!r} must be a list of pull, resolve, push")
    skip_verify = table.get("skip_verify", False)
    if not isinstance(skip_verify, bool):
        raise HostsError(f"{where}: skip_verify of {url!r} must be true or false")
    override = table.get("override_path", False)
    path = parts.path.rstrip("/")
    if not path:
        root = "/v2"
    elif override:
        root = path
    else:
        root = path if path.endswith("/v2") else path + "/v2"
    if not root.endswith("/v2"):
        return None, f"{where}: {url!r}: override_path to an API root not ending in /v2 is not supported; skipped"
    host = Host(parts.netloc.lower(), f"{parts.scheme}://{parts.netloc.lower()}{root[:-3]}", caps,
                _ca_files(table.get("ca"), directory, where), skip_verify)
    return host, ""


def parse_hosts(text: str, source: str, directory: Path) -> HostsConfig:
    """A hosts.toml's content; `directory` resolves relative `ca` paths as containerd does."""
    try:
        data = parse_toml(text)  # nesting bounded: inline arrays thousands deep are refused, not recursed into
    except ReadError as exc:
        raise HostsError(f"{source}: {exc}") from None
    problems = []
    if "client" in data or any(isinstance(t, dict) and "client" in t for t in (data.get("host") or {}).values()):
        problems.append(f"{source}: client certificates are not used by checks")
    mirrors = []
    tables = data.get("host") or {}
    if not isinstance(tables, dict):
        raise HostsError(f"{source}: 'host' must be tables [host.\"URL\"]")
    for url, table in tables.items():  # tomllib keeps file order
        if not isinstance(table, dict):
            raise HostsError(f"{source}: host {url!r} must be a table")
        host, problem = _host(url, table, source, directory)
        if host is not None:
            mirrors.append(host)
        else:
            problems.append(problem)
    server = None
    if data.get("server"):
        if not isinstance(data["server"], str):
            raise HostsError(f"{source}: server must be a URL")
        server, problem = _host(data["server"], data, source, directory)
        if server is None:
            problems.append(problem)
    tls = (_ca_files(data.get("ca"), directory, source), bool(data.get("skip_verify", False)))
    return HostsConfig(source, tuple(mirrors), server, tls, tuple(problems))


def certs_layout(directory: Path, files: list[str]) -> HostsConfig:
    """Docker's certs.d layout (no hosts.toml): every `*.crt` is a CA for the registry itself."""
    cas = tuple(directory / name for name in sorted(files) if name.endswith(".crt"))
    problems = ()
    if any(name.endswith((".cert", ".key")) for name in files):
        problems = (f"{directory}: client certificates are not used by checks",)
    return HostsConfig(str(directory), server_tls=(cas, False), problems=problems)


def load(root: Path) -> tuple[dict[str, HostsConfig], list[str]]:
    """Every host directory under `root` ({namespace: config}) and what they hold that checks cannot follow;
    HostsError naming the file when one cannot be read or parsed (containerd fails that registry's pulls: a check
    skipping the file would go where the node does not)."""
    configs: dict[str, HostsConfig] = {}
    problems: list[str] = []
    try:
        directories = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise HostsError(f"containerd hosts dir {root}: {exc.strerror}") from None
    for directory in directories:
        hosts_toml = directory / "hosts.toml"
        try:
            if os.path.lexists(hosts_toml):  # a FIFO or device named hosts.toml is refused, not taken for absent
                config = parse_hosts(read_text(hosts_toml), str(hosts_toml), directory)
            else:
                config = certs_layout(directory, [p.name for p in directory.iterdir() if p.is_file()])
        except ReadError as exc:
            raise HostsError(f"{hosts_toml}: {exc}") from None
        except OSError as exc:
            raise HostsError(f"{directory}: cannot read ({exc.strerror})") from None
        problems.extend(config.problems)
        configs[directory.name.lower()] = config
    return configs, problems


def config_for(configs: dict[str, HostsConfig], registry: str) -> HostsConfig | None:
    """The host directory containerd uses for a registry: its own, else `_default`."""
    return configs.get(registry.lower()) or configs.get(DEFAULT)
