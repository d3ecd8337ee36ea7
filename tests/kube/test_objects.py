"""One reading of a pod spec: a pod, a workload template and a Helm-rendered manifest pull alike."""

import yaml

from exporter.sources.kube.objects import trim
from exporter.sources.kube.releases import pod_images

SPEC = {
    "serviceAccount": "legacy",  # the deprecated spelling, still accepted by the API
    "imagePullSecrets": [{"name": "regcred"}, {"bad": 1}],
    "initContainers": [{"name": "init", "image": "busybox:1"}],
    "containers": [{"name": "main", "image": "nginx:1"}],
}


def test_pods_templates_and_manifests_read_the_same_pull_facts():
    pod = trim({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}, "spec": SPEC})
    deployment = trim({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
                       "spec": {"template": {"spec": SPEC}}})
    [rendered] = pod_images(yaml.safe_dump({"kind": "Deployment", "spec": {"template": {"spec": SPEC}}}))
    for obj in (pod, deployment):
        assert [(c.name, c.image, c.type) for c in obj.containers] == [
            ("init", "busybox:1", "init"), ("main", "nginx:1", "container")]
        assert (obj.pull_secrets, obj.service_account) == (("regcred",), "legacy")
    assert (rendered.images, rendered.pull_secrets, rendered.service_account) == (
        ("busybox:1", "nginx:1"), ("regcred",), "legacy")
