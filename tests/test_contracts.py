"""The import contract holds what DESIGN says: one import added where it does not belong fails lint-imports.

Each case copies the package and pyproject.toml to a scratch directory, adds one line to one module and
runs the real `lint-imports` there; the unchanged copy must pass.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tmp_path: Path, module: str | None = None, line: str = "") -> subprocess.CompletedProcess:
    shutil.copytree(ROOT / "exporter", tmp_path / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    if module:
        path = tmp_path / module
        path.write_text(path.read_text() + f"\n{line}  # injected\n")
    return subprocess.run([str(LINT), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(LINT.parent), "PYTHONPATH": str(tmp_path)})


def test_the_package_as_it_is_keeps_every_contract(tmp_path):
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line"), [
    ("exporter/join.py", "import kubernetes"),  # the kubernetes client anywhere but exporter/kube
    ("exporter/serve.py", "import kubernetes"),
    ("exporter/registry/client.py", "from kubernetes import client"),
    ("exporter/expected/sources.py", "import kubernetes"),
    ("exporter/inventory.py", "import kubernetes.client"),
    ("exporter/kube/api.py", "import httpx"),  # httpx anywhere but exporter/registry and exporter/expected
    ("exporter/serve.py", "import httpx"),
    ("exporter/keyrings.py", "import httpx"),
    ("exporter/commands/check.py", "import httpx"),
    ("exporter/inventory.py", "import docker_image"),  # the parser library behind exporter/images
    ("exporter/report.py", "from exporter.kube import objects"),  # a view reaching a source
    ("exporter/series.py", "from exporter.registry import stats"),
    ("exporter/report.py", "from exporter import inventory"),
    ("exporter/endpoints.py", "from exporter import serve"),
    ("exporter/join.py", "from exporter.expected import sources"),
    ("exporter/kube/owners.py", "from exporter import join"),  # a source importing upwards
    ("exporter/serve.py", "import h11"),  # the HTTP/1.1 library only in exporter/endpoints
    ("exporter/page.py", "import h11"),
    ("exporter/registry/checker.py", "import redis"),  # the Redis client only in exporter/registry/shared
    ("exporter/serve.py", "import redis"),
    ("exporter/commands/serve.py", "from redis import Redis"),
    ("exporter/commands/options.py", "import pydantic"),  # pydantic only in exporter/config, expected/formats
    ("exporter/expected/sources.py", "from pydantic import TypeAdapter"),
    ("exporter/series.py", "import prometheus_client"),  # the exposition library only in the metrics view
    ("exporter/cli.py", "import pythonjsonlogger"),  # JSON logging only in exporter/logs
    ("exporter/page.py", "from exporter.registry import shared"),  # the status page is a view like the others
    ("exporter/page.py", "from exporter import serve"),
    ("exporter/registry/node/view.py", "from exporter.registry import checker"),  # the node's view never calls back
    ("exporter/health.py", "from exporter.registry import stats"),  # plain data importing a source
    ("exporter/drift.py", "from exporter import join"),
    ("exporter/durations.py", "from exporter import config"),
    ("exporter/shards.py", "from exporter import serve"),
    ("exporter/files.py", "from exporter.kube import clusters"),
])
def test_one_import_where_it_does_not_belong_breaks_a_contract(tmp_path, module, line):
    result = lint(tmp_path, module, line)
    assert result.returncode != 0, f"{line!r} in {module} passed lint-imports"
    assert "BROKEN" in result.stdout


def test_every_field_of_the_snapshot_is_read_by_a_view():
    """The Snapshot carries what the views show and nothing else: a field no view reads is dead weight."""
    import dataclasses
    import re

    from exporter.join import Snapshot

    views = ("series.py", "report.py", "page.py", "exposition.py", "endpoints.py")
    source = "\n".join((ROOT / "exporter" / name).read_text() for name in views)
    unread = [f.name for f in dataclasses.fields(Snapshot) if not re.search(rf"\bsnapshot\.{f.name}\b", source)]
    assert unread == []


def test_every_module_has_a_layer_and_a_room_in_the_architecture_doc():
    """A module added without a place in the layers, or without a line in docs/architecture.md, fails here."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = " | ".join(contracts[0]["layers"])
    doc = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "exporter"
    top = sorted(p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__"))
    top += sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    assert [name for name in top if f"exporter.{name}" not in layers.split(" | ")] == []
    assert [name for name in top if f"`{name}.py`" not in doc and f"`{name}/`" not in doc] == []
    inner = [p for folder in ("commands", "kube", "registry", "expected", "events", "images")
             for p in (package / folder).glob("*.py") if p.stem != "__init__"]
    unnamed = [p for p in inner if f"`{p.stem}`" not in doc and f"`{p.stem}.py`" not in doc]
    assert sorted(f"{p.parent.name}/{p.stem}" for p in unnamed) == []
