"""What `helm install` prints says plainly what the Secret grant is and how to narrow it."""

import pathlib

import pytest

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's library) is in the test extras")

CHART = pathlib.Path(__file__).resolve().parent.parent.parent / "helm/kube-image-exporter"


def notes(values: dict) -> str:
    rendered = helm.Chart.load(CHART).render(values, name="kie", namespace="monitoring")
    return " ".join(rendered["kube-image-exporter/templates/NOTES.txt"].split())


def test_default_says_secrets_of_every_namespace_and_how_to_narrow_it():
    text = notes({})
    assert "may `get` Secrets in EVERY namespace" in text
    assert "only to read the pull secrets pods name" in text
    assert "rbac.secretNamespaces=" in text and "rbac.readSecrets=false" in text


def test_narrowed_names_its_namespaces_and_off_says_nothing():
    assert "may `get` Secrets in shop, tools only" in notes({"rbac": {"secretNamespaces": ["shop", "tools"]}})
    assert "Secrets" not in notes({"rbac": {"readSecrets": False}})
