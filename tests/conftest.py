"""Shared fixtures: the Kubernetes API emulator and kubeconfigs pointing at it."""

import pytest
import yaml

from tests.emulator.server import Emulator


@pytest.fixture
def emulator():
    emu = Emulator(token="test-token").start()  # silent watches, as an apiserver's
    yield emu
    emu.stop()


@pytest.fixture
def kubeconfig(emulator, tmp_path):
    """A kubeconfig file with contexts `one` and `two`, both on the emulator."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(emulator.kubeconfig({"one": "default", "two": "default"})))
    return path


def make_pod(name, namespace="default", image="nginx:1.27", owner=None, labels=None, **spec):
    metadata = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": owner[0], "kind": owner[1], "name": owner[2], "uid": "u-" + owner[2], "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "main", "image": image}], **spec}}


@pytest.fixture(scope="session")
def httpserver_listen_address():
    """pytest-httpserver on loopback by address, not by the name `localhost`."""
    return ("127.0.0.1", 0)
