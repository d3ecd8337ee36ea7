"""Real components started by the tests on 127.0.0.1 (registry, Prometheus) and what they share."""

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def eventually(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` passes (no blind sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def assert_promtool_clean(exposition: str | bytes) -> None:
    """`promtool check metrics` finds nothing to say about this exposition (skipped where promtool is absent)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (scripts/setup installs the prometheus package)")
    data = exposition.encode() if isinstance(exposition, str) else exposition
    result = subprocess.run(["promtool", "check", "metrics"], input=data, capture_output=True, timeout=60)
    output = (result.stdout + result.stderr).decode().strip()
    assert result.returncode == 0 and output == "", output


def http_get(url: str, timeout: float = 5.0) -> tuple[int | None, str]:
    """(status, body) of a GET; an HTTP error is a status too, and no answer at all is (None, "")."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None, ""
