"""Exporter processes started by the tests see the container image's packages only (tests/support/image_packages.py)."""

import re
import subprocess
import sys

from tests.support.image_packages import hidden_modules, image_distributions


def imported(*args: str) -> set[str]:
    """The modules a Python process started with these arguments imported (`-X importtime` names each)."""
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=60)
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", result.stderr, flags=re.M))


def test_the_image_holds_the_exporters_requirements_and_no_test_tool():
    image = image_distributions()
    assert {"kubernetes", "httpx", "prometheus-client", "boto3", "botocore", "urllib3"} <= image
    assert not image & {"pytest", "moto", "kubernetes-validate", "import-linter", "rich", "hypothesis"}
    hidden = set(hidden_modules())
    assert {"pytest", "moto", "kubernetes_validate", "importlinter", "rich", "hypothesis"} <= hidden
    assert not hidden & {"kubernetes", "httpx", "boto3", "yaml", "prometheus_client", "exporter"}


def test_an_exporter_process_cannot_import_what_the_image_lacks():
    plain = imported("-c", "import httpx, kubernetes")
    assert {"rich", "kubernetes_validate"} <= plain  # present here: libraries import them when they can
    exporter = imported("-m", "exporter", "check", "127.0.0.1:9/x:1", "--timeout", "1s")
    assert "httpx" in exporter and not exporter & {"rich", "pygments", "kubernetes_validate"}
