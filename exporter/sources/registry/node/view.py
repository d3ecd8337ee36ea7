"""The node's view joined for the checker: routes to endpoints, TLS per host, and node credentials.

`NodeView` is built from the node flags (`--image-credential-provider-config`, `--image-credential-provider-bin-dir`,
`--kubelet-root-dir`, `--containerd-hosts-dir`, `--registries-conf`). Each source is re-read when its
files change. `route(ref)` answers where the node would pull one image from — containerd's hosts first,
else registries.conf; None when neither configures its registry — and the checker tries those endpoints
like `--registry-mirror` ones. `host_options(host)` gives the TLS of the hosts those files name.
`credentials(registry, repository)` is the node's part of a keyring (see `keyring.NodeKeyring`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from exporter.common.files import ReadError, read_certificates
from exporter.model.images import ImageRef, api_host
from exporter.sources.registry.credentials import Credential, Keyring, short_hash
from exporter.sources.registry.node import containerd, docker_config, plugin, providers, registries_conf
from exporter.sources.registry.node.files import Reloading
from exporter.sources.registry.node.keyring import NodeKeyring
from exporter.sources.registry.settings import HostOptions

log = logging.getLogger(__name__)

PLUGIN_TIMEOUT = 10.0  # seconds a plugin may take; the kubelet's own bound is wider, but a check must not stall


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # host[:port]: limits, the `registry` label, TLS options
    base: str  # scheme://host[:port][/prefix], `/v2/...` is appended
    repository: str


@dataclass(frozen=True, slots=True)
class Route:
    """Where the node pulls one image from; no endpoints and a `refusal` when it would not pull it."""

    endpoints: tuple[Endpoint, ...]
    source: str
    refusal: str = ""


@dataclass(frozen=True)
class NodeOptions:
    provider_config: Path | None = None
    provider_bin_dir: Path | None = None
    kubelet_root_dir: Path | None = None
    containerd_hosts_dir: Path | None = None
    registries_conf: Path | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in vars(self).values())


class NodeConfigError(ValueError):
    """Node configuration that cannot be used at start; the message names the file."""


def _runner(bin_dir: Path, timeout: float) -> providers.Runner:
    def run(spec: providers.ProviderSpec, request: bytes) -> bytes:
        env = providers.environment(spec, os.environ)
        return plugin.run(bin_dir / spec.name, spec.args, env, request, timeout)
    return run


class NodeView:
    """The node's registry configuration and credentials, re-read as the files change."""

    def __init__(self, options: NodeOptions, clock: Callable[[], float] = time.monotonic, recheck: float = 5.0,
                 plugin_timeout: float = PLUGIN_TIMEOUT) -> None:
        self.options = options
        self._clock = clock
        for flag, path in (("--image-credential-provider-config", options.provider_config),
                           ("--image-credential-provider-bin-dir", options.provider_bin_dir),
                           ("--kubelet-root-dir", options.kubelet_root_dir),
                           ("--containerd-hosts-dir", options.containerd_hosts_dir),
                           ("--registries-conf", options.registries_conf)):
            if path is not None and not path.exists():
                raise NodeConfigError(f"{flag} {path}: no such file or directory")
        self._bundles = Path(tempfile.mkdtemp(prefix="kube-image-exporter-ca-"))
        self._problems: dict[str, list[str]] = {}
        self._providers = self._docker = self._containerd = self._crio = None
        if options.provider_config is not None:
            if options.provider_bin_dir is None:
                raise NodeConfigError("--image-credential-provider-config needs --image-credential-provider-bin-dir")
            config, bin_dir = options.provider_config, options.provider_bin_dir
            self._providers = Reloading(
                lambda: [config],
                lambda: providers.CredentialProviders(providers.load_config(config), _runner(bin_dir, plugin_timeout),
                                                      clock),
                f"credential provider config {config}", recheck, clock)
        if options.kubelet_root_dir is not None:
            root = options.kubelet_root_dir
            self._docker = Reloading(lambda: docker_config.paths(root), lambda: docker_config.load(root),
                                     f"node docker config in {root}", recheck, clock)
        if options.containerd_hosts_dir is not None:
            hosts_dir = options.containerd_hosts_dir
            self._containerd = Reloading(lambda: [hosts_dir], lambda: self._noted("containerd", containerd.load(hosts_dir)),
                                         f"containerd hosts dir {hosts_dir}", recheck, clock)
        if options.registries_conf is not None:
            conf = options.registries_conf
            dropins = conf.parent / f"{conf.stem}.conf.d"
            self._crio = Reloading(lambda: [conf, dropins], lambda: self._noted("crio", registries_conf.load(conf)),
                                   f"registries.conf {conf}", recheck, clock)
        self._hosts: dict[str, HostOptions] = {}
        self._seen: tuple | None = None
        self.fingerprint = ""
        self.uses_service_accounts = False
        self.refresh()

    def _noted(self, source: str, loaded):
        """The loaded value; its problems logged once per load and kept until the next one."""
        value, problems = loaded
        for problem in problems:
            log.warning("%s", problem)
        self._problems[source] = list(problems)
        return value

    @property
    def problems(self) -> list[str]:
        """What the node's files hold that checks cannot follow (said in logs when read)."""
        return [problem for problems in self._problems.values() for problem in problems]

    def refresh(self) -> None:
        """Re-read what changed (at most every `recheck` seconds); NodeConfigError for a bad first read."""
        try:
            specs = self._providers.get().specs if self._providers else ()
            docker = self._docker.get() if self._docker else ()
            hosts = self._containerd.get() if self._containerd else {}
            crio = self._crio.get() if self._crio else ()
        except ValueError as exc:  # ProviderConfigError, CredentialError: only on the first read
            raise NodeConfigError(str(exc)) from None
        seen = (specs, docker, hosts, crio)
        if self._seen is not None and all(a is b for a, b in zip(seen, self._seen)):
            return  # nothing was reloaded: keep what was derived from it
        self._seen = seen
        self._hosts = self._host_options(hosts, crio)
        node = repr(specs) + "\0" + (Keyring(docker).fingerprint if docker else "")
        self.fingerprint = short_hash(node) if (specs or docker) else ""
        self.uses_service_accounts = any(spec.token_attributes is not None for spec in specs)

    # -- where to pull from --

    def route(self, ref: ImageRef) -> Route | None:
        """The endpoints the node tries for this image, in its order; None when its registry is not configured."""
        self.refresh()
        by_digest = ref.digest is not None
        if self._containerd is not None:
            config = containerd.config_for(self._containerd.get(), ref.registry)
            if config is not None:
                needed = {"pull"} if by_digest else {"pull", "resolve"}
                hosts = [h for h in config.hosts(ref.registry) if needed <= h.capabilities]
                if not hosts:
                    what = "digest" if by_digest else "tag"
                    return Route((), config.source, f"no host in {config.source} may serve a {what} lookup")
                return Route(tuple(Endpoint(h.host, h.base, ref.repository) for h in hosts), config.source)
        if self._crio is not None:
            name = f"{ref.registry}/{ref.repository}"
            entry = registries_conf.find(self._crio.get(), name)
            if entry is not None:
                if entry.blocked:
                    return Route((), entry.source, f"{entry.prefix} is blocked by {entry.source}")
                endpoints = []
                for location, insecure in registries_conf.locations(entry, name, by_digest):
                    host, _, repository = location.partition("/")
                    api = api_host(host)
                    endpoints.append(Endpoint(api, f"{'http' if insecure else 'https'}://{api}", repository))
                return Route(tuple(endpoints), entry.source)
        return None

    def host_options(self, host: str) -> HostOptions | None:
        """TLS options of a host named by the node's files (None when they say nothing of it)."""
        options = self._hosts.get(host)
        if options is None and "_default" in self._hosts:
            return self._hosts["_default"]
        return options

    def _host_options(self, hosts: dict[str, containerd.HostsConfig], crio: tuple) -> dict[str, HostOptions]:
        out: dict[str, HostOptions] = {}
        for namespace, config in hosts.items():
            listed = list(config.mirrors) + ([config.server] if config.server else [])
            for host in listed:
                out.setdefault(host.host, HostOptions(host.insecure, host.skip_verify, self._bundle(host.ca_files)))
            ca, skip_verify = config.server_tls
            if config.server is None and (ca or skip_verify):
                server = api_host(namespace)
                out.setdefault(server, HostOptions(False, skip_verify, self._bundle(ca)))
        for entry in crio:
            for location in (*entry.mirrors, registries_conf.Location(entry.location, entry.insecure)):
                host = location.location.partition("/")[0]
                if host and location.insecure:
                    out.setdefault(host, HostOptions(insecure=True))
        return out

    def _bundle(self, files: tuple[Path, ...]) -> Path | None:
        """One CA file for the checker, written here from the named files, each read the bounded way and checked to
        hold PEM certificates: a FIFO, an endless or a binary file named in a hosts.toml never reaches the TLS
        library, which would block on it or fail the host's every check with a traceback. A file left out is
        named in a warning; its host is then verified against the system's CAs (a `tls_error` if that fails)."""
        parts = []
        for file in files:
            try:
                parts.append(read_certificates(file).encode())
            except ReadError as exc:
                log.warning("CA file %s not used: %s", file, exc)
        if not parts:
            return None
        content = b"\n".join(parts)
        path = self._bundles / (hashlib.sha256(content).hexdigest()[:16] + ".pem")
        path.write_bytes(content)
        return path

    # -- credentials --

    def credentials(self, registry: str, repository: str, account: providers.ServiceAccount | None = None,
                    run: bool = True) -> list[Credential] | None:
        """The node's credentials for an image: plugins in config order, then the kubelet's docker config.

        `account` is the pod's ServiceAccount (for providers with tokenAttributes). Provider failures come
        last, as `FailedCredential`s naming the provider. With `run` False, None when a plugin would run.
        """
        self.refresh()
        found: list[Credential] = []
        if self._providers is not None:
            found = self._providers.get().credentials(f"{registry}/{repository}", account, run)
            if found is None:
                return None
        if self._docker is not None:
            found += Keyring(self._docker.get()).match(registry, repository)
        return sorted(found, key=lambda c: isinstance(c, providers.FailedCredential))

    def keyring(self, base: Keyring | None = None) -> NodeKeyring:
        """A keyring that holds `base`'s credentials, then the node's."""
        return NodeKeyring(base.credentials if base is not None else (), self)

    @property
    def plugin_calls(self) -> int:
        return self._providers.get().calls if self._providers else 0
