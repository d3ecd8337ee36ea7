"""Platforms as containerd matches them, pod specs' os/arch constraints, what a manifest says, and the verdicts the
join gets: pure functions over plain data."""

import pytest

from exporter.model import platforms as p
from exporter.model.manifests import Manifest, read_document
from exporter.model.records import NodeImages, Reference, Status
from exporter.snapshot import platforms as coverage
from exporter.snapshot.join import ImageState, join


@pytest.mark.parametrize("given, expected", [
    (("linux", "amd64"), "linux/amd64"),
    (("Linux", "x86_64"), "linux/amd64"),
    (("linux", "aarch64"), "linux/arm64"),
    (("linux", "arm64", "v8"), "linux/arm64"),
    (("linux", "arm"), "linux/arm/v7"),
    (("linux", "arm", "6"), "linux/arm/v6"),
    (("linux", "armhf"), "linux/arm/v7"),
    (("linux", "amd64", "v1"), "linux/amd64"),
    (("linux", "amd64", "v3"), "linux/amd64/v3"),
    (("windows", "amd64"), "windows/amd64"),
    (("", "amd64"), ""),
])
def test_platforms_are_normalized_as_containerd_does(given, expected):
    assert p.platform(*given) == expected


def test_a_user_platform_is_parsed_or_refused_with_the_form_to_write():
    assert p.parse("linux/arm/v7") == "linux/arm/v7" and p.parse(" linux/arm64 ") == "linux/arm64"
    for bad in ("arm64", "linux/", "linux/arm/v7/x", ""):
        with pytest.raises(ValueError, match="os/architecture"):
            p.parse(bad)


@pytest.mark.parametrize("offered, node, pulled", [
    ({"linux/amd64"}, "linux/amd64", True),
    ({"linux/amd64"}, "linux/arm64", False),  # the re-push without arm64
    ({"linux/arm64"}, "linux/amd64", False),
    ({"linux/386"}, "linux/amd64", True),  # containerd's amd64 vector takes 386
    ({"linux/arm/v7"}, "linux/arm64", True),  # and arm64's takes 32-bit arm
    ({"linux/arm/v6"}, "linux/arm/v7", True),  # an older variant
    ({"linux/arm/v8"}, "linux/arm/v7", False),  # a newer one is not
    ({"linux/amd64/v3"}, "linux/amd64", False),  # a node of unknown variant pulls v1 only
    ({"windows/amd64"}, "linux/amd64", False),
])
def test_a_node_pulls_what_its_runtime_accepts(offered, node, pulled):
    assert p.covers(offered, node) is pulled
    assert p.lacking(frozenset(offered), [node]) == (() if pulled else (node,))


def test_an_index_serves_its_platforms_but_not_its_attestations():
    manifests = [
        {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "sha256:c", "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "sha256:d", "platform": {"os": "linux", "architecture": "arm64"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
    ]
    read = read_document({"schemaVersion": 2, "manifests": manifests})
    assert read.platforms == {"linux/amd64", "linux/arm/v7"}
    assert read.children == {"sha256:a", "sha256:b", "sha256:c", "sha256:d"}


def test_an_index_entry_without_a_platform_gives_no_verdict():
    """containerd pulls such an entry on any node: nothing can be said to be lacking."""
    read = read_document({"manifests": [{"digest": "sha256:a"}]})
    assert read.children == {"sha256:a"} and read.platforms is None


def test_a_single_manifest_names_its_config_and_the_config_its_platform():
    assert read_document({"schemaVersion": 2, "config": {"digest": "sha256:c"}, "layers": []}) == Manifest(
        config="sha256:c")
    assert read_document({"os": "linux", "architecture": "arm", "variant": "v6"}).platforms == {"linux/arm/v6"}
    assert read_document({"schemaVersion": 1, "architecture": "amd64", "fsLayers": []}).platforms == {"linux/amd64"}
    assert read_document({"os": "linux"}) is None and read_document([1]) is None


def test_a_node_platform_comes_from_its_labels_else_its_node_info():
    assert p.of_node({"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"}, {}) == "linux/arm64"
    assert p.of_node({"beta.kubernetes.io/arch": "amd64"}, {"operatingSystem": "linux"}) == "linux/amd64"
    assert p.of_node({}, {"operatingSystem": "linux", "architecture": "arm"}) == "linux/arm/v7"
    assert p.of_node({}, {}) == ""


PRESENT = ("linux/amd64", "linux/arm64", "windows/amd64")


def allowed(spec):
    constraint = p.constraint(spec)
    return {platform for platform in PRESENT if constraint.allows(platform)}


def affinity(*terms):
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(term)} for term in terms]}}}}


def expression(key, operator, *values):
    return {"key": key, "operator": operator, "values": list(values)}


@pytest.mark.parametrize("spec, platforms", [
    ({}, set(PRESENT)),
    ({"nodeSelector": {"kubernetes.io/arch": "arm64"}}, {"linux/arm64"}),
    ({"nodeSelector": {"kubernetes.io/os": "linux"}}, {"linux/amd64", "linux/arm64"}),
    ({"nodeSelector": {"beta.kubernetes.io/arch": "x86_64"}}, {"linux/amd64", "windows/amd64"}),
    ({"nodeSelector": {"pool": "gpu"}}, set(PRESENT)),  # other labels are not read
    (affinity([expression("kubernetes.io/arch", "In", "amd64")]), {"linux/amd64", "windows/amd64"}),
    (affinity([expression("kubernetes.io/os", "NotIn", "windows")]), {"linux/amd64", "linux/arm64"}),
    (affinity([expression("kubernetes.io/arch", "In", "arm64")], [expression("kubernetes.io/os", "In", "windows")]),
     {"linux/arm64", "windows/amd64"}),  # terms ORed
    (affinity([expression("kubernetes.io/arch", "In", "amd64"), expression("kubernetes.io/os", "In", "linux")]),
     {"linux/amd64"}),  # expressions of a term ANDed
    (affinity([expression("kubernetes.io/arch", "In", "arm64")], [expression("zone", "In", "a")]),
     set(PRESENT)),  # a term on another label: any platform may satisfy it
    (affinity([expression("kubernetes.io/arch", "DoesNotExist")]), set()),
    (affinity([expression("kubernetes.io/arch", "Exists")]), set(PRESENT)),
    ({"nodeSelector": {"kubernetes.io/os": "linux"}, **affinity([expression("kubernetes.io/arch", "In", "amd64")])},
     {"linux/amd64"}),
    ({"nodeSelector": "garbage", "affinity": {"nodeAffinity": []}}, set(PRESENT)),
])
def test_a_pod_spec_allows_the_platforms_its_selector_and_required_affinity_allow(spec, platforms):
    assert allowed(spec) == platforms


def ref(workload, image="r.example/app:1", cluster="c"):
    return Reference(cluster, "ns", "Deployment", workload, "app", "container", image, None)


class Keyring:
    fingerprint = "anonymous"


class Result:
    def __init__(self, status, digest):
        self.status, self.digest, self.media_type = status, digest, None


NODES = (NodeImages("amd-1", (), "linux/amd64"), NodeImages("arm-1", (), "linux/arm64"),
         NodeImages("new-1", (), ""))


def test_a_reference_needs_its_nodes_platforms_or_those_its_template_allows():
    arm_only = p.constraint({"nodeSelector": {"kubernetes.io/arch": "arm64"}})
    needs = coverage.needs({ref("on-amd"): {"amd-1"}, ref("on-both"): {"amd-1", "arm-1"},
                            ref("scaled-to-zero"): {p.ANYWHERE}, ref("arm-template"): {arm_only},
                            ref("unknown-node"): {"new-1", "gone"}}, NODES)
    assert needs == {ref("on-amd"): {"linux/amd64"}, ref("on-both"): {"linux/amd64", "linux/arm64"},
                     ref("scaled-to-zero"): {"linux/amd64", "linux/arm64"}, ref("arm-template"): {"linux/arm64"}}


def test_the_same_image_lacks_a_platform_for_the_reference_that_needs_it_only():
    amd, both = ref("on-amd"), ref("on-both")
    refs = [(amd, Keyring()), (both, Keyring())]
    needs = {amd: frozenset({"linux/amd64"}), both: frozenset({"linux/amd64", "linux/arm64"})}
    results = {("r.example/app:1", "anonymous"): Result(Status.AVAILABLE, "sha256:1")}
    assert coverage.wanted(refs, needs, results) == [("r.example/app@sha256:1", refs[0][1])]
    manifests = {"r.example/app@sha256:1": Manifest(platforms=frozenset({"linux/amd64"}))}
    assert coverage.verdicts(refs, needs, results, manifests) == {both: ("linux/arm64",)}
    assert coverage.verdicts(refs, needs, results, {}) == {}  # not read yet: no verdict on a guess
    unknown = {"r.example/app@sha256:1": Manifest(children=frozenset({"sha256:x"}))}
    assert coverage.verdicts(refs, needs, results, unknown) == {}


def test_the_join_calls_the_reference_platform_missing_and_keeps_what_the_registry_said():
    amd, both = ref("on-amd"), ref("on-both")
    state = ImageState(Status.AVAILABLE, "r.example", "sha256:1", 100.0)
    snapshot = join([(amd, state), (both, state)], {}, {}, ["c"], 200.0, platforms={both: ("linux/arm64",)})
    missing = [labels for labels, _ in snapshot.series["kube_image_missing"]]
    assert missing == [("c", "ns", "Deployment", "on-both", "app", "container", "r.example/app:1", "",
                        "platform_missing")]
    assert [labels for labels, _ in snapshot.series["kube_image_platform_missing"]] == [
        ("c", "r.example/app:1", "linux/arm64")]
    assert [labels for labels, _ in snapshot.series["kube_image_status"]] == [
        ("c", "r.example/app:1", "r.example", "available")]  # the registry has the image
    assert dict((r.workload, s.status) for r, s in snapshot.references) == {
        "on-amd": Status.AVAILABLE, "on-both": Status.PLATFORM_MISSING}


def test_an_image_already_missing_is_not_called_platform_missing():
    gone = ref("gone")
    state = ImageState(Status.ABSENT, "r.example")
    snapshot = join([(gone, state)], {}, {}, ["c"], 200.0, platforms={gone: ("linux/arm64",)})
    assert [labels[-1] for labels, _ in snapshot.series["kube_image_missing"]] == ["absent"]
    assert snapshot.series["kube_image_platform_missing"] == ()
