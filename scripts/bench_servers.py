#!/usr/bin/env python3
"""The endpoints' server beside kept ASGI servers (hypercorn, uvicorn) in one run: latency and the contract.

    .venv/bin/python scripts/bench_servers.py                  # latency and contract, every candidate
    .venv/bin/python scripts/bench_servers.py --only latency --repeats 5
    .venv/bin/python scripts/bench_servers.py --only cpu        # each server's CPU per scrape (needs ab)
    .venv/bin/python scripts/bench_servers.py --profile /tmp/endpoints.prof   # the hand-written one under load

The page is the `/metrics` of a 50,000-pod snapshot: scripts/gen_cluster.py's cluster (the one scripts/bench.py
serves) read as `report --from-file` reads it, every image available, joined and rendered as a cycle publishes
it (1.4 MB, 68 KB gzipped), served as a cycle's `MetricsPage` (self-metrics made at each scrape). Each candidate
is its own process (`serve` below) answering from the same `Published` holder through the same route table:
- `endpoints`: exporter/serve/endpoints.py, the hand-written asyncio protocol over h11;
- `hypercorn`: hypercorn 0.18 (asyncio worker, h11) with a small ASGI app over the route table;
- `uvicorn`: uvicorn (h11 protocol, asyncio loop) with the same app.

Latency: 200 clients at once, each scrape a new connection asking `/metrics` with `Accept-Encoding: gzip` as
Prometheus does, 1,000 scrapes per repeat after a warm-up of 200; candidates alternate within each repeat, so load
from other work on the machine falls on all of them alike; the table shows the median of the repeats' p50/p99/max.
The client is ApacheBench (`ab -c 200`, what the figures were first taken with; `scripts/setup bench` installs it)
where it is installed: written in C, it takes a fraction of the CPU a Python client needs for the same scrapes,
and on 2 cores the client's CPU is taken from the server. Without it (or `--client python`), asyncio on raw
sockets in this process sends 5 rounds of 200 at once (a failed scrape counts as the slowest); its figures run
higher for that reason, so compare figures of one client only. The load average is printed beside them.

Contract (each point as the hand-written server keeps it, with deadlines scaled down so a run takes seconds:
head 2 s, keep-alive idle 20 s, write 2 s; each candidate given its closest settings, printed in the table):
- head deadline: a silent connection, and a head sent a line every 0.5 s, closed within the head deadline;
- keep-alive: a connection idle after its answer kept past the head deadline (the idle timeout is the longer one);
- slow reader: a client asking 20 pages pipelined and reading nothing is dropped within the write deadline;
- head cap: a 15 KiB head answered, a 17 KiB head refused (4xx);
- descriptors: under a 256-file limit with 300 idle keep-alive connections held, a scrape answered within 10 s,
  and at least 64 of the server's descriptors still free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from exporter.serve.endpoints import ROUTES, Bodies, LazyPage, Published, Server, text  # noqa: E402
from exporter.views.exposition import MetricsPage  # noqa: E402
from bench import _timed_scrape  # noqa: E402 (one timed scrape, as the serve benchmark takes it)
from tests.support import free_port, stop_process  # noqa: E402

CANDIDATES = ("endpoints", "hypercorn", "uvicorn")
# deadlines of the contract run, scaled down from HEADER_TIMEOUT, IDLE_TIMEOUT and WRITE_TIMEOUT
HEAD, IDLE, WRITE = 2.0, 20.0, 2.0


# -- the page --

def build_page(pods: int) -> bytes:
    """The /metrics exposition of a generated `pods`-pod cluster, every image available, as a cycle renders it."""
    from gen_cluster import big

    from exporter.model.records import Status
    from exporter.snapshot.join import ImageState, join
    from exporter.sources import inventory
    from exporter.sources.kube import listfile
    from exporter.sources.kube.owners import OwnerResolver
    from exporter.views import series
    from exporter.views.exposition import render

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cluster.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": big(pods)}))
        index = listfile.load(path)
    found = inventory.build("bench", index.pods, (), OwnerResolver(index.lookup))
    now = time.time()
    states = [(ref, ImageState(Status.AVAILABLE, registry=ref.image.split("/", 1)[0], digest="sha256:" + "0" * 64,
                               checked_at=now)) for ref in found.references]
    snapshot = join(states, {}, {}, ["bench"], now, chains={"bench": found.chains})
    return render(*series.of(snapshot))


# -- the candidates, each in its own process --

def asgi_app(published: Published):
    """The route table as an ASGI application: what the endpoints answer, for the kept servers; a MetricsPage's
    body made once per wake-up of the loop, as the endpoints' own server makes it (`Bodies`)."""
    bodies: list[Bodies] = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        extra: tuple = ()
        if method not in ("GET", "HEAD"):
            status, page, _ = text(405, "only GET and HEAD\n")
            extra = (("Allow", "GET, HEAD"),)
        else:
            route = ROUTES.get(path)
            status, page, extra = route(published) if route else text(404, "not found\n")
        if isinstance(page, LazyPage):
            page = await asyncio.get_running_loop().run_in_executor(None, page.get)
        if not bodies:
            bodies.append(Bodies(asyncio.get_running_loop()))
        accepts = any(k == b"accept-encoding" and b"gzip" in v for k, v in scope["headers"])
        use_gzip = accepts and (isinstance(page, MetricsPage) or bool(page.gzipped))
        body = bodies[0].of(page, use_gzip)
        headers = [(b"content-type", page.content_type.encode()), (b"content-length", str(len(body)).encode()),
                   *((k.encode(), v.encode()) for k, v in extra)]
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
    return app


def serve(args) -> None:
    """The child: serve the page with one candidate, print the port, stop on SIGTERM."""
    if args.nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    published = Published(metrics=MetricsPage(Path(args.page).read_bytes()), ready=True)
    done = threading.Event()
    if args.server == "endpoints":
        server = Server(published, "127.0.0.1", 0, header_timeout=args.head, idle_timeout=args.idle,
                        write_timeout=args.write)
        profile = None
        if args.profile:
            import cProfile

            profile = cProfile.Profile()  # the loop's thread, profiled from its start
            server._thread = threading.Thread(target=lambda: profile.runcall(server._run), name="http", daemon=True)
        server.start()
        print(server.port, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        done.wait()
        server.stop()
        if profile is not None:
            profile.dump_stats(args.profile)
        return
    port = free_port()
    if args.server.startswith("hypercorn"):
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.backlog = 1024
        config.accesslog = config.errorlog = None
        config.h11_max_incomplete_size = 16 * 1024
        # its one deadline for a connection waiting for a head, before the first request and between requests
        # alike: at the idle timeout (hypercorn), or at the head deadline (hypercorn-short), cutting keep-alive there
        # (read_timeout, a deadline per read, only ends the read loop: the connection is closed when the keep-alive
        # task ends, so it changes nothing here)
        config.keep_alive_timeout = args.idle if args.server == "hypercorn" else args.head

        async def main() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            asyncio.get_running_loop().call_later(0.5, lambda: print(port, flush=True))
            await hypercorn_serve(asgi_app(published), config, shutdown_trigger=stop.wait)

        asyncio.run(main())
        return
    import uvicorn

    config = uvicorn.Config(asgi_app(published), host="127.0.0.1", port=port, backlog=1024, http="h11",
                            loop="asyncio", lifespan="off", log_level="error", access_log=False,
                            timeout_keep_alive=int(args.idle), h11_max_incomplete_event_size=16 * 1024)
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: (time.sleep(0.5), print(port, flush=True)), daemon=True).start()
    server.run()  # its own SIGTERM handler stops it


SETTINGS = {
    "endpoints": f"header_timeout {HEAD:g} s, idle_timeout {IDLE:g} s, write_timeout {WRITE:g} s",
    "hypercorn": f"keep_alive_timeout {IDLE:g} s (the idle timeout)",
    "hypercorn-short": f"keep_alive_timeout {HEAD:g} s (the head deadline)",
    "uvicorn": f"timeout_keep_alive {IDLE:g} s (no head or write deadline exists)",
}


class Child:
    """One candidate's process, from the parent's side."""

    def __init__(self, server: str, page: Path, *extra: str) -> None:
        # its own messages (asyncio's tracebacks at EMFILE, for one) go to a file beside the page
        log = os.open(page.with_name(f"{server}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", "--server", server, "--page", str(page),
                                      "--head", str(HEAD), "--idle", str(IDLE), "--write", str(WRITE), *extra],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
        os.close(log)
        self.port = int(self.proc.stdout.readline())
        _wait_listening(self.port)

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc.stdout.close()

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- latency --



async def _round(port: int, clients: int) -> list[float | None]:
    return list(await asyncio.gather(*(_timed_scrape(port) for _ in range(clients))))


def percentiles(answers: list[float | None]) -> dict:
    latencies = sorted(a for a in answers if a is not None)
    failed = len(answers) - len(latencies)
    latencies += [float("inf")] * failed  # a failed scrape counts as the slowest
    return {"failed": failed, "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[max(0, int(len(latencies) * 0.99) - 1)], "max_ms": 1000 * latencies[-1]}


def _ab(port: int, clients: int, requests: int) -> dict:
    """`ab -c clients -n requests` of /metrics with gzip: its percentiles (whole ms) and its failures, less the
    ones it calls "Length" (an answer of another length than the first: the self-metrics change at each scrape)."""
    done = subprocess.run(["ab", "-q", "-s", "30", "-c", str(clients), "-n", str(requests), "-H",
                           "Accept-Encoding: gzip", f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True)
    percent = {int(p): float(ms) for p, ms in re.findall(r"^\s+(\d+)%\s+(\d+)", done.stdout, re.M)}
    if done.returncode != 0 or not percent:
        return {"failed": requests, "p50_ms": math.inf, "p99_ms": math.inf, "max_ms": math.inf}
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", done.stdout)
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", done.stdout)
    failed = sum(map(int, kinds.groups())) if kinds else 0
    return {"failed": failed + (int(non_2xx.group(1)) if non_2xx else 0),
            "p50_ms": percent[50], "p99_ms": percent[99], "max_ms": percent[100]}


def default_client() -> str:
    return "ab" if shutil.which("ab") else "python"


def latency(page: Path, candidates: list[str], clients: int, rounds: int, repeats: int,
            profile: str | None = None, client: str | None = None) -> dict:
    """p50/p99/max of `clients` concurrent scrapes, `rounds` times over, per candidate (medians of `repeats`).

    `client` "ab": ApacheBench keeps `clients` requests in flight for `clients * rounds` requests; "python": this
    process's asyncio client sends `rounds` rounds of `clients` scrapes at once. Default: ab when installed."""
    client = client or default_client()
    runs: dict[str, list[dict]] = {name: [] for name in candidates}
    loads = []
    for _ in range(repeats):
        for name in candidates:
            extra = ("--profile", profile) if profile and name == "endpoints" else ()
            with Child(name, page, *extra) as child:
                if client == "ab":
                    _ab(child.port, clients, clients)  # warm-up, not counted
                    runs[name].append(_ab(child.port, clients, clients * rounds))
                else:
                    asyncio.run(_round(child.port, clients))  # warm-up, not counted
                    answers: list[float | None] = []
                    for _ in range(rounds):
                        answers += asyncio.run(_round(child.port, clients))
                    runs[name].append(percentiles(answers))
            loads.append(os.getloadavg()[0])
    summary = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    return {"client": client, "clients": clients, "rounds": rounds, "repeats": repeats, "runs": runs,
            "median": summary, "load_average_1m": statistics.median(loads)}


def cpu(page: Path, candidates: list[str], repeats: int, scrapes: int = 4000, clients: int = 20) -> dict:
    """The server's own CPU per scrape (user and system, from /proc, milliseconds) over `scrapes` gzip scrapes by
    `ab -c clients`, medians of the repeats; the figure latency under 200 clients follows from (Little's law: they
    wait for one another's answers), steadier than the latency itself on a shared machine. Needs ab."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(pid: int) -> tuple[float, float]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / tick, int(fields[12]) / tick

    runs: dict[str, list[dict]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name in candidates:
            with Child(name, page) as child:
                _ab(child.port, clients, 500)  # warm-up, not counted
                before, started = used(child.proc.pid), time.perf_counter()
                failed = _ab(child.port, clients, scrapes)["failed"]
                after, elapsed = used(child.proc.pid), time.perf_counter() - started
            runs[name].append({"user_ms": 1000 * (after[0] - before[0]) / scrapes,
                               "system_ms": 1000 * (after[1] - before[1]) / scrapes, "per_second": scrapes / elapsed,
                               "failed": failed})  # failed scrapes cost less: a figure with failures is not one
    return {"scrapes": scrapes, "clients": clients, "repeats": repeats, "runs": runs,
            "median": {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}}


def cpu_table(r: dict) -> str:
    lines = [f"server CPU per scrape, {r['scrapes']:,} gzip scrapes by ab -c {r['clients']}, median of {r['repeats']}:",
             f"{'server':<12}{'user ms':>10}{'system ms':>11}{'scrapes/s':>11}{'failed':>8}"]
    lines += [f"{name:<12}{m['user_ms']:>10.3f}{m['system_ms']:>11.3f}{m['per_second']:>11.0f}{m['failed']:>8.0f}"
              for name, m in r["median"].items()]
    return "\n".join(lines)


# -- the contract --

def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes `sock` (sending `trickle` every 0.5 s meanwhile), None if it did not."""
    started = time.monotonic()
    sock.settimeout(0.5)
    while time.monotonic() - started < seconds:
        try:
            if trickle:
                sock.sendall(trickle)
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset, broken pipe
            return time.monotonic() - started
    return None


def _read_answer(sock: socket.socket, timeout: float = 10) -> bytes:
    """One whole answer (head and Content-Length body) from a keep-alive connection."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def _status(head: bytes) -> int | None:
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def contract(page: Path, name: str) -> dict:
    """Each contract point against one candidate: (kept?, what was seen)."""
    points: dict[str, tuple[bool, str]] = {}
    with Child(name, page) as child:
        port = child.port
        with socket.create_connection(("127.0.0.1", port)) as sock:
            closed = _closed_within(sock, HEAD + 4)
        points["head deadline: silent connection"] = (
            closed is not None and closed <= HEAD + 1, f"closed after {closed:.1f} s" if closed else f"open after {HEAD + 4:g} s")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n")
            closed = _closed_within(sock, HEAD + 4, trickle=b"X-Slow: 1\r\n")
        points["head deadline: a header line every 0.5 s"] = (
            closed is not None and closed <= HEAD + 1, f"closed after {closed:.1f} s" if closed else f"open after {HEAD + 4:g} s")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            _read_answer(sock)
            closed = _closed_within(sock, 2 * HEAD + 1)
        points["keep-alive: idle kept past the head deadline"] = (
            closed is None, f"closed after {closed:.1f} s" if closed else f"open after {2 * HEAD + 1:g} s")
        points["slow reader dropped"] = _slow_reader(port)
        points["head cap 16 KiB (15 KiB answered, 17 KiB refused)"] = _head_cap(port)
    points["descriptors: 300 idle under a 256-file limit"] = _descriptors(page, name)
    return points


def _slow_reader(port: int, pipelined: int = 20) -> tuple[bool, str]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    with sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n" * pipelined)  # plain: 1.4 MB each
        time.sleep(WRITE + 3)  # reading nothing
        expected = pipelined * len(Path(PAGE).read_bytes())
        received, started = 0, time.monotonic()
        sock.settimeout(2)
        try:
            while received < expected and time.monotonic() - started < 30:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
        except (TimeoutError, OSError):
            pass
    dropped = received < expected
    return dropped, (f"dropped after {received / 1e6:.1f} MB" if dropped
                     else f"all {pipelined} answers written ({received / 1e6:.0f} MB) after {WRITE + 3:g} s unread")


def _head_cap(port: int) -> tuple[bool, str]:
    statuses = []
    for size in (15 * 1024, 17 * 1024):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            filler = b"X-Fill: " + b"a" * (size - 60) + b"\r\n"
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n" + filler + b"\r\n")
            try:
                statuses.append(_status(_read_answer(sock, 5)))
            except OSError:
                statuses.append(None)
    kept = statuses[0] == 200 and statuses[1] is not None and 400 <= statuses[1] < 500
    return kept, f"15 KiB: {statuses[0]}, 17 KiB: {statuses[1]}"


def _descriptors(page: Path, name: str, nofile: int = 256, idle: int = 300) -> tuple[bool, str]:
    with Child(name, page, "--nofile", str(nofile)) as child:
        held = []
        try:
            for _ in range(idle):  # connected (the kernel's backlog takes them, accepted or not), each asking once
                sock = socket.create_connection(("127.0.0.1", child.port), timeout=2)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
                held.append(sock)
            time.sleep(1)
            for sock in held:  # the answers read: idle keep-alive connections now, as Prometheus leaves them
                sock.setblocking(False)
                try:
                    sock.recv(65536)
                except OSError:
                    pass
            free = nofile - child.open_descriptors()
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", child.port), timeout=10) as sock:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\n\r\n")
                    status = _status(_read_answer(sock, 10))
            except OSError:
                status = None
            seconds = time.monotonic() - started
        finally:
            for sock in held:
                sock.close()
    kept = status == 200 and seconds <= 10 and free >= 64
    answered = f"scrape {status} in {seconds:.1f} s" if status else f"scrape not answered in {seconds:.1f} s"
    return kept, f"{answered}, {free} descriptors free"


PAGE = ""


def main() -> int:
    global PAGE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("serve", help="(internal) serve a page with one candidate")
    child.add_argument("--server", choices=[*CANDIDATES, "hypercorn-short"], required=True)
    child.add_argument("--page", required=True)
    child.add_argument("--nofile", type=int, default=0)
    child.add_argument("--head", type=float, default=HEAD)
    child.add_argument("--idle", type=float, default=IDLE)
    child.add_argument("--write", type=float, default=WRITE)
    child.add_argument("--profile", default=None)
    parser.add_argument("--pods", type=int, default=50000, help="pods of the generated cluster behind the page")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --clients scrapes per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every candidate, alternated (medians)")
    parser.add_argument("--only", choices=("latency", "cpu", "contract"), default=None,
                        help="one part (cpu: each server's CPU per scrape, with ab)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--client", choices=("ab", "python"), default=None,
                        help="the concurrent client: ab (ApacheBench, the default where installed) or python (asyncio)")
    parser.add_argument("--profile", default=None, help="cProfile the hand-written server's loop into this file")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return 0
    candidates = args.candidates.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        PAGE = str(Path(tmp) / "metrics.txt")
        started = time.perf_counter()
        body = build_page(args.pods)
        Path(PAGE).write_bytes(body)
        import gzip

        results["page"] = {"pods": args.pods, "bytes": len(body), "gzip_bytes": len(gzip.compress(body, 5))}
        print(f"page of {args.pods:,} pods: {len(body) / 1e6:.2f} MB ({results['page']['gzip_bytes'] / 1e3:.0f} KB "
              f"gzipped), built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if args.only in (None, "latency"):
            results["latency"] = latency(Path(PAGE), candidates, args.clients, args.rounds, args.repeats, args.profile,
                                         args.client)
            print(latency_table(results["latency"]))
        if args.only == "cpu" or (args.only is None and shutil.which("ab")):
            results["cpu"] = cpu(Path(PAGE), candidates, args.repeats)
            print(cpu_table(results["cpu"]))
        if args.only in (None, "contract"):
            names = [n for c in candidates for n in ((c, "hypercorn-short") if c == "hypercorn" else (c,))]
            results["contract"] = {name: contract(Path(PAGE), name) for name in names}
            print(contract_table(results["contract"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def latency_table(r: dict) -> str:
    lines = [f"{r['clients']} concurrent scrapes of /metrics, {r['clients'] * r['rounds']} in all, client {r['client']}, "
             f"median of {r['repeats']} repeats (load {r['load_average_1m']:.1f}):",
             f"{'server':<12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'failed':>8}   p99 of each repeat"]
    for name, m in r["median"].items():
        each = ", ".join(f"{run['p99_ms']:.0f}" for run in r["runs"][name])
        lines.append(f"{name:<12}{m['p50_ms']:>10.1f}{m['p99_ms']:>10.1f}{m['max_ms']:>10.1f}{m['failed']:>8.0f}   {each}")
    return "\n".join(lines)


def contract_table(r: dict) -> str:
    lines = []
    for name, points in r.items():
        lines.append(f"\n{name} ({SETTINGS[name]}):")
        lines += [f"  {'kept  ' if kept else 'MISSED'}  {point}: {seen}" for point, (kept, seen) in points.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
