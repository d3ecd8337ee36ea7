"""Canary secrets in every field a user or a cluster can give, and every surface of real processes grepped for
them: serve's /metrics, status page, /report and /readyz, its log in text and JSON at debug level, `check --json`,
`report`, and the one-line errors of refused values. Each canary is a distinct string, so a leak names its field.
"""

import base64
import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import make_pod
from tests.emulator.server import Emulator
from tests.support.serve_process import Serve

UNREACHABLE = "127.0.0.1:9"  # a closed port: unreachable at once, without leaving the machine
CANARIES = {
    "token": "CANARY-TOKEN-a1",  # the API token, in a tokenFile ending in a newline
    "server": "CANARY-SERVER-b2",  # a kubeconfig server URL's password
    "exec": "CANARY-EXEC-c3",  # what a kubeconfig exec plugin prints on stderr
    "image": "CANARY-IMAGE-d4",  # user:pass@host in a pod's image reference
    "secret": "CANARY-SECRET-e5",  # a pull secret's password
    "docker": "CANARY-DOCKER-f6",  # --docker-config's password
    "list_user": "CANARY-LISTPW-g7",  # an expected list URL's password
    "list_query": "CANARY-LISTQ-h8",  # an expected list URL's query token
}


def leaks(text: str) -> list[str]:
    return [field for field, canary in CANARIES.items() if canary in text]


def dockerconfig(host: str, password: str) -> str:
    auth = base64.b64encode(f"robot:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}})


@pytest.fixture
def cluster(tmp_path, httpserver):
    emulator = Emulator(token=CANARIES["token"]).start()
    secret = base64.b64encode(dockerconfig(UNREACHABLE, CANARIES["secret"]).encode()).decode()
    emulator.create({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                     "metadata": {"namespace": "shop", "name": "regcred"}, "data": {".dockerconfigjson": secret}})
    emulator.create(make_pod("web", "shop", f"{UNREACHABLE}/shop/web:1", imagePullSecrets=[{"name": "regcred"}]))
    emulator.create(make_pod("typo", "shop", f"alice:{CANARIES['image']}@{UNREACHABLE}/shop/app:1"))
    (tmp_path / "token").write_text(CANARIES["token"] + "\n")  # as `echo TOKEN > file` writes it
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(f"#!/bin/sh\necho 'error: token {CANARIES['exec']} expired' >&2\nexit 1\n")
    plugin.chmod(0o755)
    server_with_password = emulator.url.replace("http://", f"http://admin:{CANARIES['server']}@")
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "one",
        "clusters": [{"name": "emu", "cluster": {"server": emulator.url}},
                     {"name": "pw", "cluster": {"server": server_with_password}}],
        "users": [{"name": "file", "user": {"tokenFile": str(tmp_path / "token")}},
                  {"name": "exec", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                     "command": str(plugin), "interactiveMode": "Never"}}}],
        "contexts": [{"name": "one", "context": {"cluster": "emu", "user": "file"}},
                     {"name": "plugin", "context": {"cluster": "emu", "user": "exec"}},
                     {"name": "pw", "context": {"cluster": "pw", "user": "exec"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    (tmp_path / "docker.json").write_text(dockerconfig(UNREACHABLE, CANARIES["docker"]))
    httpserver.expect_request("/list.txt").respond_with_data(f"{UNREACHABLE}/shop/web:1\n{UNREACHABLE}/shop/api:2\n")
    list_url = httpserver.url_for("/list.txt").replace("http://", f"http://ci:{CANARIES['list_user']}@")
    yield tmp_path, f"release={list_url}?token={CANARIES['list_query']}"
    emulator.stop()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_canary_on_any_surface_of_a_real_serve(cluster, log_format):
    tmp_path, expected = cluster
    with Serve("--kubeconfig", str(tmp_path / "kubeconfig"), "--context", "one", "--context", "plugin",
               "--context", "pw", "--docker-config", str(tmp_path / "docker.json"), "--expected", expected,
               "--log-level", "debug", "--log-format", log_format) as serve:
        serve.wait(lambda: len(serve.samples("kube_image_missing")) >= 2, "cluster one's images checked")
        serve.wait(lambda: serve.value("kube_image_expected_list_up", list="release") == 1, "the expected list")
        serve.wait(lambda: "exec: process returned" in serve.log() and "pw: GET /api" in serve.log(),
                   "the failing contexts tried")
        surfaces = {path: serve.get(path)[1] for path in ("/metrics", "/", "/report", "/readyz")}
        surfaces["log"] = serve.log()
    assert 'reason="invalid_reference"' in surfaces["/metrics"]  # the canary image is there, redacted
    assert "exec: process returned 1" in surfaces["log"]  # the plugin failed, and said so
    assert {name: leaks(text) for name, text in surfaces.items() if leaks(text)} == {}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=60)


def test_no_canary_in_check_report_or_an_error_line(tmp_path):
    image = f"alice:{CANARIES['image']}@{UNREACHABLE}/shop/app:1"
    (tmp_path / "docker.json").write_text(dockerconfig(UNREACHABLE, CANARIES["docker"]))
    checked = run("check", "--json", image, f"{UNREACHABLE}/shop/web:1", "--docker-config", str(tmp_path / "docker.json"),
                  "--log-level", "debug")
    assert checked.returncode == 1 and json.loads(checked.stdout)[0]["status"] == "invalid_reference"
    pods = {"apiVersion": "v1", "kind": "List", "items": [make_pod("typo", "shop", image)]}
    (tmp_path / "pods.json").write_text(json.dumps(pods))
    reported = run("report", "--from-file", str(tmp_path / "pods.json"))
    refused = [
        run("serve", "--expected", f"release=ftp://u:{CANARIES['list_user']}@h.example/x"),
        run("check", "--registry-mirror", f"docker.io=https://m.example/?token={CANARIES['list_query']}", "nginx"),
        run("check", "--registry-mirror", f"docker.io=robot:{CANARIES['docker']}@m.example", "nginx"),
    ]
    assert [r.returncode for r in refused] == [2, 2, 2]
    outputs = [checked.stdout, checked.stderr, reported.stdout, reported.stderr] + [r.stderr for r in refused]
    assert [leaks(text) for text in outputs if leaks(text)] == []
