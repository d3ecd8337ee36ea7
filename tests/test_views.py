"""/report is a view of the Snapshot: built from the chains and states the cycle computed, nothing else."""

import json

from exporter.model.records import PodChain, Reference, Status
from exporter.snapshot.join import ImageState, join
from exporter.views import report

WEB = "registry.example.com/web:1"
DEBUG = "docker.io/library/busybox:1.36"


def reference(image, workload, unit):
    return Reference("prod", "shop", "Deployment", workload, "main", "container", image, unit)


def chains(cluster):
    return (PodChain(("Kustomization/flux/shop", "Deployment/shop/web", "ReplicaSet/shop/web-1", "Pod/shop/web-1-a"),
                     "shop", (("main", WEB),)),
            PodChain(("Pod/tools/debug",), None, (("main", DEBUG), ("side", DEBUG))))


def snapshot(*clusters):
    pairs = [(reference(WEB, "web", "shop"), ImageState(Status.AVAILABLE, "registry.example.com")),
             (reference(DEBUG, "debug", None), ImageState(Status.ABSENT, "docker.io"))]
    return join(pairs, {}, {}, clusters, now=1.0, chains={name: chains(name) for name in clusters})


def test_report_page_is_the_sylva_report_of_the_snapshot_with_registry_statuses():
    body = json.loads(report.page(snapshot("prod")))
    assert body["images"] == [DEBUG, WEB]
    assert body["units_per_image"] == {WEB: ["shop"]}
    assert body["images_with_unknown_unit"] == [DEBUG]
    assert body["pod_images_dependencies"][DEBUG] == {"Pod/tools/debug": {"containers": ["main", "side"]}}
    assert body["pod_images_dependencies"][WEB]["Kustomization/flux/shop"]["Deployment/shop/web"] == {
        "ReplicaSet/shop/web-1": {"Pod/shop/web-1-a": {"containers": ["main"]}}}
    assert body["registry_status"] == {DEBUG: "absent", WEB: "available"}


def test_several_clusters_report_under_their_names_in_the_order_they_are_watched():
    body = json.loads(report.page(snapshot("prod", "edge")))
    assert list(body["clusters"]) == ["prod", "edge"]
    assert body["clusters"]["edge"]["images"] == [DEBUG, WEB]


def test_an_image_only_a_template_names_is_in_registry_status_not_in_images():
    """Sylva's `images` lists pods' images; a suspended CronJob's missing image is still reported, where its
    status is (the README's "What missing means" says so)."""
    report_image = "registry.example.com/report:0.9"
    cron = Reference("prod", "shop", "CronJob", "report", "report", "container", report_image, "shop", active=False)
    pairs = [(reference(WEB, "web", "shop"), ImageState(Status.AVAILABLE, "registry.example.com")),
             (cron, ImageState(Status.ABSENT, "registry.example.com"))]
    body = json.loads(report.page(join(pairs, {}, {}, ["prod"], now=1.0, chains={"prod": chains("prod")})))
    assert report_image not in body["images"]
    assert body["registry_status"][report_image] == "absent"
