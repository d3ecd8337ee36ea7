#!/usr/bin/env python3
"""How long `serve` takes to exit on SIGTERM with every watch open on an API server that sends nothing and a
check round in flight on a registry that never answers (DESIGN.md target: under 2 s).

    .venv/bin/python scripts/bench_stop.py [--runs 5]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.sources.cluster import WATCHED  # noqa: E402
from tests.emulator.server import Emulator  # noqa: E402
from tests.support import eventually, free_port  # noqa: E402
from tests.support.silent import SilentRegistry  # noqa: E402


def one_stop(workdir: Path) -> tuple[float, int]:
    emulator = Emulator().start()  # silent watches
    registry = SilentRegistry()
    try:
        for i in range(20):
            emulator.create({"kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "bench"},
                             "spec": {"containers": [{"name": "main", "image": f"{registry.host}/bench/app{i}:1"}]}})
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig({"bench": "default"})))
        proc = subprocess.Popen([sys.executable, "-m", "exporter", "--log-level", "warning", "serve",
                                 "--kubeconfig", str(kubeconfig), "--listen", f"127.0.0.1:{free_port()}",
                                 "--insecure-registry", registry.host, "--interval", "1"],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not eventually(lambda: emulator.open_watches >= len(WATCHED) + 1 and registry.connections, 60):
                raise RuntimeError("the watches or the check round did not start")
            time.sleep(1.0)  # idle watches: nothing sent on them
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
            return time.monotonic() - started, code
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        registry.close()
        emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [one_stop(Path(tmp)) for _ in range(args.runs)]
    seconds = [s for s, _ in results]
    print(f"SIGTERM to exit, {len(WATCHED) + 1} silent watches open, a check in flight: "
          f"median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s over {args.runs} runs "
          f"(exit codes {sorted({c for _, c in results})}; target < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
