"""What every command shares: the global options, the registry options, and reading the one settings model.

Registration is cheap (argparse only); the settings model and the registry code are imported when a command
runs, so `--help` of any command does not pay for pydantic or the Kubernetes client.
"""

from __future__ import annotations

import argparse
from typing import Any

from exporter.commands.errors import UsageError
from exporter.common.logs import FORMATS, LEVELS

GLOBAL_KEYS = ("log_level", "log_format")
NODE_KEYS = ("image_credential_provider_config", "image_credential_provider_bin_dir", "kubelet_root_dir",
             "containerd_hosts_dir", "registries_conf")
REGISTRY_KEYS = ("docker_config", "ca_file", "insecure_registries", "skip_verify", "registry_mirrors", "concurrency",
                 "rate", *NODE_KEYS)
CACHE_KEYS = ("cache_url", "cache_password_file")


def add_global(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """`--config`, `--log-level`, `--log-format`: on the main parser and (SUPPRESS) on each subcommand's."""
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--config", metavar="FILE", default=default,
                       help="YAML settings file (every setting has a key; see the README); every file named is read "
                            "only when it is a regular file, at most 8 MiB and nested at most 100 deep")
    group.add_argument("--log-level", choices=LEVELS, default=default, help="default info")
    group.add_argument("--log-format", choices=FORMATS, default=default,
                       help="text (default) or json, one object a line")


def add_cluster(parser: argparse.ArgumentParser, contexts_help: str) -> None:
    """How `serve` and `report` reach clusters and find units."""
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    parser.add_argument("--context", dest="contexts", action="append", metavar="NAME", help=contexts_help)
    parser.add_argument("--unit-source", dest="unit_sources", action="append", metavar="SOURCE",
                        help="how units are found, in order: flux (default), helm, argocd, label:KEY; repeatable")


def _skip_verify_host(value: str) -> str:
    """A registry host; kubectl's `--insecure-skip-tls-verify=true` habit is refused rather than read as a host."""
    if value.strip().lower() in ("true", "false"):
        raise argparse.ArgumentTypeError(
            f"takes a registry HOST, not {value!r}: verification is skipped per registry, never for all")
    return value


def add_registry(parser: argparse.ArgumentParser) -> None:
    """The registry options of `check`, `report --check-registry` and `serve`."""
    group = parser.add_argument_group("registry options")
    group.add_argument("--docker-config", dest="docker_config", action="append", metavar="PATH",
                       help="docker config.json with registry credentials; repeatable")
    group.add_argument("--ca-file", metavar="PATH", help="extra CA certificates (PEM) for every registry")
    group.add_argument("--insecure-registry", dest="insecure_registries", action="append", metavar="HOST",
                       help="plain HTTP to this registry; repeatable")
    group.add_argument("--skip-verify", "--insecure-skip-tls-verify", dest="skip_verify", action="append",
                       metavar="HOST", type=_skip_verify_host,
                       help="no TLS certificate verification for this registry (kubectl's spelling works too); "
                            "repeatable")
    group.add_argument("--registry-mirror", dest="registry_mirrors", action="append", metavar="FROM=TO",
                       help="check images of FROM on the mirror TO[/PATH] first; repeatable")
    group.add_argument("--concurrency", metavar="N",
                       help="cap on requests in flight per registry, 1 to 256 (default: none, load adapts below 32 "
                            "for check, 16 for serve)")
    group.add_argument("--rate", metavar="R",
                       help="cap on requests per second per registry, 0.01 to 10000 (default: none, load adapts; "
                            "Retry-After honoured)")
    node = parser.add_argument_group("node view", "pull as a node would: the kubelet's credentials, the runtime's mirrors")
    node.add_argument("--image-credential-provider-config", metavar="FILE",
                      help="the kubelet's CredentialProviderConfig (plugins run for matching images)")
    node.add_argument("--image-credential-provider-bin-dir", metavar="DIR", help="where the plugins are")
    node.add_argument("--kubelet-root-dir", metavar="DIR", help="node docker config (config.json, .dockercfg)")
    node.add_argument("--containerd-hosts-dir", metavar="DIR", help="containerd config_path (certs.d with hosts.toml)")
    node.add_argument("--registries-conf", metavar="FILE", help="CRI-O registries.conf (and its .conf.d drop-ins)")


def add_cache(parser: argparse.ArgumentParser) -> None:
    """The shared cache options of `serve` and `check`."""
    parser.add_argument("--cache-url", metavar="URL", help="share check results with other exporters: "
                        "redis://HOST:PORT/DB or rediss:// (Redis, Valkey)")
    parser.add_argument("--cache-password-file", metavar="PATH",
                        help="the cache's password when the URL has none (else $KUBE_IMAGE_EXPORTER_CACHE_PASSWORD)")


def shared_cache(loaded, **options):
    """The shared cache the settings name (`cache_url`), or None; UsageError for a bad URL or password file.
    `options` go to SharedCache. redis is imported only when a cache is set."""
    if not loaded.cache_url:
        return None
    from exporter.sources.registry.shared import SharedCache, SharedCacheError, read_password

    try:
        password = read_password(loaded.cache_password_file)  # else the environment's, if any
        return SharedCache(loaded.cache_url, password=password, **options)
    except SharedCacheError as exc:
        raise UsageError(str(exc)) from None


def settings(args: argparse.Namespace, keys: tuple[str, ...]):
    """The settings model from `--config`, the environment and these flags; UsageError naming the key when bad.

    Applies the log settings, which the environment or the config file may hold too.
    """
    from exporter.commands.config import ConfigError, load
    from exporter.common import logs

    flags = {key: getattr(args, key, None) for key in (*keys, *GLOBAL_KEYS)}
    try:
        loaded = load(getattr(args, "config", None), flags)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    logs.configure(loaded.log_level, loaded.log_format)
    return loaded


def keyring(loaded):
    """Credentials of the settings' docker config files; UsageError when one is missing or broken."""
    from exporter.sources.registry.credentials import CredentialError, Keyring, from_docker_config_file

    try:
        return Keyring.of(c for path in loaded.docker_config for c in from_docker_config_file(path))
    except CredentialError as exc:
        raise UsageError(str(exc)) from None


def registry(loaded):
    """The checker's settings and the node-level keyring: docker config files, then the node's view when set.

    UsageError when a docker config or a node file is missing or broken.
    """
    from dataclasses import replace
    from pathlib import Path

    registry_settings, node_keyring = loaded.registry_settings(), keyring(loaded)
    if not any(getattr(loaded, key) for key in NODE_KEYS):  # the node's view is loaded only when asked for
        return registry_settings, node_keyring
    from exporter.sources.registry.node.view import NodeConfigError, NodeOptions, NodeView

    paths = NodeOptions(*(Path(p) if (p := getattr(loaded, key)) else None for key in NODE_KEYS))
    try:
        view = NodeView(paths)
    except NodeConfigError as exc:
        raise UsageError(str(exc)) from None
    return replace(registry_settings, node=view), view.keyring(node_keyring)
