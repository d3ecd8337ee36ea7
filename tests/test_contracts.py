"""The import contract holds what DESIGN says: one import added where it does not belong fails lint-imports.

Each case copies the package and pyproject.toml to a scratch directory and adds one line to one module; the
unchanged copy must pass the real `lint-imports` command, and every changed one must fail the same linter, run on
all the copies in one interpreter (`tests/support/lint_cases.py`).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def copy(folder: Path, module: str | None = None, line: str = "") -> Path:
    shutil.copytree(ROOT / "exporter", folder / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", folder)
    if module:
        path = folder / module
        path.write_text(path.read_text() + f"\n{line}  # injected\n")
    return folder


def lint(tmp_path: Path) -> subprocess.CompletedProcess:
    copy(tmp_path)
    return subprocess.run([str(LINT), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": str(LINT.parent), "PYTHONPATH": str(tmp_path)})


def lint_each(tmp_path: Path, cases: list[tuple[str, str]]) -> list[tuple[str, str, int, str]]:
    """(module, line, exit status, output) of the linter on a copy with that one line added, for each case."""
    folders = [copy(tmp_path / f"case{i}", module, line) for i, (module, line) in enumerate(cases)]
    done = subprocess.run([sys.executable, "-m", "tests.support.lint_cases", *map(str, folders)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={"PATH": str(LINT.parent)})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    return [(module, line, *results[str(folder)]) for (module, line), folder in zip(cases, folders)]


def test_the_package_as_it_is_keeps_every_contract(tmp_path):
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


MISPLACED = [
    ("exporter/snapshot/join.py", "import kubernetes"),  # the kubernetes client anywhere but exporter/sources/kube
    ("exporter/serve/loop.py", "import kubernetes"),
    ("exporter/sources/registry/client.py", "from kubernetes import client"),
    ("exporter/sources/expected/sources.py", "import kubernetes"),
    ("exporter/sources/inventory.py", "import kubernetes.client"),
    ("exporter/sources/kube/api.py", "import httpx"),  # httpx anywhere but exporter/sources/registry and expected
    ("exporter/serve/loop.py", "import httpx"),
    ("exporter/sources/keyrings.py", "import httpx"),
    ("exporter/commands/check.py", "import httpx"),
    ("exporter/sources/inventory.py", "import docker_image"),  # the parser library behind exporter/model/images
    ("exporter/views/report.py", "from exporter.sources.kube import objects"),  # a view reaching a source
    ("exporter/views/series.py", "from exporter.sources.registry import stats"),
    ("exporter/views/report.py", "from exporter.sources import inventory"),
    ("exporter/serve/endpoints.py", "from exporter.serve import loop"),  # the endpoints below the loop
    ("exporter/snapshot/join.py", "from exporter.sources.expected import sources"),
    ("exporter/sources/kube/owners.py", "from exporter.snapshot import join"),  # a source importing upwards
    ("exporter/sources/cluster.py", "from exporter.snapshot import join"),  # gathering a cluster is a source, not the join
    ("exporter/sources/registry/limits.py", "from exporter.sources import cluster"),  # a source package reaching its gatherer
    ("exporter/model/records.py", "from exporter.sources.kube import objects"),  # plain records importing a source
    ("exporter/common/redact.py", "from exporter.model import records"),  # helpers below everything
    ("exporter/views/families.py", "from exporter.views import series"),  # the family table below the rows
    ("exporter/commands/config.py", "from exporter.commands import options"),  # the settings model below the options
    ("exporter/serve/loop.py", "import h11"),  # the HTTP/1.1 library only in exporter/serve/endpoints
    ("exporter/views/page.py", "import h11"),
    ("exporter/sources/registry/checker.py", "import redis"),  # the Redis client only in exporter/sources/registry/shared
    ("exporter/serve/loop.py", "import redis"),
    ("exporter/commands/serve.py", "from redis import Redis"),
    ("exporter/commands/options.py", "import pydantic"),  # pydantic only in exporter/commands/config, expected/formats
    ("exporter/sources/expected/sources.py", "from pydantic import TypeAdapter"),
    ("exporter/views/series.py", "import prometheus_client"),  # the exposition library only in the metrics view
    ("exporter/cli.py", "import pythonjsonlogger"),  # JSON logging only in exporter/common/logs
    ("exporter/views/page.py", "from exporter.sources.registry import shared"),  # the status page is a view like the others
    ("exporter/views/page.py", "from exporter.serve import loop"),
    ("exporter/views/page.py", "import httpcore"),  # connection libraries never in a view
    ("exporter/snapshot/join.py", "import urllib3"),
    ("exporter/sources/registry/node/view.py", "from exporter.sources.registry import checker"),  # the node's view never calls back
    ("exporter/model/health.py", "from exporter.sources.registry import stats"),  # plain data importing a source
    ("exporter/snapshot/drift.py", "from exporter.snapshot import join"),
    ("exporter/common/durations.py", "from exporter.commands import config"),
    ("exporter/sources/shards.py", "from exporter.serve import loop"),
    ("exporter/common/files.py", "from exporter.sources.kube import clusters"),

]


@pytest.mark.long
def test_one_import_where_it_does_not_belong_breaks_a_contract(tmp_path):
    passed = [f"{line!r} in {module}" for module, line, status, output in lint_each(tmp_path, MISPLACED)
              if status == 0 or "BROKEN" not in output]
    assert passed == [], "passed the import contracts:\n" + "\n".join(passed)


HTTPCORE = "httpcore is imported only under exporter.sources.registry (the connection pool on asyncio streams)"
URLLIB3 = "urllib3 is imported only under exporter.sources.kube (the kubernetes client's HTTP library)"


CONNECTION_LIBRARIES = [
    ("exporter/sources/expected/sources.py", "import httpcore", HTTPCORE),
    ("exporter/sources/keyrings.py", "import urllib3", URLLIB3),
    ("exporter/sources/registry/client.py", "import urllib3", URLLIB3),
]


def test_connection_libraries_stay_with_their_client(tmp_path):
    """httpcore beside httpx in the registry package, urllib3 beside the kubernetes client: each its own contract."""
    results = lint_each(tmp_path, [(module, line) for module, line, _ in CONNECTION_LIBRARIES])
    for (module, line, contract), (*_, status, output) in zip(CONNECTION_LIBRARIES, results):
        assert status != 0, f"{line!r} in {module} passed lint-imports"
        assert f"{contract} BROKEN" in " ".join(output.split()), output  # names wrap at 80 columns


def test_every_field_of_the_snapshot_is_read_by_a_view():
    """The Snapshot carries what the views show and nothing else: a field no view reads is dead weight.

    Reads attribute access in the views' code (a mention in a docstring or comment does not count).
    """
    import ast
    import dataclasses

    from exporter.snapshot.join import Snapshot

    views = [*(ROOT / "exporter" / "views").glob("*.py"), ROOT / "exporter" / "serve" / "endpoints.py"]
    read = {node.attr for path in views for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute)}
    assert [f.name for f in dataclasses.fields(Snapshot) if f.name not in read] == []


def test_every_module_has_a_layer_and_a_room_in_the_architecture_doc():
    """A package or module added without a layer, or without a line in docs/architecture.md, fails here."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layered = {}  # container -> names of its layers
    for contract in contracts:
        if contract["type"] == "layers":
            for container in contract.get("containers", ["exporter"]):
                layered[container] = {name.strip() for layer in contract["layers"]
                                      for name in layer.replace(":", "|").split("|")}
    doc = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "exporter"
    top = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    assert [name for name in top if f"exporter.{name}" not in layered["exporter"]] == []
    assert [name for name in top if f"`{name}/`" not in doc] == []
    unlayered, unnamed = [], []
    for folder in top:
        inner = sorted(p for p in (package / folder).iterdir()
                       if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").is_file()))
        names = [p.stem for p in inner]
        if folder in ("serve", "views", "snapshot", "sources", "commands"):
            unlayered += [f"{folder}/{n}" for n in names if n not in layered[f"exporter.{folder}"]]
        unnamed += [f"{folder}/{n}" for n in names if f"`{n}`" not in doc and f"`{n}.py`" not in doc
                    and f"`{folder}/{n}/`" not in doc]
        for sub in (p for p in inner if p.is_dir()):
            unnamed += [f"{folder}/{sub.name}/{m.stem}" for m in sub.rglob("*.py")
                        if m.stem != "__init__" and f"`{m.stem}`" not in doc and f"`{m.stem}.py`" not in doc]
    assert unlayered == []
    assert unnamed == []
