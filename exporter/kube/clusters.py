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

from exporter.kube.api import ApiError, ClusterClient

IN_CLUSTER_NAME = "in-cluster"


class KubeConfigError(Exception):
    """No usable cluster: a missing or broken kubeconfig, an unknown context, a missing secret."""


def _read_kubeconfig(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KubeConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise KubeConfigError(f"kubeconfig {path} has no contexts")
    return data


def _client_from_dict(data: dict, context: str | None, origin: str) -> ApiClient:
    configuration = Configuration()
    try:
        kube_config.load_kube_config_from_dict(data, context=context, client_configuration=configuration)
    except kube_config.ConfigException as exc:
        raise KubeConfigError(f"{origin}: {exc}") from None
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise KubeConfigError(f"{origin}: unusable kubeconfig ({type(exc).__name__}: {exc})") from None
    return _client(configuration)


def _client(configuration: Configuration) -> ApiClient:
    """One long watch per reflector holds a connection each: room for all of them, and the GETs besides.
    The library's own retries are off: the reflector backs off, and urllib3's retries under it tripled an
    outage's log lines and delayed every error."""
    configuration.connection_pool_maxsize = 32
    configuration.retries = False
    return ApiClient(configuration)


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
    except (ValueError, yaml.YAMLError):
        raise KubeConfigError(f"Secret {namespace}/{secret_name}: 'value' is not a base64 kubeconfig") from None
    if not isinstance(data, dict):
        raise KubeConfigError(f"Secret {namespace}/{secret_name}: 'value' is not a kubeconfig")
    return ClusterClient(name, _client_from_dict(data, None, f"kubeconfig of workload cluster {name!r}"))
