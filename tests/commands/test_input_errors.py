"""Broken input to any command: exit 2 and at most two short lines saying what and where, never a traceback."""

import subprocess
import sys

import pytest

from exporter.cli import main


def one_short_error(err: str) -> str:
    assert 1 <= len(err.splitlines()) <= 2 and "Traceback" not in err and "usage:" not in err, err
    return err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"apiVersion: v1\ncontexts: [\n  - a: b\n", "kubeconfig {path}:3:3: not valid YAML (expected the node content"),
        (bytes(range(256)) * 4, "kubeconfig {path}: not text"),
        (b"- a\n- b\n", "kubeconfig {path}: not a kubeconfig (a list, not a mapping)"),
        (b"contexts: [{context: 7, name: x}]\ncurrent-context: x\n", "contexts[0].context is a int, not a mapping"),
        (b"contexts: [{context: 7}]\n", "contexts[0].name is missing or not a string"),
        (b"contexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: 5\ncurrent-context: x\n",
         "clusters is a int, not a list"),
        (b"contexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: 7}}]\n"
         b"current-context: x\n", "clusters[0].cluster.server is a int, not a string"),
        (b"contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n", "kubeconfig {path} context 'x'"),
    ],
)
def test_broken_kubeconfigs(tmp_path, capsys, content, message):
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    assert main(["report", "--kubeconfig", str(path)]) == 2
    assert message.format(path=path) in one_short_error(capsys.readouterr().err)


def test_serve_refuses_what_check_refuses(tmp_path):
    """One settings model: serve exits 2 on the values check refuses, before reaching any cluster."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("contexts: [{context: 7}]\n")
    broken_docker = tmp_path / "docker.json"
    broken_docker.write_text("{")
    cases = [
        (["--ca-file", "/missing.pem"], "ca_file: file /missing.pem does not exist"),
        (["--concurrency", "0"], "concurrency: Input should be greater than or equal to 1"),
        (["--interval", "30x"], "interval: expected a duration like 500ms"),
        (["--docker-config", str(broken_docker)], "not JSON"),
        (["--kubeconfig", str(kubeconfig)], "contexts[0].name is missing"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--listen", "127.0.0.1:0", *args],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert message in one_short_error(result.stderr), args


def test_serve_accepts_skip_verify_and_durations_from_flags(tmp_path):
    """Accepted values get as far as the kubeconfig (which is the error here), not refused as flags."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "serve", "--skip-verify", "registry.example.com", "--interval", "1h30m",
         "--watch-down-threshold", "500ms", "--kubeconfig", str(tmp_path / "absent"), "--log-level", "error"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "cannot read kubeconfig" in one_short_error(result.stderr)


def test_an_unwritable_output_is_a_usage_error(capsys):
    assert main(["report", "--from-file", "examples/cluster.json", "-o", "/nonexistent-dir/r.json"]) == 2
    assert "cannot write /nonexistent-dir/r.json" in one_short_error(capsys.readouterr().err)


def test_help_is_not_an_error(capsys):
    assert main(["check", "--help"]) == 0
    assert "--skip-verify" in capsys.readouterr().out
