"""httpcore's network backend on asyncio's own streams, for the checker's HTTP clients.

httpcore's default async backend goes through anyio, which costs a cancel scope on every read and write and
rebuilds a dict of socket attributes each time the pool asks whether an idle connection is still usable (once
per connection per request). On a fast registry that is most of a check's CPU, and on a small machine the
registry waits for it. Behaviour is httpcore's: the same timeouts, the same exceptions (which httpx maps to
its own), TLS started on the connection as anyio starts it. With a proxy in the environment the checker keeps
httpx's own transport, which honours it.

This leans on what httpx and httpcore do not document, listed in `RELIES_ON` (tests/registry/test_streams.py
checks each against the installed versions; pyproject pins the versions it was checked with): httpx's
`AsyncHTTPTransport` sends through its `_pool`, which is replaced here; httpcore's HTTP/1.1 connection asks its
stream `get_extra_info("is_readable")` before reusing it; and asyncio's `StreamReader._buffer` tells bytes read
but not consumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx


RELIES_ON = (
    "httpx.AsyncHTTPTransport._pool: the pool handle_async_request sends through",
    "httpcore.AsyncConnectionPool(network_backend=...)",
    "httpcore.AsyncNetworkStream and httpcore.AsyncNetworkBackend: the methods defined here",
    "httpcore's AsyncHTTP11Connection: asks get_extra_info('is_readable') of an idle connection",
    "asyncio.StreamReader._buffer",
)


@contextlib.contextmanager
def _mapped(timeout: type[Exception], failure: type[Exception]) -> Iterator[None]:
    """asyncio's and the socket's errors as the httpcore exceptions a backend raises."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc) or "timed out") from exc
    except (OSError, EOFError, ssl.SSLError) as exc:
        raise failure(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as an asyncio reader and writer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped(httpcore.ReadTimeout, httpcore.ReadError):
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped(httpcore.WriteTimeout, httpcore.WriteError):
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()

    async def aclose(self) -> None:
        if self._writer.get_extra_info("ssl_object") is not None:
            self._writer.transport.abort()  # as httpcore's anyio backend closes TLS: no wait for the peer's reply
        else:
            self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> AsyncioStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # on an idle connection, bytes or an end waiting mean the server closed it
            return (self._reader.at_eof() or bool(self._reader._buffer)  # read already (a 408's "last word")
                    or self._writer.is_closing() or _readable(self._writer.get_extra_info("socket")))
        name = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername",
                "socket": "socket"}.get(info)
        return self._writer.get_extra_info(name) if name else None


def _readable(sock: socket.socket | None) -> bool:
    """Whether the socket has bytes (or an end) the loop has not read yet: polled without waiting."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections opened with asyncio.open_connection."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[tuple] | None = None) -> AsyncioStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None)
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[tuple] | None = None) -> AsyncioStream:
        with _mapped(httpcore.ConnectTimeout, httpcore.ConnectError):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _apply(writer: asyncio.StreamWriter, options: Iterable[tuple] | None) -> None:
    sock: socket.socket | None = writer.get_extra_info("socket")
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx's transport for direct connections, its connection pool on `AsyncioBackend`."""

    def __init__(self, verify: ssl.SSLContext | bool, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend())
