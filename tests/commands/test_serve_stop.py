"""`serve` stops at once on SIGTERM, even with every watch open on a server that sends nothing and a check
round waiting on a registry that never answers (the time itself is measured by scripts/bench_stop.py)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from exporter.sources.cluster import WATCHED
from tests.conftest import make_pod
from tests.support import eventually, free_port
from tests.support.silent import SilentRegistry


@pytest.mark.long
def test_sigterm_exits_0_at_once_with_silent_watches_and_a_check_in_flight(emulator, kubeconfig):
    registry = SilentRegistry()
    emulator.create(make_pod("web", "shop", f"127.0.0.1:{registry.port}/shop/web:1"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                             "--context", "one", "--listen", f"127.0.0.1:{port}", "--interval", "1",
                             "--insecure-registry", f"127.0.0.1:{registry.port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ)
    try:
        watches = len(WATCHED) + 2  # the inventory's kinds, kubelet events and nodes
        assert eventually(lambda: emulator.open_watches >= watches and registry.connections, 30), \
            f"{emulator.open_watches} watches open, {len(registry.connections)} registry connections"
        time.sleep(0.5)  # the watches are idle: nothing is sent on them
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # before: 2 s per reflector, one after another (about 18 s)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1].decode()
        registry.close()
    assert "shutting down" in stderr and "Traceback" not in stderr
