"""Shared fixtures: the Kubernetes API emulator and kubeconfigs pointing at it."""

import logging
import os

import pytest
import yaml
from hypothesis import settings

from exporter.common import logs
from tests.emulator.server import Emulator
from tests.support import image_packages
from tests.support.schedule import long_first


# No example has a time limit (hypothesis' default is 200 ms): speed is measured in benchmarks, and a worker paused by
# a loaded machine is no failure of the property.
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


def pytest_configure(config):
    """Every exporter process a test starts sees only the packages of the container image."""
    image_packages.environment(os.environ)


def pytest_collection_modifyitems(config, items):
    """In a worksteal run, the tests marked `long` start first, one at the head of each worker's queue."""
    worker = getattr(config, "workerinput", None)
    if worker and any("worksteal" in arg for arg in worker.get("mainargv", ())):
        items[:] = long_first(items, lambda item: item.get_closest_marker("long") is not None, worker["workercount"])


@pytest.fixture(autouse=True)
def _commands_logging_undone():
    """A command run in-process (`exporter.cli.main`) gives the root logger a handler on its test's stderr, which
    capture closes after the test: it goes with the test (else a later test's threads log into the closed stream,
    "--- Logging error ---"), and the root level it set with it."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


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
