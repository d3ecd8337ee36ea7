"""`serve` as a process: serves metrics from the emulated cluster and stops cleanly on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import make_pod
from tests.support import free_port, http_get


def test_serve_process_metrics_and_sigterm(emulator, kubeconfig, tmp_path):
    emulator.create(make_pod("web", "shop", "registry.invalid.example/Shop/web:1"))
    port = free_port()
    env = {**os.environ, "KUBE_IMAGE_EXPORTER_LOG_FORMAT": "json"}
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                             "--listen", f"127.0.0.1:{port}", "--interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            if "invalid_reference" in body and http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200:
                break
            time.sleep(0.2)
        assert 'kube_image_missing{cluster="one",namespace="shop"' in body
        assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 8
    finally:
        if proc.poll() is None:
            proc.kill()
        _, stderr = proc.communicate()
    records = [json.loads(line) for line in stderr.decode().splitlines()]  # --log-format json: every line
    serving = next(r for r in records if r["message"].startswith("serving on"))
    assert serving["level"] == "INFO" and serving["logger"] == "exporter.commands.serve" and "time" in serving


def test_serve_bad_config_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--interval", "-3",
                             "--kubeconfig", str(tmp_path / "none")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "interval: expected a duration from 1s to 24h" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_serve_bad_expected_source_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--expected", "configmap:only-a-name",
                             "--kubeconfig", str(tmp_path / "none")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "configmap:NAMESPACE/NAME" in result.stderr and "Traceback" not in result.stderr


def test_serve_on_an_address_in_use_is_a_usage_error(emulator, kubeconfig):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                                 "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"kube-image-exporter serve: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_senseless_durations_and_rates_are_refused_from_the_command_line(tmp_path):
    never = str(tmp_path / "none")  # a kubeconfig that is not read: the value is refused before
    for args, message in [(["serve", "--interval", "1ns", "--kubeconfig", never],
                           "interval: expected a duration from 1s to 24h, got '1ns'"),
                          (["check", "x:1", "--rate", "1e-300"], "rate: expected a rate from 0.01 to 10000 per second"),
                          (["check", "x:1", "--timeout", "10ms"], "--timeout: expected a duration from 100ms to 24h"),
                          (["check", "x:1", "--timeout", "25h"], "--timeout: expected a duration from 100ms to 24h")]:
        result = subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, \
            (args, result.stderr)
