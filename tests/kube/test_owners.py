"""Owner chains and units over trimmed objects, looked up through an in-memory index."""

from exporter.sources.kube.listfile import ObjectIndex
from exporter.sources.kube.objects import trim
from exporter.sources.kube.owners import OwnerResolver, label_keys


def obj(kind, ns, name, labels=None, annotations=None, owner=None, api="apps/v1", **spec):
    meta = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    if ns:
        meta["namespace"] = ns
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner[0], "kind": owner[1], "name": owner[2], "controller": True}]
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


FLUX_HR = {"helm.toolkit.fluxcd.io/name": "cm", "helm.toolkit.fluxcd.io/namespace": "flux"}
FLUX_KS = {"kustomize.toolkit.fluxcd.io/name": "cert-manager", "kustomize.toolkit.fluxcd.io/namespace": "flux"}


def resolver(objects, sources=("flux",)):
    index = ObjectIndex([trim(o, label_keys(sources)) for o in objects])
    calls = []

    def lookup(*key):
        calls.append(key)
        return index.lookup(*key)

    return OwnerResolver(lookup, sources), calls


def test_flux_chain_deployment_helmrelease_kustomization():
    objects = [
        obj("HelmRelease", "flux", "cm", FLUX_KS, api="helm.toolkit.fluxcd.io/v2"),
        obj("Deployment", "cert", "cm", FLUX_HR),
        obj("ReplicaSet", "cert", "cm-1", owner=("apps/v1", "Deployment", "cm")),
    ]
    r, _ = resolver(objects)
    pod = trim(obj("Pod", "cert", "cm-1-x", owner=("apps/v1", "ReplicaSet", "cm-1"), api="v1"))
    res = r.resolve(pod)
    assert (res.workload_kind, res.workload, res.unit) == ("Deployment", "cm", "cert-manager")
    assert res.chain == (
        "Kustomization/flux/cert-manager",
        "HelmRelease/flux/cm",
        "Deployment/cert/cm",
        "ReplicaSet/cert/cm-1",
        "Pod/cert/cm-1-x",
    )


def test_cronjob_is_the_workload_of_its_jobs_pods():
    objects = [obj("CronJob", "b", "backup", api="batch/v1"), obj("Job", "b", "backup-1", owner=("batch/v1", "CronJob", "backup"), api="batch/v1")]
    r, _ = resolver(objects)
    res = r.resolve(trim(obj("Pod", "b", "backup-1-x", owner=("batch/v1", "Job", "backup-1"), api="v1")))
    assert (res.workload_kind, res.workload, res.unit) == ("CronJob", "backup", None)


def test_unreadable_owner_ends_the_chain_with_what_is_known():
    r, _ = resolver([])  # the ReplicaSet is forbidden or gone
    res = r.resolve(trim(obj("Pod", "a", "p", owner=("apps/v1", "ReplicaSet", "web-1"), api="v1")))
    assert (res.workload_kind, res.workload, res.unit) == ("ReplicaSet", "web-1", None)
    assert res.chain == ("ReplicaSet/a/web-1", "Pod/a/p")


def test_lookup_errors_do_not_fail_the_resolution():
    def broken(*key):
        raise RuntimeError("boom")

    res = OwnerResolver(broken).resolve(trim(obj("Pod", "a", "p", owner=("apps/v1", "ReplicaSet", "rs"), api="v1")))
    assert res.workload == "rs"


def test_static_pod_is_its_own_workload_under_its_node():
    r, _ = resolver([])
    res = r.resolve(trim(obj("Pod", "kube-system", "etcd-cp-0", owner=("v1", "Node", "cp-0"), api="v1")))
    assert (res.workload_kind, res.workload) == ("Pod", "etcd-cp-0")
    assert res.chain == ("Node/None/cp-0", "Pod/kube-system/etcd-cp-0")


def test_owner_lookups_are_cached():
    objects = [obj("Deployment", "a", "web"), obj("ReplicaSet", "a", "web-1", owner=("apps/v1", "Deployment", "web"))]
    r, calls = resolver(objects)
    for i in range(50):
        r.resolve(trim(obj("Pod", "a", f"web-1-{i}", owner=("apps/v1", "ReplicaSet", "web-1"), api="v1")))
    assert len(calls) == 2


def test_unit_sources_in_order():
    helm = {"meta.helm.sh/release-name": "ingress"}
    argo = {"argocd.argoproj.io/instance": "platform"}
    objects = [obj("Deployment", "a", "web", labels={**argo, "team": "blue"}, annotations=helm)]
    pod = trim(obj("Pod", "a", "p", owner=("apps/v1", "Deployment", "web"), api="v1"), label_keys(["label:team"]))
    assert resolver(objects, ("flux", "helm", "argocd"))[0].resolve(pod).unit == "ingress"
    assert resolver(objects, ("argocd", "helm"))[0].resolve(pod).unit == "platform"
    assert resolver(objects, ("label:team",))[0].resolve(pod).unit == "blue"
    assert resolver(objects, ("flux",))[0].resolve(pod).unit is None


def test_argocd_tracking_id_annotation():
    objects = [obj("Deployment", "a", "web", annotations={"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:a/web"})]
    pod = trim(obj("Pod", "a", "p", owner=("apps/v1", "Deployment", "web"), api="v1"))
    assert resolver(objects, ("argocd",))[0].resolve(pod).unit == "shop"


def test_owner_cycle_is_cut():
    objects = [
        obj("ReplicaSet", "a", "x", owner=("apps/v1", "ReplicaSet", "y")),
        obj("ReplicaSet", "a", "y", owner=("apps/v1", "ReplicaSet", "x")),
    ]
    res = resolver(objects)[0].resolve(trim(obj("Pod", "a", "p", owner=("apps/v1", "ReplicaSet", "x"), api="v1")))
    assert res.chain[-1] == "Pod/a/p" and len(res.chain) <= 4


def test_replicas_share_one_walk_each_with_its_own_chain(monkeypatch):
    objects = [obj("Deployment", "a", "web", FLUX_HR), obj("ReplicaSet", "a", "web-1", owner=("apps/v1", "Deployment", "web"))]
    r, calls = resolver(objects)
    walks = []
    walk = OwnerResolver._walk
    monkeypatch.setattr(OwnerResolver, "_walk", lambda self, start: walks.append(start.key) or walk(self, start))
    for i in range(20):
        res = r.resolve(trim(obj("Pod", "a", f"web-1-{i}", owner=("apps/v1", "ReplicaSet", "web-1"), api="v1")))
        assert (res.workload_kind, res.workload, res.unit) == ("Deployment", "web", None)
        assert res.chain == ("HelmRelease/flux/cm", "Deployment/a/web", "ReplicaSet/a/web-1", f"Pod/a/web-1-{i}")
    assert walks == ["Pod/a/web-1-0"]


def test_a_replica_with_a_unit_of_its_own_is_not_given_its_siblings():
    objects = [obj("ReplicaSet", "a", "web-1", annotations={"meta.helm.sh/release-name": "web"})]
    r, _ = resolver(objects, ("helm",))
    plain = trim(obj("Pod", "a", "p", owner=("apps/v1", "ReplicaSet", "web-1"), api="v1"))
    own = trim(obj("Pod", "a", "q", owner=("apps/v1", "ReplicaSet", "web-1"), api="v1",
                   annotations={"meta.helm.sh/release-name": "debug"}))
    assert (r.resolve(plain).unit, r.resolve(own).unit) == ("web", "debug")


def test_a_chain_through_the_object_itself_is_resolved_as_if_alone():
    # p -> r -> p: a cycle through p; q -> r -> p -> r: q's walk passes through p
    objects = [obj("ReplicaSet", "a", "r", owner=("v1", "Pod", "p")),
               obj("Pod", "a", "p", owner=("apps/v1", "ReplicaSet", "r"), api="v1")]
    pods = [trim(obj("Pod", "a", name, owner=("apps/v1", "ReplicaSet", "r"), api="v1")) for name in ("p", "q")]
    alone = [resolver(objects)[0].resolve(pod) for pod in pods]
    assert alone[0].chain == ("ReplicaSet/a/r", "Pod/a/p")
    assert alone[1].chain == ("Pod/a/p", "ReplicaSet/a/r", "Pod/a/q")
    for order in (pods, pods[::-1]):
        r, _ = resolver(objects)
        together = {pod.meta.key: r.resolve(pod) for pod in order}
        assert [together[pod.meta.key] for pod in pods] == alone
