"""Owners found among listed objects, others asked of the API once and remembered."""

from exporter.sources.kube.listfile import ObjectIndex
from exporter.sources.kube.objects import trim


def test_owners_not_listed_are_asked_once_and_a_missing_one_is_remembered_as_missing():
    rs = trim({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "shop"}})
    node = trim({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    asked = []

    def api(api_version, kind, namespace, name):
        asked.append((kind, namespace, name))
        return node if kind == "Node" else None

    cache = {}
    lookup = ObjectIndex([rs]).lookup_or(api, cache)
    for _ in range(2):
        assert lookup("apps/v1", "ReplicaSet", "shop", "web-1") is rs
        assert lookup("v1", "Node", None, "n1") is node
        assert lookup("helm.toolkit.fluxcd.io/v2", "HelmRelease", "flux", "gone") is None
    assert asked == [("Node", None, "n1"), ("HelmRelease", "flux", "gone")]
    assert ObjectIndex([]).lookup_or(api)("v1", "Node", None, "n1") is node  # without a cache: asked each time
    assert len(asked) == 3
