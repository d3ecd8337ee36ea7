"""Helm release objects decoded into the images a rollback would pull, with bounded work."""

import base64
import gzip
import json

import pytest

from exporter.sources.kube import releases
from exporter.sources.kube.releases import PodImages, ReleaseError, decode

DEPLOYMENT = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}
"""

MANIFEST = """---
# Source: shop/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      serviceAccountName: web
      imagePullSecrets: [{{name: regcred}}]
      initContainers:
        - name: migrate
          image: registry.example.com/shop/migrate:{v}
      containers:
        - name: web
          image: registry.example.com/shop/web:{v}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: report
              image: registry.example.com/shop/report:{v}
---
apiVersion: example.com/v1
kind: Widget
spec:
  runner:
    containers:
      - {{name: w, image: "registry.example.com/shop/widget:{v}"}}
"""


def helm_object(revision, status="superseded", kind="Secret", name="shop", namespace="apps", manifest=None, raw=None):
    """A release object made the way Helm makes it: JSON, gzip, base64 (and the API's base64 for a Secret)."""
    release = {"name": name, "namespace": namespace, "version": revision, "info": {"status": status},
               "manifest": manifest if manifest is not None else MANIFEST.format(v=f"1.{revision}"),
               "chart": {"templates": [{"name": "x", "data": "aGVsbG8="}]}}
    payload = raw if raw is not None else base64.b64encode(gzip.compress(json.dumps(release).encode()))
    data = base64.b64encode(payload).decode() if kind == "Secret" else payload.decode()
    return {"apiVersion": "v1", "kind": kind, "type": "helm.sh/release.v1" if kind == "Secret" else None,
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": namespace,
                         "labels": {"owner": "helm", "name": name, "version": str(revision), "status": status}},
            "data": {"release": data}}


@pytest.mark.parametrize("kind", ["Secret", "ConfigMap"])
def test_every_pod_template_of_the_revision(kind):
    release = decode(helm_object(3, kind=kind))
    assert (release.namespace, release.name, release.revision, release.status) == ("apps", "shop", 3, "superseded")
    assert release.pods == (
        PodImages(("registry.example.com/shop/migrate:1.3", "registry.example.com/shop/web:1.3"), ("regcred",), "web"),
        PodImages(("registry.example.com/shop/report:1.3",)),
        PodImages(("registry.example.com/shop/widget:1.3",)),  # any object with a containers list
    )


def test_uncompressed_release_json_is_read_too():
    plain = base64.b64encode(json.dumps({"name": "n", "version": 1, "manifest": "", "info": {}}).encode())
    assert decode(helm_object(1, raw=plain)).pods == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"%%% not base64", "corrupt"),
        (base64.b64encode(b"\x1f\x8bnot really gzip"), "corrupt"),
        (base64.b64encode(gzip.compress(b"{not json", mtime=0)), "corrupt"),
        (base64.b64encode(gzip.compress(b'{"version": 1, "manifest": "a: [unclosed\\n  containers:"}', mtime=0)), "corrupt"),
    ],
)
def test_corrupt_releases_are_named(raw, reason):
    with pytest.raises(ReleaseError) as caught:
        decode(helm_object(2, raw=raw))
    assert caught.value.reason == reason and "Secret apps/sh.helm.release.v1.shop.v2" in str(caught.value)


def test_a_release_over_the_limit_is_refused_before_it_is_inflated():
    huge = json.dumps({"version": 1, "manifest": "x" * 3_000_000}).encode()
    obj = helm_object(1, raw=base64.b64encode(gzip.compress(huge)))
    with pytest.raises(ReleaseError) as caught:
        decode(obj, max_bytes=1_000_000)
    assert caught.value.reason == "too_large"
    assert decode(obj, max_bytes=4_000_000).pods == ()


def test_documents_without_pod_specs_are_not_parsed(monkeypatch):
    parsed = []
    load = releases.yaml.load
    monkeypatch.setattr(releases.yaml, "load", lambda text, Loader: parsed.append(text) or load(text, Loader=Loader))
    decode(helm_object(1))
    assert len(parsed) == 3 and not any("kind: Service" in text for text in parsed)
