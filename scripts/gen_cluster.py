#!/usr/bin/env python3
"""Write a cluster as a `kubectl get ... -A -o json` List: the bundled example, or a big generated one.

    scripts/gen_cluster.py --example > examples/cluster.json
    scripts/gen_cluster.py --pods 50000 --out /tmp/cluster-50k.json

The big cluster has a realistic spread: Deployments with ReplicaSets (Flux HelmRelease -> Kustomization
labels), DaemonSets on every node, CronJobs with Jobs, bare pods; about 10% of pods' images are unique.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys

FLUX = "kustomize.toolkit.fluxcd.io"
HELM = "helm.toolkit.fluxcd.io"


def uid(*parts: str) -> str:
    h = hashlib.sha1("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def meta(kind, namespace, name, labels=None, annotations=None, owner=None):
    m = {"name": name, "uid": uid(kind, namespace or "", name)}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    if owner:
        api, okind, oname = owner
        m["ownerReferences"] = [
            {"apiVersion": api, "kind": okind, "name": oname, "uid": uid(okind, namespace or "", oname),
             "controller": True, "blockOwnerDeletion": True}
        ]
    return m


def containers(images, prefix="c"):
    return [{"name": f"{prefix}{i}" if len(images) > 1 else prefix, "image": img} for i, img in enumerate(images)]


def pod(namespace, name, images, owner=None, node="worker-0", labels=None, init=None, ephemeral=None,
        annotations=None, pull_secrets=None, image_ids=True):
    spec = {"nodeName": node, "serviceAccountName": "default", "containers": containers(images, "main")}
    if init:
        spec["initContainers"] = containers(init, "init")
    if ephemeral:
        spec["ephemeralContainers"] = containers(ephemeral, "debugger")
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in pull_secrets]
    statuses = [
        {"name": c["name"], "image": c["image"], "ready": True,
         "imageID": (f"{c['image'].split('@')[0].rsplit(':', 1)[0]}@sha256:{hashlib.sha256(c['image'].encode()).hexdigest()}"
                     if image_ids else ""),
         "state": {"running": {"startedAt": "2026-11-01T00:00:00Z"}}}
        for c in spec["containers"]
    ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("Pod", namespace, name, labels, annotations, owner),
            "spec": spec, "status": {"phase": "Running", "containerStatuses": statuses}}


def template(images, init=None):
    spec = {"containers": containers(images, "main")}
    if init:
        spec["initContainers"] = containers(init, "init")
    return {"metadata": {}, "spec": spec}


def flux_labels(kustomization, helmrelease=None, namespace="sylva-system"):
    if helmrelease:
        return {f"{HELM}/name": helmrelease, f"{HELM}/namespace": namespace}
    return {f"{FLUX}/name": kustomization, f"{FLUX}/namespace": namespace}


def deployment_set(namespace, name, images, replicas, labels, init=None, rs_hash="5c9d8879fd", node_count=3):
    """A Deployment, its ReplicaSet and its pods."""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("Deployment", namespace, name, labels),
           "spec": {"replicas": replicas, "template": template(images, init)}}
    rs_name = f"{name}-{rs_hash}"
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": meta("ReplicaSet", namespace, rs_name, None, None, ("apps/v1", "Deployment", name)),
          "spec": {"replicas": replicas, "template": template(images, init)}}
    pods = [pod(namespace, f"{rs_name}-{i:05d}", images, ("apps/v1", "ReplicaSet", rs_name),
                node=f"worker-{i % node_count}", init=init) for i in range(replicas)]
    return [dep, rs, *pods]


def example() -> list[dict]:
    items: list[dict] = []
    ns = "sylva-system"
    # Flux: Kustomization -> HelmRelease -> Deployment -> ReplicaSet -> Pod (REFERENCE.md's cert-manager chain)
    items.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                  "metadata": meta("Kustomization", ns, "cert-manager")})
    items.append({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                  "metadata": meta("HelmRelease", ns, "cert-manager", flux_labels("cert-manager"))})
    items += deployment_set("cert-manager", "cert-manager", ["quay.io/jetstack/cert-manager-controller:v1.16.2"], 2,
                            flux_labels(None, "cert-manager"))
    items += deployment_set("cert-manager", "cert-manager-webhook", ["quay.io/jetstack/cert-manager-webhook:v1.16.2"],
                            1, flux_labels(None, "cert-manager"), rs_hash="7f9c6b5d4c")
    # Flux Kustomization labels directly on a StatefulSet, with an init container
    items.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                  "metadata": meta("Kustomization", ns, "vault")})
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": meta("StatefulSet", "vault", "vault", flux_labels("vault")),
           "spec": {"replicas": 1, "template": template(["hashicorp/vault:1.17.2"], init=["busybox:1.36"])}}
    items.append(sts)
    items.append(pod("vault", "vault-0", ["hashicorp/vault:1.17.2"], ("apps/v1", "StatefulSet", "vault"),
                     init=["busybox:1.36"]))
    # A DaemonSet from a Helm release (not Flux): unit from meta.helm.sh with --unit-source helm
    ds_annotations = {"meta.helm.sh/release-name": "node-exporter", "meta.helm.sh/release-namespace": "monitoring"}
    items.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                  "metadata": meta("DaemonSet", "monitoring", "node-exporter",
                                   {"app.kubernetes.io/managed-by": "Helm"}, ds_annotations),
                  "spec": {"template": template(["quay.io/prometheus/node-exporter:v1.8.2"])}})
    for i in range(3):
        items.append(pod("monitoring", f"node-exporter-{'abc'[i]}x{i}", ["quay.io/prometheus/node-exporter:v1.8.2"],
                         ("apps/v1", "DaemonSet", "node-exporter"), node=f"worker-{i}"))
    # CronJob -> Job -> Pod, under a Flux Kustomization
    items.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                  "metadata": meta("Kustomization", ns, "backups")})
    items.append({"apiVersion": "batch/v1", "kind": "CronJob",
                  "metadata": meta("CronJob", "backups", "etcd-backup", flux_labels("backups")),
                  "spec": {"schedule": "0 2 * * *", "suspend": False,
                           "jobTemplate": {"spec": {"template": template(["registry.k8s.io/etcd:3.5.15-0"])}}}})
    items.append({"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": meta("Job", "backups", "etcd-backup-28871234", None, None,
                                   ("batch/v1", "CronJob", "etcd-backup")),
                  "spec": {"template": template(["registry.k8s.io/etcd:3.5.15-0"])}})
    items.append(pod("backups", "etcd-backup-28871234-q7x2k", ["registry.k8s.io/etcd:3.5.15-0"],
                     ("batch/v1", "Job", "etcd-backup-28871234")))
    # A Deployment scaled to zero: no pods, its image still counts (inactive)
    items.append({"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": meta("Deployment", "tools", "debug-toolbox", flux_labels("tools")),
                  "spec": {"replicas": 0, "template": template(["ghcr.io/nicolaka/netshoot:v0.13"])}})
    # A bare pod with no unit, with an ephemeral debug container, pulling from a private registry
    items.append(pod("default", "scratch", ["registry.example.com/team/app:2.3.1"],
                     ephemeral=["busybox:1.36"], pull_secrets=["regcred"]))
    # A static pod: mirror annotation, owned by its Node
    items.append({"apiVersion": "v1", "kind": "Node", "metadata": meta("Node", None, "cp-0")})
    items.append(pod("kube-system", "kube-apiserver-cp-0", ["registry.k8s.io/kube-apiserver:v1.30.4"],
                     ("v1", "Node", "cp-0"), node="cp-0",
                     annotations={"kubernetes.io/config.mirror": "0c1f2a3b4c5d6e7f8091a2b3c4d5e6f7"}))
    # A pod whose image does not parse: reported as a warning, the rest processed
    items.append(pod("default", "typo", ["registry.example.com/Team/App:1"], image_ids=False))
    return items


def image_names(count: int, registry: str | None = None) -> list[str]:
    """The images of a generated cluster: the first `count` of one fixed sequence (smaller clusters use a prefix)."""
    return [f"{registry or f'registry{i % 5}.example.com'}/team{i % 40}/app{i}:v{i % 9}.{i % 13}" for i in range(count)]


def big(pods_wanted: int, seed: int = 7, registry: str | None = None) -> list[dict]:
    rnd = random.Random(seed)
    unique_images = max(1, pods_wanted // 10)
    images = image_names(unique_images, registry)
    items: list[dict] = []
    nodes = max(3, pods_wanted // 50)
    count = 0
    units = max(1, unique_images // 20)
    # DaemonSets: 5 of them, one pod per node, capped at 20% of pods
    for d in range(5):
        if count >= pods_wanted * 0.2:
            break
        name = f"agent-{d}"
        image = images[d % len(images)]
        items.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                      "metadata": meta("DaemonSet", "kube-system", name, flux_labels(f"unit-{d % units}")),
                      "spec": {"template": template([image])}})
        for n in range(min(nodes, int(pods_wanted * 0.04) or 1)):
            items.append(pod("kube-system", f"{name}-{n:05d}", [image], ("apps/v1", "DaemonSet", name),
                             node=f"node-{n}"))
            count += 1
    # CronJobs with one Job and one Pod each: 3%
    for j in range(int(pods_wanted * 0.03)):
        ns = f"ns-{j % 200}"
        name = f"cron-{j}"
        image = images[rnd.randrange(len(images))]
        items.append({"apiVersion": "batch/v1", "kind": "CronJob",
                      "metadata": meta("CronJob", ns, name, flux_labels(f"unit-{j % units}")),
                      "spec": {"jobTemplate": {"spec": {"template": template([image])}}}})
        job = f"{name}-2887{j:04d}"
        items.append({"apiVersion": "batch/v1", "kind": "Job",
                      "metadata": meta("Job", ns, job, None, None, ("batch/v1", "CronJob", name)),
                      "spec": {"template": template([image])}})
        items.append(pod(ns, f"{job}-x", [image], ("batch/v1", "Job", job), node=f"node-{j % nodes}"))
        count += 1
    # Bare pods: 2%
    for b in range(int(pods_wanted * 0.02)):
        items.append(pod(f"ns-{b % 200}", f"bare-{b}", [images[rnd.randrange(len(images))]], node=f"node-{b % nodes}"))
        count += 1
    # HelmReleases and Kustomizations for the units
    for u in range(units):
        items.append({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                      "metadata": meta("Kustomization", "sylva-system", f"unit-{u}")})
        items.append({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                      "metadata": meta("HelmRelease", "sylva-system", f"release-{u}", flux_labels(f"unit-{u}"))})
    # Deployments fill the rest, 10 replicas each, two containers on some
    d = 0
    while count < pods_wanted:
        replicas = min(10, pods_wanted - count)
        ns = f"ns-{d % 200}"
        imgs = [images[(d * 7) % len(images)]]
        if d % 4 == 0:
            imgs.append(images[(d * 7 + 3) % len(images)])
        items += deployment_set(ns, f"deploy-{d}", imgs, replicas, flux_labels(None, f"release-{d % units}"),
                                rs_hash=hashlib.md5(str(d).encode()).hexdigest()[:10], node_count=nodes)
        count += replicas
        d += 1
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--example", action="store_true", help="the bundled example cluster")
    group.add_argument("--pods", type=int, help="generate a cluster of this many pods")
    parser.add_argument("--out", help="write here instead of stdout")
    parser.add_argument("--registry", help="one registry host for every generated image")
    args = parser.parse_args()
    items = example() if args.example else big(args.pods, registry=args.registry)
    text = json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items},
                      indent=2 if args.example else None)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
