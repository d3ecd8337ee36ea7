"""A real redis-server (Debian's, 7.x) on 127.0.0.1 for tests and benchmarks, persistence off.

`kill()` stops it the hard way (a crashed or partitioned Redis), `start()` brings it back on the same port,
empty: what an exporter sees when its shared cache is lost and replaced.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support import free_port, stop_process

BINARY = shutil.which("redis-server")


def available() -> bool:
    return BINARY is not None


class RedisServer:
    def __init__(self, workdir: Path, password: str | None = None, port: int | None = None) -> None:
        self.workdir = workdir
        self.password = password
        self.port = port or free_port()
        self._proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        args = [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return self
            except OSError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.workdir / "redis.log"
                raise RuntimeError(log.read_text()[-2000:] if log.exists() else "redis-server did not start")
            time.sleep(0.05)

    def client(self):
        """A redis-py client of its own: the tests' view of the store, apart from the exporter's."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
