#!/usr/bin/env python3
"""`check` and `report` timed as whole processes beside their baselines, in one run.

    .venv/bin/python scripts/bench_load.py            # also run by scripts/bench.py
    .venv/bin/python scripts/bench_load.py --runs 5

Rows (medians of `--runs` runs, each command alternated with its baseline; the baseline loops are whole
Python processes too, with a sync httpx client and one keep-alive connection; the local row also gives each
side's CPU, user + system, as the kernel accounted it: on a shared 2-core machine the steadier figure):
0. start-up: `check --help` vs a process that only imports httpx (what every check row pays before a request);
1. 1,020 unique refs on a local registry: `check --file` vs a bare sequential HEAD loop over the same list;
2. 510 refs through a link adding 20 ms per request (tests/support/fronts.py DelayProxy): the same pair;
3. 600 refs behind a front allowing 100 requests/s (token bucket, 429 + Retry-After: 1 above): `check`'s time,
   verdicts and share of requests refused (a new front each run);
4. `report` against the API emulator holding a 300-pod cluster vs scripts/bench_report_baseline.py.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from gen_cluster import big  # noqa: E402

from tests.emulator.server import Emulator  # noqa: E402
from tests.support.fronts import DelayProxy, RateFront  # noqa: E402
from tests.support.registry import OCI_MANIFEST, Registry  # noqa: E402

HEAD_LOOP = """
import sys, httpx
accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
with httpx.Client() as client:
    for line in open(sys.argv[1]):
        host, _, rest = line.strip().partition("/")
        name, _, tag = rest.rpartition(":")
        assert client.head(f"http://{host}/v2/{name}/manifests/{tag}", headers={"Accept": accept}).status_code == 200
"""


def push_tags(reg: Registry, count: int) -> list[str]:
    """`count` tags over 34 repositories, all of one small image (blobs mounted, not uploaded again)."""
    source = "bench/app0"
    reg.push_image(source, "base", seed="bench")
    manifest = httpx.get(f"{reg.url}/v2/{source}/manifests/base", headers={"Accept": OCI_MANIFEST})
    body = manifest.json()
    blobs = [layer["digest"] for layer in body["layers"]] + [body["config"]["digest"]]
    refs = []
    with httpx.Client(timeout=30) as http:
        for i in range(count):
            repository = f"bench/app{i % 34}"
            if i < 34 and repository != source:
                for digest in blobs:
                    http.post(f"{reg.url}/v2/{repository}/blobs/uploads/?mount={digest}&from={source}")
            http.put(f"{reg.url}/v2/{repository}/manifests/v{i}", content=manifest.content,
                     headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
            refs.append(f"{repository}:v{i}")
    return refs


def timed(command: list[str]) -> tuple[float, int]:
    return measured(command)[:2]


def measured(command: list[str]) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the process: user + system, as the kernel accounted them)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, done.returncode, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def check_command(host: str, listing: Path) -> list[str]:
    return [sys.executable, "-m", "exporter", "check", "--file", str(listing), "--insecure-registry", host]


def pair(command: list[str], baseline: list[str], runs: int) -> dict:
    """Medians of alternated runs of a command and its baseline, with the median of their ratios."""
    ours, theirs, codes, cpu, baseline_cpu = [], [], set(), [], []
    for _ in range(runs):
        seconds, code, used = measured(command)
        ours.append(seconds)
        cpu.append(used)
        codes.add(code)
        seconds, _, used = measured(baseline)
        theirs.append(seconds)
        baseline_cpu.append(used)
    return {"seconds": statistics.median(ours), "baseline_seconds": statistics.median(theirs),
            "ratio": statistics.median(a / b for a, b in zip(ours, theirs)), "exit_codes": sorted(codes),
            "cpu_seconds": statistics.median(cpu), "baseline_cpu_seconds": statistics.median(baseline_cpu)}


def listing(workdir: Path, name: str, host: str, refs: list[str]) -> Path:
    path = workdir / f"{name}.txt"
    path.write_text("".join(f"{host}/{ref}\n" for ref in refs))
    return path


def rate_limited(reg: Registry, refs: list[str], workdir: Path, runs: int) -> dict:
    """`check` of `refs` behind a front allowing 100 requests/s (429 + Retry-After: 1 above), a new front each run:
    the median time, exit codes, share of requests refused and requests sent."""
    limited = []
    for _ in range(runs):
        front = RateFront(reg.host, 100, retry_after="1")
        try:
            seconds, code = timed(check_command(front.host, listing(workdir, "limited", front.host, refs)))
            limited.append((seconds, code, front.refused / max(1, len(front.arrivals)), len(front.arrivals)))
        finally:
            front.stop()
    return {
        "refs": len(refs), "seconds": statistics.median(s for s, _, _, _ in limited),
        "exit_codes": sorted({c for _, c, _, _ in limited}),
        "refused_share": statistics.median(r for _, _, r, _ in limited),
        "requests": statistics.median(n for _, _, _, n in limited),
    }


def run_all(workdir: Path, runs: int) -> dict:
    loop = workdir / "head_loop.py"
    loop.write_text(HEAD_LOOP)
    (workdir / "registry").mkdir()
    reg = Registry(workdir / "registry")
    results = {"startup": pair([sys.executable, "-m", "exporter", "check", "--help"],
                               [sys.executable, "-c", "import httpx"], runs)}
    try:
        refs = push_tags(reg, 1020)
        local = listing(workdir, "local", reg.host, refs)
        results["local"] = pair(check_command(reg.host, local), [sys.executable, str(loop), str(local)], runs)
        results["local"]["refs"] = len(refs)

        proxy = DelayProxy(reg.host, 0.02)
        try:
            slow = listing(workdir, "slow", proxy.host, refs[:510])
            results["slow_link"] = pair(check_command(proxy.host, slow), [sys.executable, str(loop), str(slow)],
                                        max(1, runs // 2))
            results["slow_link"]["refs"] = 510
        finally:
            proxy.stop()

        results["rate_limited"] = rate_limited(reg, refs[:600], workdir, runs)
    finally:
        reg.stop()

    emulator = Emulator().start()
    try:
        emulator.create_many(big(300))
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(emulator.kubeconfig()))
        results["report"] = pair(
            [sys.executable, "-m", "exporter", "--log-level", "error", "report", "--kubeconfig", str(kubeconfig),
             "-o", str(workdir / "report.json")],
            [sys.executable, str(ROOT / "scripts/bench_report_baseline.py"), "--kubeconfig", str(kubeconfig)], runs)
        results["report"]["pods"] = 300
    finally:
        emulator.stop()
    return results


def table(r: dict) -> str:
    rows = [
        ("start-up: check --help vs import httpx", f"{r['startup']['seconds']:.2f} s",
         f"{r['startup']['baseline_seconds']:.2f} s", f"{r['startup']['ratio']:.2f}x", "(in every check row)"),
        ("check, 1,020 refs, local registry",
         f"{r['local']['seconds']:.2f} s (CPU {r['local']['cpu_seconds']:.2f} s)",
         f"{r['local']['baseline_seconds']:.2f} s (CPU {r['local']['baseline_cpu_seconds']:.2f} s)",
         f"{r['local']['ratio']:.2f}x", "<= 1.0x"),
        ("check, 510 refs, +20 ms a request", f"{r['slow_link']['seconds']:.2f} s",
         f"{r['slow_link']['baseline_seconds']:.2f} s", f"{r['slow_link']['ratio']:.2f}x", "<= 0.2x"),
        ("check, 600 refs, 100 req/s + 429", f"{r['rate_limited']['seconds']:.2f} s",
         "-", f"{r['rate_limited']['refused_share']:.0%} refused, exit {r['rate_limited']['exit_codes']}",
         "<= 9 s, <= 15%, exit 0"),
        ("report, 300 pods, API emulator", f"{r['report']['seconds']:.2f} s",
         f"{r['report']['baseline_seconds']:.2f} s", f"{r['report']['ratio']:.2f}x",
         "<= 0.01x of get_image_refs.py itself"),
    ]
    head = ("case", "command", "baseline", "ratio", "goal")
    widths = [max(len(str(row[i])) for row in rows + [head]) for i in range(5)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (medians are printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_all(Path(tmp), args.runs)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
