"""Helm release objects of unexpected shapes: each is `corrupt` with its reason, never a crash, never a
value of the wrong type turned into an image string."""

import base64
import gzip
import json

import pytest

from exporter.sources.kube.releases import Decoder, ReleaseError, decode
from tests.kube.test_releases import helm_object


def encoded(release: dict) -> bytes:
    return base64.b64encode(gzip.compress(json.dumps(release).encode()))


@pytest.mark.parametrize(("release", "why"), [
    ({"version": 1, "manifest": 5}, "manifest is a int, not a string"),
    ({"version": [1], "manifest": ""}, "revision [1] is not a number"),
    ({"version": 1, "manifest": "", "info": "deployed"}, "info is a str, not an object"),
    ({"version": 1, "manifest": "", "name": {"a": 1}}, "name is a dict, not a string"),
    ({"version": 1, "manifest": "spec:\n  containers:\n  - image: {a: 1}\n"}, "an image is a dict, not a string"),
    ({"version": 1, "manifest": "spec:\n  containers: []\n  initContainers: x\n"}, "initContainers is a str"),
    ({"version": 1, "manifest": "containers:\n" + "[" * 5000 + "]" * 5000}, "corrupt"),
])
def test_fields_of_the_wrong_type_are_corrupt(release, why):
    with pytest.raises(ReleaseError) as caught:
        decode(helm_object(1, raw=encoded(release)))
    assert caught.value.reason == "corrupt" and (why == "corrupt" or why in str(caught.value))


def test_the_decoder_counts_objects_of_any_shape_and_goes_on():
    decoder = Decoder()
    broken = [{"metadata": "x"}, {"metadata": {"namespace": "apps", "labels": []}, "data": {"release": "x"}},
              {"metadata": {"namespace": "apps"}, "data": ["release"]}]
    assert [decoder(obj) for obj in broken] == [None, None, None]
    assert decoder(helm_object(2)) is not None
    assert decoder.counts() == {("", "corrupt"): 1, ("apps", "corrupt"): 2}
