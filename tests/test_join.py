"""The join decides which series exist: these are the alarms a user sees or does not see."""

from exporter.model.records import Reference, Status
from exporter.snapshot.join import UNCHECKED, ImageState, join

AVAILABLE = ImageState(Status.AVAILABLE, "registry.example.com", "sha256:" + "a" * 64, 1000.0)
ABSENT = ImageState(Status.ABSENT, "registry.example.com", None, 1100.0)


def ref(image="registry.example.com/app:1", unit="apps", container="main", **kw):
    fields = dict(
        cluster="prod",
        namespace="shop",
        workload_kind="Deployment",
        workload="web",
        container=container,
        container_type="container",
        image=image,
        unit=unit,
    )
    fields.update(kw)
    return Reference(**fields)


def test_missing_only_for_images_not_available_and_carries_reason():
    snap = join(
        [(ref(), AVAILABLE), (ref("registry.example.com/gone:1", container="side"), ABSENT)],
        {},
        {},
        ["prod"],
        now=2000.0,
    )
    rows = snap.series["kube_image_missing"]
    assert [labels for labels, _ in rows] == [
        ("prod", "shop", "Deployment", "web", "side", "container", "registry.example.com/gone:1", "apps", "absent")
    ]


def test_unchecked_image_is_neither_missing_nor_available():
    snap = join([(ref(), UNCHECKED)], {}, {}, ["prod"], now=1.0)
    assert snap.series["kube_image_missing"] == ()
    [(labels, _)] = snap.series["kube_image_status"]
    assert labels[-1] == "unchecked"


def test_references_differing_only_in_pull_secrets_are_one_series():
    snap = join(
        [(ref(pull_secrets=("a",)), ABSENT), (ref(pull_secrets=("b",)), ABSENT)], {}, {}, ["prod"], now=1.0
    )
    assert len(snap.series["kube_image_missing"]) == 1


def test_unknown_unit_has_no_unit_label():
    snap = join([(ref(unit=None), AVAILABLE)], {}, {}, ["prod"], now=1.0)
    [(labels, value)] = snap.series["kube_image_unknown_unit"]
    assert labels == ("prod", "shop", "Deployment", "web", "main", "container", "registry.example.com/app:1")
    assert value == 1.0


def test_expected_lists_give_missing_not_running_and_unexpected():
    expected = {
        "release": {
            "registry.example.com/app:1": frozenset({"apps"}),
            "registry.example.com/db:2": frozenset({"data"}),
        }
    }
    states = {"registry.example.com/app:1": AVAILABLE, "registry.example.com/db:2": ABSENT}
    snap = join(
        [(ref(), AVAILABLE), (ref("registry.example.com/extra:1", container="x"), AVAILABLE)],
        expected,
        states,
        ["prod", "staging"],
        now=1.0,
    )
    assert [l for l, _ in snap.series["kube_image_expected_missing"]] == [
        ("release", "registry.example.com/db:2", "data", "absent")
    ]
    assert sorted(l for l, _ in snap.series["kube_image_expected_not_running"]) == [
        ("prod", "release", "registry.example.com/db:2", "data"),
        ("staging", "release", "registry.example.com/app:1", "apps"),
        ("staging", "release", "registry.example.com/db:2", "data"),
    ]
    assert [l[6] for l, _ in snap.series["kube_image_unexpected"]] == ["registry.example.com/extra:1"]


def test_no_expected_lists_means_nothing_is_unexpected():
    snap = join([(ref(), AVAILABLE)], {}, {}, ["prod"], now=1.0)
    assert snap.series["kube_image_unexpected"] == ()


def test_last_check_is_latest_per_cluster_and_image():
    older = ImageState(Status.AVAILABLE, "r", None, 10.0)
    newer = ImageState(Status.AVAILABLE, "r", None, 20.0)
    snap = join([(ref(), older), (ref(container="b"), newer)], {}, {}, ["prod"], now=1.0)
    assert snap.series["kube_image_last_check_timestamp_seconds"] == (
        (("prod", "registry.example.com/app:1"), 20.0),
    )


def test_digest_drift_only_when_the_tag_serves_another_manifest():
    from exporter.snapshot.join import DigestFacts

    old, new, platform = ("sha256:" + c * 64 for c in "123")
    image = "registry.example.com:5000/app:1"
    pairs = [(ref(image, running_digest=old), AVAILABLE), (ref(image, running_digest=new, container="b"), AVAILABLE),
             (ref(image, running_digest=platform, container="c"), AVAILABLE)]
    facts = {(image, old): DigestFacts(new), (image, platform): DigestFacts(new, index_children=frozenset({platform}))}
    rows = join(pairs, {}, {}, ["prod"], 1.0, facts).series["kube_image_digest_drift"]
    # `b` runs what the tag serves, `c` runs a platform manifest of the index the tag serves: no drift
    assert [labels[4:] for labels, _ in rows] == [("main", "container", image, "apps", old, new)]
    assert join(pairs, {}, {}, ["prod"], 1.0, {}).series["kube_image_digest_drift"] == ()


def test_no_drift_alarm_while_an_index_is_not_read_and_gone_running_digest_is_missing():
    from exporter.snapshot.join import DigestFacts

    old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    image = "registry.example.com:5000/app:1"
    pairs = [(ref(image, running_digest=old), AVAILABLE)]
    unknown = join(pairs, {}, {}, ["prod"], 1.0, {(image, old): DigestFacts(new, index_children=None)})
    assert unknown.series["kube_image_digest_drift"] == ()
    gone = join(pairs, {}, {}, ["prod"], 1.0, {(image, old): DigestFacts(new, running_status=Status.ABSENT)})
    [(labels, _)] = gone.series["kube_image_missing"]
    assert labels[6:] == (f"registry.example.com:5000/app@{old}", "apps", "absent")
    assert len(gone.series["kube_image_digest_drift"]) == 1


def test_rollback_missing_only_for_revisions_whose_images_are_not_available():
    rows = [(("prod", "apps", "shop", "2", "registry.example.com/web:1.2"), ABSENT),
            (("prod", "apps", "shop", "2", "registry.example.com/web:1.1"), AVAILABLE),
            (("prod", "apps", "shop", "1", "registry.example.com/web:1.0"), UNCHECKED)]
    series = join([], {}, {}, ["prod"], 1.0, rollback=rows).series
    assert series["kube_image_rollback_missing"] == (
        (("prod", "apps", "shop", "2", "registry.example.com/web:1.2", "absent"), 1.0),)


def test_a_workload_running_nothing_is_inactive_so_alerts_can_tell_urgency():
    snap = join([(ref(workload="web"), AVAILABLE), (ref(workload="web", active=False), AVAILABLE),
                 (ref(workload="batch", workload_kind="CronJob", active=False), ABSENT)], {}, {}, ["prod"], 1.0)
    assert snap.series["kube_image_workload_inactive"] == ((("prod", "shop", "CronJob", "batch"), 1.0),)


def test_a_node_holding_an_image_gone_from_its_registry_holds_its_last_copy():
    """By the digest the pods run where known, else by name and tag; only `absent` images; only the nodes of the
    reference's own cluster; an image still in the registry is no one's last copy."""
    from exporter.model.records import NodeImages

    digest = "sha256:" + "b" * 64
    gone = "registry.example.com/gone:1"
    by_tag, by_digest = "registry.example.com/tagged:2", "registry.example.com/pinned:3"
    unauthorized = ImageState(Status.UNAUTHORIZED, "registry.example.com", None, 1.0)
    refs = [(ref(gone), ABSENT), (ref(by_digest, container="pinned", running_digest=digest), ABSENT),
            (ref(by_tag, container="tagged"), unauthorized), (ref(), AVAILABLE),
            (ref(gone, cluster="staging"), ABSENT)]
    nodes = {"prod": (NodeImages("node-1", (gone, "registry.example.com/app:1")),
                      NodeImages("node-2", (f"registry.example.com/pinned@{digest}", by_tag)),
                      NodeImages("node-3", ("registry.example.com/pinned:3-other",))),
             "elsewhere": (NodeImages("node-9", (gone,)),)}
    snap = join(refs, {}, {}, ["prod", "staging"], now=1.0, nodes=nodes)
    assert [labels for labels, _ in snap.series["kube_image_node_only"]] == [
        ("prod", "node-1", gone), ("prod", "node-2", by_digest)]  # staging's pods have no node holding it
    assert join(refs, {}, {}, ["prod"], now=1.0).series["kube_image_node_only"] == ()  # nodes not watched
