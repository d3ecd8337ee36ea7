"""An API outage is logged in a few short lines: one per failing list/watch per backoff step, none from the
client library (its retries are off: the reflector backs off), and one when each works again."""

import collections
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from exporter.sources.cluster import WATCHED
from tests.conftest import make_pod
from tests.support import eventually, free_port


@pytest.mark.long
def test_an_api_outage_is_a_few_short_lines(emulator, kubeconfig):
    emulator.create(make_pod("web", "shop", "127.0.0.1:9/shop/web:1"))
    watches = len(WATCHED) + 3  # and the Events, Nodes and opted-in Namespaces watches
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "--log-format", "json", "serve",
                             "--kubeconfig", str(kubeconfig), "--context", "one",
                             "--listen", f"127.0.0.1:{free_port()}", "--interval", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert eventually(lambda: emulator.open_watches >= watches, 30)
        port = emulator.port
        emulator.stop()
        time.sleep(4)  # the outage: backoff steps of 0.25-0.5, 0.5-1, 1-2, 2-4 s
        emulator.start(port)
        assert eventually(lambda: emulator.open_watches >= watches, 30)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [json.loads(line) for line in proc.communicate()[1].decode().splitlines()]
    records = records[next(i for i, r in enumerate(records) if r["message"].startswith("serving on")) + 1:]

    assert [r for r in records if not r["logger"].startswith("exporter.")] == []  # no urllib3 retry warnings
    assert max(len(r["message"]) for r in records) < 160, max((r["message"] for r in records), key=len)
    failures = collections.Counter()
    others = collections.Counter()
    for record in records:
        if record["level"] == "WARNING" and record["logger"] == "exporter.sources.kube.watch":
            source = re.match(r"one: (?:watch |GET /\S*/)(\w+)[:?]", record["message"])
            assert source, record["message"]
            failures[source[1]] += 1
        elif record["level"] == "WARNING":
            others[record["message"]] += 1  # e.g. a service account not readable: once per read, not per cycle
    assert len(failures) == watches and max(failures.values()) <= 8, failures
    assert all(n == 1 for n in others.values()), others
    recovered = [r["message"] for r in records if "works again" in r["message"]]
    assert len(recovered) == watches, recovered
