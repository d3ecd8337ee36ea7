"""The checker's connections: kept alive and reused, a connection the registry closed or dropped is not reused,
and a proxy named in the environment is honoured."""

import socket
import threading
import tomllib
from pathlib import Path

import pytest

from exporter.model.records import Status
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import ANONYMOUS
from exporter.sources.registry.settings import from_options
from tests.support import free_port

DIGEST = "sha256:" + "c" * 64


class RawRegistry:
    """A registry on a raw socket, counting connections and requests. It closes a connection after
    `per_connection` answers (saying so with `Connection: close`, as servers do), or silently once it sat idle
    for `idle_close` seconds (a keep-alive timeout), maybe after a `last_word`."""

    def __init__(self, per_connection: int = 1000, idle_close: float | None = None, last_word: bytes = b"") -> None:
        self.per_connection = per_connection
        self.idle_close = idle_close
        self.last_word = last_word  # sent when closing an idle connection (some servers send a 408)
        self.connections = 0
        self.requests = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.idle_close)
        with conn:
            buffer = b""
            for answered in range(1, self.per_connection + 1):
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:  # idle too long: closed (after a last word, if any)
                        conn.sendall(self.last_word)
                        return
                    if not chunk:
                        return
                    buffer += chunk
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests += 1
                close = b"Connection: close\r\n" if answered == self.per_connection else b""
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + close
                             + b"Docker-Content-Digest: " + DIGEST.encode() + b"\r\n\r\n")

    def stop(self) -> None:
        self.server.close()


def check(host: str, images: list[str], **options):
    checker = Checker(from_options(insecure=[host], **options))
    return checker, checker.check_many([(image, ANONYMOUS) for image in images])


def test_connections_are_kept_alive_and_reused():
    registry = RawRegistry()
    try:
        checker, results = check(registry.host, [f"{registry.host}/a:{i}" for i in range(200)])
    finally:
        registry.stop()
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert registry.requests == 201  # the ping and one HEAD each
    assert registry.connections <= 32  # at most one per request in flight (the check's ceiling), not one per request


def test_a_connection_the_registry_closes_is_not_reused():
    registry = RawRegistry(per_connection=1)  # each answer says `Connection: close`
    try:
        _, results = check(registry.host, [f"{registry.host}/a:{i}" for i in range(30)])
    finally:
        registry.stop()
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert registry.connections == registry.requests == 31


@pytest.mark.parametrize("last_word", [b"", b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"])
def test_an_idle_connection_the_registry_dropped_is_not_reused(last_word):
    registry = RawRegistry(idle_close=0.05, last_word=last_word)  # drops a connection idle for 50 ms
    try:  # at 4 requests a second, one at a time: every connection sits idle 250 ms before its next use (a margin
        # for a busy machine, where the registry's thread may see its 50 ms timeout late)
        _, results = check(registry.host, [f"{registry.host}/a:{i}" for i in range(6)], concurrency=1, rate=4)
    finally:
        registry.stop()
    assert {r.status for r in results.values()} == {Status.AVAILABLE}
    assert registry.connections == registry.requests == 7


def test_a_proxy_in_the_environment_is_used(httpserver, monkeypatch):
    """The registry itself cannot be reached; the proxy named by HTTP_PROXY answers for it."""
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/a/manifests/1", method="HEAD").respond_with_data(
        "", headers={"Docker-Content-Digest": DIGEST})
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{httpserver.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    unreachable = f"127.0.0.1:{free_port()}"
    _, results = check(unreachable, [f"{unreachable}/a:1"])
    [result] = results.values()
    assert (result.status, result.digest) == (Status.AVAILABLE, DIGEST)


def _pinned(name: str) -> str:
    """The version range pyproject.toml gives a dependency."""
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    [requirement] = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == name]
    return str(requirement.specifier)


def test_the_installed_httpx_and_httpcore_have_what_streams_relies_on():
    """streams.py leans on members httpx and httpcore do not document (streams.RELIES_ON): an upgrade that
    drops one fails here, naming it, instead of as connections that misbehave."""
    import asyncio
    import inspect

    import httpcore
    import httpx
    from packaging.specifiers import SpecifierSet

    from exporter.sources.registry import streams

    missing = []
    versions = f"httpx {httpx.__version__}, httpcore {httpcore.__version__}"
    transport = httpx.AsyncHTTPTransport()
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool) or "self._pool" not in \
            inspect.getsource(httpx.AsyncHTTPTransport.handle_async_request):
        missing.append(streams.RELIES_ON[0])
    if "network_backend" not in inspect.signature(httpcore.AsyncConnectionPool).parameters:
        missing.append(streams.RELIES_ON[1])
    for base, subclass in ((httpcore.AsyncNetworkStream, streams.AsyncioStream),
                           (httpcore.AsyncNetworkBackend, streams.AsyncioBackend)):
        ours = {name for name in vars(subclass) if not name.startswith("_")}
        theirs = {name for name in vars(base) if not name.startswith("_")}
        if theirs - ours or ours - theirs:
            missing.append(f"{streams.RELIES_ON[2]} (httpcore has {sorted(theirs)}, streams.py {sorted(ours)})")
    sources = (path.read_text() for path in Path(httpcore.__file__).parent.rglob("*.py"))
    if not any('get_extra_info("is_readable")' in source for source in sources):
        missing.append(streams.RELIES_ON[3])
    if "self._buffer = " not in inspect.getsource(asyncio.StreamReader.__init__):
        missing.append(streams.RELIES_ON[4])
    assert not missing, (f"{versions}: streams.py relies on what this version lacks: {'; '.join(missing)}. "
                         "Adapt streams.py to it before raising the bound in pyproject.toml.")
    for name, version in (("httpx", httpx.__version__), ("httpcore", httpcore.__version__)):
        assert version in SpecifierSet(_pinned(name)), (
            f"{name} {version} is installed, outside {_pinned(name)} in pyproject.toml: streams.py was checked "
            "within that range only")
