"""The README's first command: the demo serves a cluster whose CronJob image was deleted from the registry."""

import subprocess
import sys

import pytest

from tests.support import free_port
from tests.support import registry as real

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not real.available(), reason="needs docker-registry")]


def test_demo_shows_the_deleted_image_as_missing():
    result = subprocess.run([sys.executable, "scripts/demo.py", "--once", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'kube_image_missing{cluster="demo",namespace="shop",workload_kind="CronJob",workload="report"' in out
    assert 'reason="absent"} 1' in out
    assert 'kube_image_unknown_unit{cluster="demo",namespace="tools",workload_kind="Pod",workload="debug"' in out
    assert 'kube_image_expected_not_running{cluster="demo",list="release-1.4"' in out and "shop/admin:1.4.2" in out
    assert "kube_image_pull_duration_seconds{" in out and "} 0.83" in out
    assert "curl -s http://127.0.0.1:" in out
    assert "/               # the status page, in a browser" in out
