#!/usr/bin/env python3
"""The baseline `report` is measured against: a cluster read the way Sylva's `get_image_refs.py` reads it.

    .venv/bin/python scripts/bench_report_baseline.py --kubeconfig KUBECONFIG > refs.json

A re-creation of that script's approach from its documented behaviour (REFERENCE.md §5), not its code: the
official client's models, every pod listed, then for each pod its owner chain walked with one GET per owner
(through the typed API of its kind), HelmReleases fetched when a Flux Helm label names one, nothing remembered between pods. Writes the report's `images` and
`units_per_image`; used by scripts/bench_load.py for the `report` row.
"""

from __future__ import annotations

import argparse
import json
import sys

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/name"
FLUX_HELMRELEASE = "helm.toolkit.fluxcd.io/name"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig")
    args = parser.parse_args()
    api = config.new_client_from_config(args.kubeconfig)
    core = client.CoreV1Api(api)
    apps, batch, custom = client.AppsV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    readers = {
        "ReplicaSet": apps.read_namespaced_replica_set, "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set, "DaemonSet": apps.read_namespaced_daemon_set,
        "Job": batch.read_namespaced_job, "CronJob": batch.read_namespaced_cron_job,
    }

    def get(api_version, kind, namespace, name):
        try:
            if kind == "HelmRelease":
                group, _, version = api_version.partition("/")
                return custom.get_namespaced_custom_object(group, version, namespace, "helmreleases", name)
            if kind == "Node":
                return json.loads(core.read_node(name, _preload_content=False).data)
            if kind in readers:
                return json.loads(readers[kind](name, namespace, _preload_content=False).data)
        except ApiException:
            return None
        return None

    def unit_of(obj, depth=0):
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if FLUX_KUSTOMIZATION in labels:
            return labels[FLUX_KUSTOMIZATION]
        if FLUX_HELMRELEASE in labels and depth < 10:
            namespace = labels.get("helm.toolkit.fluxcd.io/namespace", meta.get("namespace"))
            release = get("helm.toolkit.fluxcd.io/v2", "HelmRelease", namespace, labels[FLUX_HELMRELEASE])
            return unit_of(release, depth + 1) if release else None
        for owner in meta.get("ownerReferences") or []:
            if depth < 10:
                parent = get(owner["apiVersion"], owner["kind"], meta.get("namespace"), owner["name"])
                if parent:
                    return unit_of(parent, depth + 1)
        return None

    units: dict[str, set[str]] = {}
    images: set[str] = set()
    for raw in json.loads(core.list_pod_for_all_namespaces(_preload_content=False).data)["items"]:
        unit = unit_of(raw)
        spec = raw.get("spec") or {}
        for key in ("containers", "initContainers", "ephemeralContainers"):
            for container in spec.get(key) or []:
                images.add(container["image"])
                if unit:
                    units.setdefault(container["image"], set()).add(unit)
    json.dump({"images": sorted(images), "units_per_image": {i: sorted(u) for i, u in sorted(units.items())}},
              sys.stdout, indent=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
