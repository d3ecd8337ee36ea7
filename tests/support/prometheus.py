"""A real Prometheus server on 127.0.0.1 scraping given targets, for end-to-end tests.

Debian's `prometheus` binary is started with its own config and data directory; `query()` uses the HTTP
API and answers [] when anything goes wrong, for polling. `evaluate()` and `evaluate_range()` raise
`QueryError` with Prometheus's own message instead, for tests that must fail on bad PromQL. New targets
take a few seconds to be scraped: callers poll with `wait_for`, never sleep blindly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support import free_port, stop_process


class QueryError(Exception):
    """Prometheus did not evaluate a query (bad PromQL, unknown function, wrong argument type)."""


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str], scrape_interval: str = "1s") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  evaluation_interval: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: kube-image-exporter\n"
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
        )
        self._log = open(workdir / "prometheus.log", "wb")
        self._proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_for(lambda: self._get("/-/ready") is not None, "Prometheus ready", timeout=30)

    def _get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.read()
        except OSError:
            return None

    def query(self, expr: str) -> list[dict]:
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return []
        return json.loads(body)["data"]["result"]

    def api(self, path: str, **params) -> dict:
        """The `data` of an HTTP API answer; QueryError carrying Prometheus's error when it is not a success."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 400 and 422 carry the error as JSON
            with exc:
                text = exc.read()
            try:
                body = json.loads(text)
            except ValueError:
                raise QueryError(f"{path}: HTTP {exc.code}: {text[:200]!r}") from None
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def evaluate(self, expr: str) -> list[dict]:
        """The result of an instant query now; QueryError when Prometheus rejects it."""
        return self.api("/api/v1/query", query=expr)["result"]

    def evaluate_range(self, expr: str, start: float, end: float, step: str) -> list[dict]:
        """The result of a range query (a matrix); QueryError when Prometheus rejects it."""
        return self.api("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._proc.returncode}")
            value = predicate()
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what}")

    def stop(self) -> None:
        stop_process(self._proc)
        self._log.close()


def available() -> bool:
    return shutil.which("prometheus") is not None
