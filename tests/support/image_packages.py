"""The exporter processes the tests start see the packages the container image holds, not the test tools'.

The test environment also holds pytest, import-linter, kubernetes-validate, moto...; libraries the exporter uses
import some of them when they are there (the kubernetes client's dynamic module imports kubernetes-validate; httpx
its command line's rich and pygments: 0.15 s of every exporter process's start, some 100 processes a run), and an
exporter module importing a test tool by mistake would pass the tests and fail in the image. So every top-level
module of an installed distribution outside the image's requirements (`kube-image-exporter[aws]`, as the
Dockerfile installs it, followed through each requirement's own) is hidden from exporter processes, by
image_site/sitecustomize.py.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
from collections.abc import MutableMapping
from pathlib import Path

from packaging.requirements import Requirement

SITE = Path(__file__).resolve().parent / "image_site"
PROJECT, EXTRAS = "kube-image-exporter", frozenset({"aws"})


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_distributions(project: str = PROJECT, extras: frozenset[str] = EXTRAS) -> set[str]:
    """The distributions `pip install project[extras]` brings, by canonical name."""
    found: dict[str, frozenset[str]] = {}
    todo = [(project, extras)]
    while todo:
        name, wanted = todo.pop()
        key = _canonical(name)
        if key in found and wanted <= found[key]:
            continue
        found[key] = found.get(key, frozenset()) | wanted
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        environments = [{"extra": extra} for extra in (wanted or {""})]
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return set(found)


def hidden_modules() -> list[str]:
    """Top-level modules only distributions outside the image provide."""
    image = image_distributions()
    return sorted(module for module, owners in metadata.packages_distributions().items()
                  if module.isidentifier() and not any(_canonical(owner) in image for owner in owners))


def environment(env: MutableMapping[str, str]) -> None:
    """Set in `env` (inherited by every process a test starts) what hides them from exporter processes."""
    if "KIE_TEST_HIDDEN_MODULES" not in env:
        env["KIE_TEST_HIDDEN_MODULES"] = ",".join(hidden_modules())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH", "")]))
