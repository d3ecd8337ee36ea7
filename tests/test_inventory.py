"""References from pods and workload templates: what the reference-level metrics will show."""

from exporter import inventory
from exporter.kube import listfile
from exporter.kube.owners import OwnerResolver

EXAMPLE = "examples/cluster.json"


def build():
    index = listfile.load(EXAMPLE)
    return inventory.build("demo", index.pods, index.workloads, OwnerResolver(index.lookup))


def by_workload(refs):
    return {(r.workload_kind, r.workload, r.container): r for r in refs}


def test_replicas_collapse_to_one_reference_per_container():
    refs, _ = build()
    cert = [r for r in refs if r.workload == "cert-manager"]
    assert len({(r.container, r.image) for r in cert}) == 1
    [ref] = {r for r in cert if r.active}
    assert ref.unit == "cert-manager" and ref.workload_kind == "Deployment"


def test_scaled_to_zero_deployment_still_counts_inactive():
    refs, _ = build()
    [ref] = [r for r in refs if r.workload == "debug-toolbox"]
    assert ref.active is False and ref.image == "ghcr.io/nicolaka/netshoot:v0.13"


def test_init_and_ephemeral_containers_have_their_type():
    refs, _ = build()
    types = {(r.workload, r.container_type) for r in refs}
    assert ("vault", "init") in types and ("scratch", "ephemeral") in types


def test_cronjob_pods_and_template_are_one_reference():
    refs, _ = build()
    cron = {(r.workload_kind, r.workload, r.image) for r in refs if "etcd" in r.image}
    assert cron == {("CronJob", "etcd-backup", "registry.k8s.io/etcd:3.5.15-0")}


def test_unparsable_image_keeps_raw_string_and_is_named_in_problems():
    refs, problems = build()
    [typo] = [r for r in refs if r.workload == "typo"]
    assert typo.image == "registry.example.com/Team/App:1"
    assert any("default/typo" in p and "lowercase" in p for p in problems)


def test_bare_pod_has_no_unit_and_keeps_its_pull_secrets():
    refs, _ = build()
    [scratch] = [r for r in refs if r.workload == "scratch" and r.container_type == "container"]
    assert scratch.unit is None and scratch.workload_kind == "Pod" and scratch.pull_secrets == ("regcred",)
