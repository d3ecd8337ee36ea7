"""References from pods and workload templates: what the reference-level metrics will show."""

from exporter.sources import inventory
from exporter.sources.kube import listfile
from exporter.sources.kube.owners import OwnerResolver

EXAMPLE = "examples/cluster.json"


def build():
    index = listfile.load(EXAMPLE)
    return inventory.build("demo", index.pods, index.workloads, OwnerResolver(index.lookup))


def by_workload(refs):
    return {(r.workload_kind, r.workload, r.container): r for r in refs}


def test_replicas_collapse_to_one_reference_per_container():
    refs = build().references
    cert = [r for r in refs if r.workload == "cert-manager"]
    assert len({(r.container, r.image) for r in cert}) == 1
    [ref] = {r for r in cert if r.running_digest}  # two replicas running one digest: one row
    assert ref.unit == "cert-manager" and ref.workload_kind == "Deployment" and ref.active
    assert {r.running_digest for r in cert} == {ref.running_digest, ""}  # and the template's row


def test_scaled_to_zero_deployment_still_counts_inactive():
    refs = build().references
    [ref] = [r for r in refs if r.workload == "debug-toolbox"]
    assert ref.active is False and ref.image == "ghcr.io/nicolaka/netshoot:v0.13"


def test_init_and_ephemeral_containers_have_their_type():
    refs = build().references
    types = {(r.workload, r.container_type) for r in refs}
    assert ("vault", "init") in types and ("scratch", "ephemeral") in types


def test_cronjob_pods_and_template_are_one_reference():
    refs = build().references
    cron = {(r.workload_kind, r.workload, r.image) for r in refs if "etcd" in r.image}
    assert cron == {("CronJob", "etcd-backup", "registry.k8s.io/etcd:3.5.15-0")}


def test_unparsable_image_keeps_raw_string_and_is_named_in_problems():
    refs, _, problems, _ = build()
    [typo] = [r for r in refs if r.workload == "typo"]
    assert typo.image == "registry.example.com/Team/App:1"
    assert any("default/typo" in p and "lowercase" in p for p in problems)


def test_bare_pod_has_no_unit_and_keeps_its_pull_secrets():
    refs = build().references
    [scratch] = [r for r in refs if r.workload == "scratch" and r.container_type == "container"]
    assert scratch.unit is None and scratch.workload_kind == "Pod" and scratch.pull_secrets == ("regcred",)


def test_memo_reuses_rows_of_unchanged_objects_until_an_owner_changes():
    from exporter.sources.kube.listfile import ObjectIndex
    from exporter.sources.kube.objects import trim
    from tests.conftest import make_pod

    def deployment(labels):
        return trim({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "web", "namespace": "shop", "uid": "d", "labels": labels},
                     "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "main", "image": "nginx"}]}}}})

    rs = trim({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "web-1", "namespace": "shop", "uid": "r",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": True}]}})
    raw_pod = make_pod("web-1-a", "shop", "nginx", owner=("apps/v1", "ReplicaSet", "web-1"))
    raw_pod["metadata"]["uid"] = "p"
    pod = trim(raw_pod)
    memo = {}

    def run(*objects):
        index = ObjectIndex(objects)
        resolver = OwnerResolver(index.lookup)
        walks = []
        walk = resolver._walk
        resolver._walk = lambda start: walks.append(start.key) or walk(start)
        refs = inventory.build("c", index.pods, index.workloads, resolver, memo).references
        return {(r.workload, r.unit) for r in refs}, walks

    plain = deployment({})
    assert run(plain, rs, pod) == ({("web", None)}, ["Pod/shop/web-1-a", "Deployment/shop/web"])
    assert run(plain, rs, pod) == ({("web", None)}, [])  # nothing changed: no owner chain walked
    labelled = deployment({"kustomize.toolkit.fluxcd.io/name": "shop"})  # the Deployment joins a unit
    refs, walks = run(labelled, rs, pod)
    assert refs == {("web", "shop")} and sorted(walks) == ["Deployment/shop/web", "Pod/shop/web-1-a"]
    run(labelled, rs)  # the pod is gone: forgotten
    assert set(memo) == {"d"}


def test_chains_are_builds_chains_and_problems_without_the_rows(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    generated = subprocess.run([sys.executable, "scripts/gen_cluster.py", "--pods", "2000"], check=True,
                               capture_output=True).stdout
    items = json.loads(generated)["items"] + json.loads(Path(EXAMPLE).read_text())["items"]
    items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typo-2", "namespace": "default"},
                  "spec": {"containers": [{"name": "main", "image": "registry.example.com/Team/App:1"}]}})
    (tmp_path / "pods.json").write_text(json.dumps({"kind": "List", "items": items}))
    index = listfile.load(tmp_path / "pods.json")
    built = inventory.build("", index.pods, (), OwnerResolver(index.lookup))
    chains, problems = inventory.chains(index.pods, OwnerResolver(index.lookup))
    assert chains == built.chains and len(chains) == len(index.pods) > 2000
    assert problems == built.problems and len(problems) == 2  # one line for each pod, naming it
