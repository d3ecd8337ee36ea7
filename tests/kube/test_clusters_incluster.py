"""In-cluster config: used when no kubeconfig is given and the pod's service environment is present."""

import pytest
from kubernetes.config import incluster_config

from exporter.sources.kube.clusters import KubeConfigError, load_clusters


@pytest.fixture
def service_account_files(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("in-cluster-token")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)


def test_in_cluster_config_without_kubeconfig(service_account_files):
    [client] = load_clusters()
    configuration = client._api.configuration
    assert client.name == "in-cluster"
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.get_api_key_with_prefix("BearerToken").lower() == "bearer in-cluster-token"


def test_in_cluster_name_can_be_set(service_account_files):
    assert load_clusters(cluster_name="prod-eu")[0].name == "prod-eu"


def test_broken_in_cluster_environment_is_one_line(service_account_files, monkeypatch, tmp_path):
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "absent"))
    with pytest.raises(KubeConfigError, match="in-cluster config"):
        load_clusters()


def test_no_kubeconfig_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="no kubeconfig"):
        load_clusters()
