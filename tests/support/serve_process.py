"""A real `python -m exporter serve` process against the emulator, read as a user reads it: /metrics, /readyz,
and its log lines on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from prometheus_client.parser import text_string_to_metric_families

from tests.support import eventually, free_port, http_get, stop_process


class Serve:
    """`serve ARGS --listen 127.0.0.1:PORT --interval 1`; stderr goes to a file, read with `log()`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", *args,
                                      "--listen", f"127.0.0.1:{self.port}", "--interval", "1"],
                                     stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     env=None if env is None else {**os.environ, **env})

    def __enter__(self) -> "Serve":
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.proc)
        self._stderr.close()

    def get(self, path: str) -> tuple[int | None, str]:
        return http_get(f"http://127.0.0.1:{self.port}{path}")

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample named `name` in /metrics now ([] while it does not answer)."""
        status, body = self.get("/metrics")
        if status != 200:
            return []
        return [(s.labels, s.value) for family in text_string_to_metric_families(body)
                for s in family.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one sample of `name` with these labels (None when absent)."""
        found = [v for sample_labels, v in self.samples(name) if labels.items() <= sample_labels.items()]
        return found[0] if len(found) == 1 else None

    def workloads(self) -> set[str]:
        """Workloads of the inventory (every bare pod here has no unit: `kube_image_unknown_unit`)."""
        return {labels["workload"] for labels, _ in self.samples("kube_image_unknown_unit")}

    def wait(self, predicate, what: str, timeout: float = 30.0) -> None:
        assert self.proc.poll() is None, f"serve exited: {self.log()[-2000:]}"
        assert eventually(predicate, timeout, step=0.1), f"{what}: not reached in {timeout}s; log:\n{self.log()[-3000:]}"

    def log(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")
