"""Which clusters to read, and how to reach them: kubeconfig contexts, in-cluster config, workload clusters.

Each cluster becomes an independent `ClusterClient` (nothing global), named by its context or an explicit
name: that name is the `cluster` label. Every failure is one `KubeConfigError` line naming the problem.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from exporter.common.files import FileProblem, read_yaml
from exporter.sources.kube.api import ApiError, ClusterClient

IN_CLUSTER_NAME = "in-cluster"


class KubeConfigError(Exception):
    """No usable cluster: a missing or broken kubeconfig, an unknown context, a missing secret."""


def _read_kubeconfig(path: Path) -> dict:
    try:
        data = read_yaml(path, "kubeconfig")
    except FileProblem as exc:
        raise KubeConfigError(str(exc)) from None
    problem = shape_problem(data)
    if problem:
        raise KubeConfigError(f"kubeconfig {path}: {problem}")
    return data


# The named lists of a kubeconfig, the mapping each entry holds, and the string fields read from it.
_SECTIONS = {
    "contexts": ("context", ("cluster", "user", "namespace")),
    "clusters": ("cluster", ("server", "certificate-authority", "certificate-authority-data", "tls-server-name",
                             "proxy-url")),
    "users": ("user", ("token", "tokenFile", "username", "password", "client-certificate",
                       "client-certificate-data", "client-key", "client-key-data")),
}


def shape_problem(data: object) -> str | None:
    """Where a kubeconfig is not shaped as one (`contexts[0].context is a int, not a mapping`), or None.

    The Kubernetes client fails on such input with an AttributeError deep inside; checked here, the user reads
    which entry to fix.
    """
    if not isinstance(data, dict):
        return f"not a kubeconfig (a {type(data).__name__}, not a mapping)"
    if not isinstance(data.get("contexts"), list):
        return "has no contexts"
    if not isinstance(data.get("current-context", ""), (str, type(None))):
        return "current-context is not a string"
    for section, (field, strings) in _SECTIONS.items():
        entries = data.get(section) or []
        if not isinstance(entries, list):
            return f"{section} is a {type(entries).__name__}, not a list"
        for index, entry in enumerate(entries):
            where = f"{section}[{index}]"
            if not isinstance(entry, dict):
                return f"{where} is a {type(entry).__name__}, not a mapping"
            if not isinstance(entry.get("name"), str):
                return f"{where}.name is missing or not a string"
            body = entry.get(field)
            if body is None and section != "contexts":
                continue
            if not isinstance(body, dict):
                return f"{where}.{field} is a {type(body).__name__}, not a mapping"
            for key in strings:
                if key in body and not isinstance(body[key], str):
                    return f"{where}.{field}.{key} is a {type(body[key]).__name__}, not a string"
    return None


def _client_from_dict(data: dict, context: str | None, origin: str) -> ApiClient:
    configuration = Configuration()
    try:
        kube_config.load_kube_config_from_dict(data, context=context, client_configuration=configuration)
    except kube_config.ConfigException as exc:
        raise KubeConfigError(f"{origin}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # the client's own failures on odd input (AttributeError, binascii.Error, ...)
        raise KubeConfigError(f"{origin}: unusable kubeconfig ({type(exc).__name__}: {exc})") from None
    return _client(configuration)


def _client(configuration: Configuration) -> ApiClient:
    """One long watch per reflector holds a connection each: room for all of them, and the GETs besides.
    The library's own retries are off: the reflector backs off, and urllib3's retries under it tripled an
    outage's log lines and delayed every error."""
    configuration.connection_pool_maxsize = 32
    configuration.retries = False
    _trim_token(configuration)
    refresh = configuration.refresh_api_key_hook
    if refresh is not None:  # called before each request: sets the token as read again (in-cluster, exec plugins)
        def refreshed(config, refresh=refresh):
            refresh(config)  # the library's hook sets the token untrimmed and installs itself again
            _trim_token(config)
            config.refresh_api_key_hook = refreshed

        configuration.refresh_api_key_hook = refreshed
    return ApiClient(configuration)


def _trim_token(configuration: Configuration) -> None:
    """A bearer token without the white space around it, as client-go reads a `tokenFile` (`strings.TrimSpace`):
    `echo TOKEN > file` ends it with a newline, which no HTTP header may carry."""
    value = configuration.api_key.get("BearerToken")
    if isinstance(value, str):
        scheme, _, token = value.strip().partition(" ")
        configuration.api_key["BearerToken"] = f"{scheme} {token.strip()}" if token else scheme


def default_kubeconfig() -> Path | None:
    """$KUBECONFIG (first file), else ~/.kube/config when it exists."""
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    home = Path("~/.kube/config").expanduser()
    return home if home.exists() else None


def load_clusters(
    kubeconfig: str | Path | None = None,
    contexts: list[str] | None = None,
    cluster_name: str | None = None,
) -> list[ClusterClient]:
    """Clients for the given contexts (current context when none), or in-cluster config without a kubeconfig."""
    contexts = list(contexts or [])
    if cluster_name and len(contexts) > 1:
        raise KubeConfigError("a cluster name can only be given for one context")
    path = Path(kubeconfig).expanduser() if kubeconfig else None
    if path is None and "KUBERNETES_SERVICE_HOST" in os.environ and not contexts:
        configuration = Configuration()
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException as exc:
            raise KubeConfigError(f"in-cluster config: {exc}") from None
        return [ClusterClient(cluster_name or IN_CLUSTER_NAME, _client(configuration))]
    path = path or default_kubeconfig()
    if path is None:
        raise KubeConfigError("no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run inside a cluster")
    data = _read_kubeconfig(path)
    known = [c.get("name") for c in data["contexts"] if isinstance(c, dict)]
    if not contexts:
        current = data.get("current-context")
        if not current:
            raise KubeConfigError(f"kubeconfig {path} has no current-context: pass --context ({', '.join(known)})")
        contexts = [current]
    clients = []
    for context in contexts:
        if context not in known:
            raise KubeConfigError(f"context {context!r} not in {path} (known: {', '.join(map(str, known)) or 'none'})")
        client = _client_from_dict(data, context, f"kubeconfig {path} context {context!r}")
        clients.append(ClusterClient(cluster_name or context, client))
    return clients


def workload_cluster(management: ClusterClient, name: str) -> ClusterClient:
    """The Cluster API workload cluster NAME, from the Secret `<NAME>-kubeconfig` next to its `Cluster`."""
    try:
        clusters, _ = management.list("cluster.x-k8s.io/v1beta1", "Cluster", field_selector=f"metadata.name={name}")
    except ApiError as exc:
        raise KubeConfigError(f"cannot list Cluster API clusters on {management.name}: {exc}") from None
    clusters = [c for c in clusters if (c.get("metadata") or {}).get("name") == name]
    if not clusters:
        raise KubeConfigError(f"no Cluster API Cluster named {name!r} on {management.name}")
    namespace = clusters[0]["metadata"].get("namespace")
    secret_name = f"{name}-kubeconfig"
    try:
        secret = management.get("v1", "Secret", namespace, secret_name)
    except ApiError as exc:
        raise KubeConfigError(f"cannot read Secret {namespace}/{secret_name}: {exc}") from None
    if secret is None:
        raise KubeConfigError(f"Secret {namespace}/{secret_name} not found or not readable on {management.name}")
    encoded = (secret.get("data") or {}).get("value")
    if not encoded:
        raise KubeConfigError(f"Secret {namespace}/{secret_name} has no key 'value'")
    try:
        data = yaml.safe_load(base64.b64decode(encoded, validate=True))
    except (ValueError, yaml.YAMLError, RecursionError):
        raise KubeConfigError(f"Secret {namespace}/{secret_name}: 'value' is not a base64 kubeconfig") from None
    problem = shape_problem(data)
    if problem:
        raise KubeConfigError(f"Secret {namespace}/{secret_name}: 'value' {problem}")
    return ClusterClient(name, _client_from_dict(data, None, f"kubeconfig of workload cluster {name!r}"))
