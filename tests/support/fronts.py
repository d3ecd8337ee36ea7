"""Fronts for the real registry, started by tests and the benchmark on 127.0.0.1: a slow link, a rate limit.

- `DelayProxy`: a TCP proxy that holds each chunk the client sends for a fixed delay before passing it on, so
  every request pays that delay once (a registry across a WAN link).
- `RateFront`: an HTTP/1.1 front that lets through a token bucket's worth of requests (`rate` a second, bursts
  of `burst`) and answers the rest `429` with `Retry-After`, as public registries do. It records what a
  registry would see: the arrival time of every request, the most in flight at once, and how many it refused.

Both run an asyncio loop in a daemon thread and stop with `stop()`. The HTTP front speaks just what registry
clients send: requests without bodies or with a Content-Length, responses with a Content-Length.
"""

from __future__ import annotations

import asyncio
import threading
import time


class _LoopThread:
    """An asyncio server in its own thread; `start` returns once it listens."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def _start(self, handler) -> None:
        self._thread.start()

        async def listen():
            return await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024)

        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, asyncio.CancelledError):
        pass


class DelayProxy(_LoopThread):
    """Forwards 127.0.0.1:port to `upstream` (HOST:PORT), each client chunk held `delay` seconds first."""

    def __init__(self, upstream: str, delay: float) -> None:
        super().__init__()
        self.upstream_host, _, port = upstream.rpartition(":")
        self.upstream_port = int(port)
        self.delay = delay
        self._start(self._handle)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except (OSError, asyncio.CancelledError):
            await _close(writer)
            return

        async def pump(source, sink, delay):
            try:
                while chunk := await source.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    sink.write(chunk)
                    await sink.drain()
            except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass  # a closed side, or the front stopping
            finally:
                await _close(sink)

        await asyncio.gather(pump(reader, up_writer, self.delay), pump(up_reader, writer, 0))


class RateFront(_LoopThread):
    """Lets `rate` requests a second through to `upstream` (bursts of `burst`); refuses the rest with 429."""

    def __init__(self, upstream: str, rate: float, burst: float | None = None, retry_after: str = "1") -> None:
        super().__init__()
        self.upstream_host, _, port = upstream.rpartition(":")
        self.upstream_port = int(port)
        self.rate = rate
        self.burst = float(burst if burst is not None else rate)
        self.retry_after = retry_after
        self._tokens = self.burst
        self._last = time.monotonic()
        self.arrivals: list[float] = []  # monotonic time of every request, let through or not
        self.refused = 0
        self.refusals: list[float] = []  # monotonic time of each 429
        self.passed = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._start(self._handle)

    def lift(self, rate: float, burst: float | None = None) -> None:
        """Change the limit (a registry that lifts or tightens it while clients run)."""
        self.rate = rate
        self.burst = float(burst if burst is not None else rate)

    def _admit(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def most_in_any_second(self, window: float = 1.0) -> int:
        """The most requests that arrived within any `window` seconds."""
        times = sorted(self.arrivals)
        most, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            most = max(most, end - start + 1)
        return most

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, asyncio.CancelledError):
                    return
                body = await reader.readexactly(_content_length(head))
                self.arrivals.append(time.monotonic())
                if not self._admit():
                    self.refused += 1
                    self.refusals.append(self.arrivals[-1])
                    writer.write(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: " + self.retry_after.encode()
                                 + b"\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                self.passed += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    if upstream is None:
                        upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
                    up_reader, up_writer = upstream
                    up_writer.write(head + body)
                    await up_writer.drain()
                    answer = await up_reader.readuntil(b"\r\n\r\n")
                    if not head.startswith(b"HEAD "):
                        answer += await up_reader.readexactly(_content_length(answer))
                    writer.write(answer)
                    await writer.drain()
                finally:
                    self.in_flight -= 1
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a closed side, or the front stopping
        finally:
            if upstream is not None:
                await _close(upstream[1])
            await _close(writer)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked bodies are not spoken here")
    return 0
