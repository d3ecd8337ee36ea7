"""The Helm chart, rendered by Helm's own library (helm-python-sdk) and validated against Kubernetes' schemas.

Default values and several non-default sets render, lint strictly, and validate; bad values fail at install
with the key's name; the config file the chart writes is one the exporter loads; and the RBAC grants exactly
what the exporter calls, checked by running the exporter against the API emulator and recording its requests.
"""

import json
import re
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's library) is in the test extras")

from exporter.commands.config import load  # noqa: E402
from exporter.serve.endpoints import Published  # noqa: E402
from exporter.serve.loop import Exporter, Filters  # noqa: E402
from exporter.sources.kube.clusters import load_clusters  # noqa: E402
from exporter.sources.registry.checker import Checker  # noqa: E402
from exporter.sources.registry.settings import RegistrySettings  # noqa: E402
from tests.conftest import make_pod  # noqa: E402
from tests.kube.test_releases import DEPLOYMENT, helm_object  # noqa: E402
from tests.support import eventually  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "helm/kube-image-exporter"
KUBERNETES = "1.33.0"

EVERYTHING = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
    "prometheusRule": {"enabled": True},
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "Images"}},
    "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
    "podDisruptionBudget": {"enabled": True},
    "expectedLists": {"release-1.4": "nginx:1.27\nquay.io/jetstack/cert-manager-controller:v1.16.2\n"},
    "rollbackImages": {"namespaces": ["apps"]},
    "rbac": {"secretNamespaces": ["apps", "shop"], "configMapNamespaces": ["flux-system"]},
    "config": {"interval": 120, "namespace_selector": "team", "expected": ["configmap:flux-system/release"],
               "registries": {"registry.example.com": {"rate": 10}}, "log_format": "json"},
    "extraEnv": [{"name": "KUBE_IMAGE_EXPORTER_LOG_LEVEL", "value": "debug"}],
}
NODE_HOST_PATHS = {"node": {"hostPath": {
    "credentialProviderConfig": "/etc/eks/image-credential-provider/config.json",
    "credentialProviderBinDir": "/etc/eks/image-credential-provider",
    "kubeletDockerConfig": "/var/lib/kubelet/config.json",
    "containerdHostsDir": "/etc/containerd/certs.d", "containersDir": "/etc/containers"}}}
NODE_VALUES = {"node": {
    "credentialProviderConfig": {
        "apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig",
        "providers": [{"name": "ecr-credential-provider", "matchImages": ["*.dkr.ecr.*.amazonaws.com"],
                       "defaultCacheDuration": "12h", "apiVersion": "credentialprovider.kubelet.k8s.io/v1"}]},
    "credentialProviderBinDir": "/opt/credential-providers",
    "containerdHosts": {"docker.io": '[host."https://mirror.example.com"]\n  capabilities = ["pull", "resolve"]\n',
                        "registry.local:5000": 'server = "http://registry.local:5000"\n'},
    "registriesConf": '[[registry]]\nlocation = "quay.io"\n', "serviceAccountTokens": True}}
VALUE_SETS = {
    "default": {},
    "everything": EVERYTHING,
    "node-host-paths": NODE_HOST_PATHS,
    "node-values": NODE_VALUES,
    "no-secrets": {"rbac": {"readSecrets": False}},
    "own-account": {"serviceAccount": {"create": False, "name": "existing"}, "rbac": {"create": False}},
}


def render(values: dict) -> list[dict]:
    manifests = helm.Chart.load(CHART).render(values, name="kie", namespace="monitoring")
    return [doc for path, text in sorted(manifests.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_renders_lints_and_validates(name):
    values = VALUE_SETS[name]
    report = helm.lint(str(CHART), values, strict=True, namespace="monitoring")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for doc in render(values):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            assert doc["kind"] in ("ServiceMonitor", "PrometheusRule") and doc["spec"]  # CRDs: no schema here
            continue
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_pod_is_locked_down_and_probed():
    [deployment] = of_kind(render({}), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["args"] == ["serve", "--config", "/etc/kube-image-exporter/config.yaml"]


def test_config_file_is_one_the_exporter_loads(tmp_path):
    docs = render(EVERYTHING)
    config = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "kie-kube-image-exporter")
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    settings = load(path)
    assert settings.listen == "0.0.0.0:9706" and settings.interval == 120
    assert settings.expected == ["configmap:flux-system/release", "release-1.4=/etc/kube-image-exporter/expected/release-1.4"]
    assert settings.rollback_images == ["apps"] and settings.registries["registry.example.com"].rate == 10
    [deployment] = of_kind(docs, "Deployment")
    mounts = {m["name"]: m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["expected"] == "/etc/kube-image-exporter/expected"


def test_durations_in_values_are_go_durations(tmp_path):
    docs = render({"config": {"interval": "5m", "watch_down_threshold": "1h30m"},
                   "serviceMonitor": {"enabled": True, "interval": "1m30s"}})
    config = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "kie-kube-image-exporter")
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    settings = load(path)
    assert (settings.interval, settings.watch_down_threshold) == (300, 5400)
@pytest.mark.parametrize(("values", "web_ui"), [({}, True), ({"webUI": False}, False),
                                               ({"config": {"web_ui": False}}, False)])
def test_web_ui_value_reaches_the_exporter(tmp_path, values, web_ui):
    config = next(d for d in of_kind(render(values), "ConfigMap") if d["metadata"]["name"] == "kie-kube-image-exporter")
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    assert load(path).web_ui is web_ui


def test_a_config_change_rolls_the_pod():
    def checksum(values):
        [deployment] = of_kind(render(values), "Deployment")
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({}) == checksum({}) != checksum({"config": {"interval": 30}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"config": {"interval": -5}}, "/config/interval"),
        ({"config": {"interval": "5 minutes"}}, "/config/interval"),
        ({"serviceMonitor": {"interval": "1 minute"}}, "/serviceMonitor/interval"),
        ({"config": {"intervall": 5}}, "additional properties 'intervall' not allowed"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"service": {"port": "http"}}, "/service/port"),
        ({"rbac": {"secretNamespaces": ["Not_A_Namespace"]}}, "/rbac/secretNamespaces/0"),
    ],
)
def test_bad_values_fail_naming_the_key(values, message):
    with pytest.raises(helm.HelmValuesError, match=re.escape(message)):
        render(values)


def test_alert_rules_and_dashboards_are_the_projects_own_files():
    docs = render(EVERYTHING)
    [rule] = of_kind(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load((ROOT / "rules/kube-image-exporter.rules.yaml").read_text())["groups"]
    dashboards = {key: json.loads(value) for d in of_kind(docs, "ConfigMap")
                  if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1" for key, value in d["data"].items()}
    files = {p.name: json.loads(p.read_text()) for p in (ROOT / "dashboards").glob("*.json")}
    assert dashboards == files and files


def test_values_schema_is_generated_from_the_settings_model():
    sys.path.insert(0, str(ROOT / "scripts"))
    import chart_schema

    assert (CHART / "values.schema.json").read_text() == chart_schema.text(), "run scripts/chart_schema.py"


def test_readme_lists_every_value():
    whole = {"resources.requests", "resources.limits"}  # Kubernetes objects, documented as one value

    def leaves(node, prefix=""):
        for key, value in node.items():
            path = prefix + key
            if isinstance(value, dict) and value and path not in whole:
                yield from leaves(value, path + ".")
            else:
                yield path

    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Za-z.]+)` \|", readme, flags=re.M))
    assert set(leaves(yaml.safe_load((CHART / "values.yaml").read_text()))) <= documented


# -- RBAC: what the exporter calls, against what the chart grants --

GROUPS = {"pods": "", "events": "", "nodes": "", "namespaces": "", "secrets": "", "serviceaccounts": "",
          "configmaps": "", "deployments": "apps", "replicasets": "apps", "statefulsets": "apps",
          "daemonsets": "apps", "jobs": "batch", "cronjobs": "batch", "helmreleases": "helm.toolkit.fluxcd.io",
          "clusterpolicies": "kyverno.io", "policies": "kyverno.io", "clusterimagepolicies": "policy.sigstore.dev"}


def grants(docs, kinds=("ClusterRole", "Role")) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for doc in docs if doc["kind"] in kinds for rule in doc["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


def test_rbac_grants_exactly_what_the_exporter_calls(emulator, kubeconfig):
    from tests.emulator.server import Resource

    for resource in (Resource("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", namespaced=False),
                     Resource("kyverno.io", "v1", "policies", "Policy"),
                     Resource("policy.sigstore.dev", "v1beta1", "clusterimagepolicies", "ClusterImagePolicy",
                              namespaced=False)):
        emulator.register(resource)  # their CRDs installed: the exporter reads them
    emulator.create_many([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": {"team": "a"}}},
        {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
         "metadata": {"name": "web", "namespace": "flux-system"}},
        make_pod("web", "apps", "nginx:1", labels={"helm.toolkit.fluxcd.io/name": "web",
                                                  "helm.toolkit.fluxcd.io/namespace": "flux-system"}),
        make_pod("etcd-node-1", "apps", "etcd:3", owner=("v1", "Node", "node-1")),  # a static pod
        make_pod("secret-user", "apps", "nginx:2", imagePullSecrets=[{"name": "regcred"}]),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "release", "namespace": "flux-system"},
         "data": {"list.txt": "nginx:1\n"}},
        helm_object(1, "superseded", namespace="apps", manifest=DEPLOYMENT.format(image="nginx:0.9")),
    ])
    exporter = Exporter(load_clusters(kubeconfig), Checker(RegistrySettings(timeout=0.5, hosts={})), Published(),
                        expected=["configmap:flux-system/release"], filters=Filters(namespace_selector="team"),
                        interval=0.2, watch_timeout=2, rollback_namespaces=["apps"])
    exporter.checker.check_many = lambda requests, **kwargs: {}  # no registry here: RBAC is the point
    exporter.start()
    try:
        assert eventually(lambda: exporter.published.ready, timeout=30)
        # the optional kinds (Nodes, policies) are not waited for by readiness: their watches open on their own
        optional = ("nodes", "clusterpolicies", "policies", "clusterimagepolicies")
        assert eventually(lambda: all(("watch", plural) in emulator.requests for plural in optional), timeout=30)
    finally:
        exporter.stop()
    called = {(GROUPS[plural], plural, verb) for verb, plural in emulator.requests}
    granted = grants(render(EVERYTHING))
    assert called - granted == set(), "calls the chart does not allow"
    assert grants(render(EVERYTHING), ("ClusterRole",)) - called == set(), "cluster-wide grants never used"
    roles: dict[str, set] = {}
    for doc in of_kind(render(EVERYTHING), "Role"):
        roles.setdefault(doc["metadata"]["namespace"], set()).update(grants([doc]))
    assert roles["apps"] == {("", "secrets", "get"), ("", "secrets", "list"), ("", "secrets", "watch"),
                             ("", "configmaps", "list"), ("", "configmaps", "watch")}
    assert roles["flux-system"] == {("", "configmaps", "get")}


def test_secret_reads_follow_the_rbac_values():
    assert ("", "secrets", "get") in grants(render({}), ("ClusterRole",))
    assert ("", "secrets", "get") not in grants(render({"rbac": {"readSecrets": False}}))
    limited = render({"rbac": {"secretNamespaces": ["apps"]}})
    assert ("", "secrets", "get") not in grants(limited, ("ClusterRole",))
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in of_kind(limited, "Role")] == [
        ("apps", "kie-kube-image-exporter-pull-secrets")]
    assert not of_kind(render({"rbac": {"create": False}}), "ClusterRole")


def _pod(values):
    [deployment] = of_kind(render(values), "Deployment")
    return deployment["spec"]["template"]["spec"]


def test_node_host_paths_are_read_only_and_only_the_files_named():
    pod = _pod(NODE_HOST_PATHS)
    volumes = {v["name"]: v for v in pod["volumes"]}
    host_paths = sorted(v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v)
    assert host_paths == ["/etc/containerd/certs.d", "/etc/containers", "/etc/eks/image-credential-provider",
                          "/etc/eks/image-credential-provider/config.json", "/var/lib/kubelet/config.json"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert all(m.get("readOnly") for m in mounts if "hostPath" in volumes[m["name"]])
    assert not any(v["hostPath"]["path"] == "/var/lib/kubelet" for v in volumes.values() if "hostPath" in v)


@pytest.mark.parametrize("values", [NODE_HOST_PATHS, NODE_VALUES], ids=["hostPath", "values"])
def test_node_view_config_points_at_the_mounted_files(values, tmp_path):
    """The config the chart writes names files the pod mounts, and the exporter reads them as the node's view."""
    from exporter.sources.registry.node.view import NodeOptions, NodeView

    docs = render(values)
    config = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "kie-kube-image-exporter")
    path = tmp_path / "config.yaml"
    path.write_text(config["data"]["config.yaml"])
    settings = load(path)
    pod = _pod(values)
    mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    node_paths = [settings.image_credential_provider_config, settings.image_credential_provider_bin_dir,
                  settings.containerd_hosts_dir, settings.registries_conf]
    assert all(p is not None for p in node_paths)
    for p in node_paths:
        assert str(p) == "/opt/credential-providers" or any(str(p) == m or str(p).startswith(m + "/") for m in mounts)
    if values is NODE_VALUES:  # lay the ConfigMaps out as the kubelet would, then read them as the exporter does
        root = tmp_path / "pod"
        files = {d["metadata"]["name"]: d["data"] for d in of_kind(docs, "ConfigMap")}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in pod["containers"][0]["volumeMounts"]:
            volume = volumes[mount["name"]]
            if "configMap" not in volume or not mount["mountPath"].startswith("/node"):
                continue
            data = files[volume["configMap"]["name"]]
            items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                target = root / mount["mountPath"].lstrip("/") / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(data[item["key"]])
        (root / "opt/credential-providers").mkdir(parents=True)
        view = NodeView(NodeOptions(*(root / str(p).lstrip("/") for p in node_paths[:2]), None,
                                    *(root / str(p).lstrip("/") for p in node_paths[2:])))
        assert view.problems == []
        from exporter.model.images import parse
        route = view.route(parse("nginx:1.27"))
        assert [e.base for e in route.endpoints] == ["https://mirror.example.com", "https://registry-1.docker.io"]
        assert [e.base for e in view.route(parse("registry.local:5000/a:1")).endpoints] == ["http://registry.local:5000"]


def test_service_account_tokens_are_granted_only_when_asked_for(tmp_path):
    token = ("", "serviceaccounts/token", "create")
    assert token not in grants(render({})) and token not in grants(render(NODE_HOST_PATHS))
    docs = render(NODE_VALUES)
    assert token in grants(docs, ("ClusterRole",))
    config = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == "kie-kube-image-exporter")
    (tmp_path / "config.yaml").write_text(config["data"]["config.yaml"])
    assert load(tmp_path / "config.yaml").service_account_tokens is True
