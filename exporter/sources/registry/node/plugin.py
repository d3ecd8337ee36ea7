"""Running a credential provider plugin: the one place that executes anything.

The plugin is `BIN_DIR/NAME` run with the provider's `args`, the exporter's environment plus the
provider's `env`, the request on stdin, bounded by a timeout. Every way it can go wrong becomes a
`PluginError` whose message names what happened (missing, not executable, exit status, timeout) and
never repeats the plugin's output: its stderr may hold tokens or account details.
"""

from __future__ import annotations

import os
import signal
import subprocess
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
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise PluginError(f"timed out after {timeout:g}s") from None
    if process.returncode != 0:
        how = (f"killed by signal {-process.returncode}" if process.returncode < 0
               else f"exited with status {process.returncode}")
        raise PluginError(f"{how} ({len(stderr)} bytes on stderr, not shown)")
    if len(stdout) > MAX_OUTPUT:
        raise PluginError(f"answered more than {MAX_OUTPUT // 1024} KiB")
    return stdout


def _kill(process: subprocess.Popen) -> None:
    """Kill the plugin and whatever it started (its own session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
