"""The node flags shared by `serve` and `check`: the kubelet's credentials and the runtime's registry config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from exporter.commands import CommandError
from exporter.registry.credentials import Keyring
from exporter.registry.node.view import NodeConfigError, NodeOptions, NodeView
from exporter.registry.settings import RegistrySettings

FLAGS = ("image_credential_provider_config", "image_credential_provider_bin_dir", "kubelet_root_dir",
         "containerd_hosts_dir", "registries_conf")


def add_arguments(parser) -> None:
    group = parser.add_argument_group("node view", "pull as a node would: the kubelet's credentials, the runtime's mirrors")
    group.add_argument("--image-credential-provider-config", metavar="FILE",
                       help="the kubelet's CredentialProviderConfig (plugins run for matching images)")
    group.add_argument("--image-credential-provider-bin-dir", metavar="DIR", help="where the plugins are")
    group.add_argument("--kubelet-root-dir", metavar="DIR", help="node docker config (config.json, .dockercfg)")
    group.add_argument("--containerd-hosts-dir", metavar="DIR", help="containerd config_path (certs.d with hosts.toml)")
    group.add_argument("--registries-conf", metavar="FILE", help="CRI-O registries.conf (and its .conf.d drop-ins)")


def add_serve_arguments(parser) -> None:
    add_arguments(parser)
    parser.add_argument("--service-account-tokens", action="store_true", default=None,
                        help="request workloads' ServiceAccount tokens for credential providers with tokenAttributes")


def apply(values, registry_settings: RegistrySettings, keyring: Keyring) -> tuple[RegistrySettings, Keyring]:
    """Settings and keyring with the node's view, when any node flag is set (`values`: settings or args)."""
    paths = {key: getattr(values, key, None) for key in FLAGS}
    options = NodeOptions(*(Path(paths[key]) if paths[key] else None for key in FLAGS))
    if not options:
        return registry_settings, keyring
    try:
        view = NodeView(options)
    except NodeConfigError as exc:
        raise CommandError(str(exc)) from None
    return replace(registry_settings, node=view), view.keyring(keyring)
