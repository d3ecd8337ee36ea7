#!/usr/bin/env python3
"""Time `report` on a generated cluster: from a List file, and from the API emulator holding the same.

    .venv/bin/python scripts/bench_report.py --pods 50000

Prints wall time and peak resident memory of each run (each in its own process, so peaks are separate).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(args: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "exporter", "--log-level", "error", *args], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50000)
    args = parser.parse_args()
    import yaml

    from tests.emulator.server import Emulator

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        cluster = tmp / "cluster.json"
        subprocess.run([sys.executable, str(ROOT / "scripts/gen_cluster.py"), "--pods", str(args.pods),
                        "--out", str(cluster)], check=True)
        file_time, file_peak = run(["report", "--from-file", str(cluster), "-o", str(tmp / "a.json")])
        emulator = Emulator().start()
        emulator.create_many(json.loads(cluster.read_text())["items"])
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig()))
        live_time, live_peak = run(["report", "--kubeconfig", str(kubeconfig), "-o", str(tmp / "b.json")])
        same = (tmp / "a.json").read_text() == (tmp / "b.json").read_text()
        emulator.stop()
    print(f"pods: {args.pods}")
    print(f"report --from-file : {file_time:6.2f} s   peak RSS of runs so far {file_peak:6.0f} MB")
    print(f"report (emulator)  : {live_time:6.2f} s   peak RSS of runs so far {live_peak:6.0f} MB")
    print(f"same report from both: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
