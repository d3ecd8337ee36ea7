"""Running a credential provider plugin: the one place that executes anything.

The plugin is `BIN_DIR/NAME` run with the provider's `args`, the exporter's environment plus the
provider's `env`, the request on stdin, bounded by a timeout. Every way it can go wrong becomes a
`PluginError` whose message names what happened (missing, not executable, exit status, timeout) and
never repeats the plugin's output: its stderr may hold tokens or account details.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

MAX_OUTPUT = 1024 * 1024  # an answer is a few KiB; more is garbage


class PluginError(Exception):
    """A plugin that gave no usable answer; the message is safe to log."""


def run(executable: Path, args: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout: float) -> bytes:
    """The plugin's stdout; PluginError when it is missing, fails, hangs or answers too much."""
    if not executable.is_file():
        raise PluginError(f"not found at {executable}")
    if not os.access(executable, os.X_OK):
        raise PluginError(f"{executable} is not executable")
    try:
        process = subprocess.Popen([str(executable), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=dict(env), start_new_session=True)
    except OSError as exc:
        raise PluginError(f"cannot run {executable}: {exc.strerror}") from None
    stdout, stderr_bytes = _exchange(process, stdin, timeout)
    if process.returncode != 0:
        how = (f"killed by signal {-process.returncode}" if process.returncode < 0
               else f"exited with status {process.returncode}")
        raise PluginError(f"{how} ({stderr_bytes} bytes on stderr, not shown)")
    return stdout


def _exchange(process: subprocess.Popen, stdin: bytes, timeout: float) -> tuple[bytes, int]:
    """(stdout, how many bytes came on stderr): the request written, the answer read as it comes, never more than
    `MAX_OUTPUT` of it kept and stderr only counted, all within `timeout`. A plugin past either bound is killed:
    one that writes gigabytes costs a megabyte, not the exporter's memory."""
    deadline = time.monotonic() + timeout
    try:
        process.stdin.write(stdin)  # a request is a few hundred bytes: the pipe takes it whole
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass  # a plugin that does not read its request answers or fails on its own
    out, err = bytearray(), 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "out")
        selector.register(process.stderr, selectors.EVENT_READ, "err")
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(process)
                raise PluginError(f"timed out after {timeout:g}s")
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data == "err":
                    err += len(chunk)
                else:
                    out += chunk
                    if len(out) > MAX_OUTPUT:
                        _kill(process)
                        raise PluginError(f"answered more than {MAX_OUTPUT // 1024} KiB")
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # closed its output but goes on running
        _kill(process)
        raise PluginError(f"timed out after {timeout:g}s") from None
    process.stdout.close()
    process.stderr.close()
    return bytes(out), err


def _kill(process: subprocess.Popen) -> None:
    """Kill the plugin and whatever it started (its own session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    process.wait()
