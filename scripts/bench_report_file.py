#!/usr/bin/env python3
"""Time `report --from-file` beside `json.load` of the same file: the floor any reader of the file pays.

    .venv/bin/python scripts/bench_report_file.py --pods 50000 [--indent 4] [--runs 3]
    .venv/bin/python scripts/bench_report_file.py --file cluster.json

Generates the cluster with scripts/gen_cluster.py (`--indent 4` writes it as kubectl does, about twice the size),
then runs each command `--runs` times, each in its own process, and prints the median wall time and the median
peak resident memory of those runs (from the child's own rusage, so runs do not share a peak), and the ratio.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} exited {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def medians(command: list[str], runs: int) -> tuple[float, float]:
    results = [measure(command) for _ in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def run(runs: int, pods: int = 50000, cluster: pathlib.Path | None = None, indent: int | None = None) -> dict:
    """Medians of `runs` runs of `json.load` and of `report --from-file` over `cluster` (generated with `pods`
    pods when None): seconds, peak RSS in MB, and the ratio of the times."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        if cluster is None:
            cluster = tmp / "cluster.json"
            subprocess.run([sys.executable, str(ROOT / "scripts/gen_cluster.py"), "--pods", str(pods),
                            "--out", str(cluster)], check=True)
            if indent is not None:  # in a process of its own: a child's peak memory counts its parent's at fork
                subprocess.run([sys.executable, "-c", "import json, sys; path, indent = sys.argv[1], int(sys.argv[2]); "
                                "text = json.dumps(json.load(open(path)), indent=indent); open(path, 'w').write(text)",
                                str(cluster), str(indent)], check=True)
        report = [sys.executable, "-m", "exporter", "--log-level", "error", "report", "--from-file", str(cluster),
                  "-o", str(tmp / "report.json")]
        load = [sys.executable, "-c", "import json, sys; json.load(open(sys.argv[1], 'rb'))", str(cluster)]
        load_time, load_peak = medians(load, runs)
        report_time, report_peak = medians(report, runs)
        size = cluster.stat().st_size / 1e6
    return {"file_mb": size, "runs": runs, "load_seconds": load_time, "load_peak_mb": load_peak,
            "report_seconds": report_time, "report_peak_mb": report_peak, "ratio": report_time / load_time}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--pods", type=int, default=50000, help="generate a cluster of this many pods")
    what.add_argument("--file", type=pathlib.Path, help="read this file instead of generating one")
    parser.add_argument("--indent", type=int, default=None, help="write the generated file with this indent")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    r = run(args.runs, args.pods, args.file, args.indent)
    print(f"file: {r['file_mb']:.0f} MB, medians of {args.runs} runs")
    print(f"json.load           : {r['load_seconds']:6.2f} s   peak RSS {r['load_peak_mb']:6.0f} MB")
    print(f"report --from-file  : {r['report_seconds']:6.2f} s   peak RSS {r['report_peak_mb']:6.0f} MB")
    print(f"ratio               : {r['ratio']:6.2f} x  {r['report_peak_mb'] / r['load_peak_mb']:6.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
