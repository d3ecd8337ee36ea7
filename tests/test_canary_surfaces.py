"""No secret a user gives comes out anywhere: canaries planted in every field a user can fill are looked for on
every surface of real processes (serve's /metrics, /, /report, /readyz; `check --json`; `report`; the one-line
errors; the logs in text and in JSON, at debug level, tracebacks included).

Each canary is a distinct string, so a leak names the field it came from. The fields: an image reference whose
registry is `user:pass@host`, expected-list URLs with user info and with `?token=`, a mirror with user info or a
token (refused), an `ftp://` expected list with user info (refused), a kubeconfig server URL with user info, a
kubeconfig exec plugin whose stderr carries credentials and which fails, a docker config's `auth` and
`password`, a pull Secret's `auth`, and the cluster's token read from a `tokenFile` ending in a newline.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from exporter.cli import main
from tests.conftest import make_pod
from tests.emulator.server import Emulator
from tests.support.serve_process import Serve

TOKEN = "CANARY-TOKENFILE-7f3a"  # the cluster's real token, read from a tokenFile
CANARIES = {
    "image": "CANARY-IMAGE-PW-1c9e",
    "expected_user": "CANARY-EXPECTED-USERINFO-2b8d",
    "expected_token": "CANARY-EXPECTED-TOKEN-3a7c",
    "expected_missing": "CANARY-EXPECTED-MISSING-4f6b",
    "expected_file": "CANARY-EXPECTED-FILE-4e6c",
    "listed_image": "CANARY-LISTED-IMAGE-5e5a",
    "kube_server": "CANARY-KUBE-SERVER-6d49",
    "exec_url": "CANARY-EXEC-URL-7c38",
    "exec_query": "CANARY-EXEC-QUERY-8b27",
    "exec_bare": "CANARY-EXEC-BARE-9a16",
    "docker_auth": "CANARY-DOCKER-AUTH-a905",
    "docker_password": "CANARY-DOCKER-PASSWORD-b8f4",
    "pull_secret": "CANARY-PULL-SECRET-c7e3",
    "tokenfile": TOKEN,
}
CLOSED = "127.0.0.1:9"  # a closed port: every registry here is unreachable at once, without leaving the machine


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(canary: str) -> list[str]:
    """The canary as written, and base64-encoded as a docker config carries it."""
    return [canary, b64(f"user:{canary}"), b64(canary)]


def leaks(surfaces: dict[str, str], canaries=CANARIES) -> list[str]:
    """`surface: canary name: the line` for every line of every surface that carries a canary in any form."""
    found = []
    for surface, text in surfaces.items():
        for line in text.splitlines():
            for name, canary in canaries.items():
                if any(form in line for form in forms(canary)):
                    found.append(f"{surface}: {name}: {line[:300]}")
    return found


@pytest.fixture
def cluster():
    emu = Emulator(token=TOKEN).start()
    yield emu
    emu.stop()


@pytest.fixture
def planted(cluster, tmp_path, httpserver):
    """Every file and URL a user gives, each carrying its canary; returns the options for serve/report/check."""
    httpserver.expect_request("/list.txt").respond_with_data(
        f"{CLOSED}/shop/web:1\nuser:{CANARIES['listed_image']}@{CLOSED}/shop/listed:1\n")
    list_url = f"http://127.0.0.1:{httpserver.port}/list.txt"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    plugin = tmp_path / "plugin.py"
    plugin.write_text(textwrap.dedent(f"""\
        import sys
        sys.stderr.write("cannot log in to https://sso:{CANARIES['exec_url']}@sso.example/login\\n"
                         "retry with https://sso.example/token?code={CANARIES['exec_query']}\\n"
                         "or as admin:{CANARIES['exec_bare']}@sso.example\\n")
        sys.exit(3)
        """))
    server = cluster.url
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "one",
        "clusters": [{"name": "emu", "cluster": {"server": server}},
                     {"name": "userinfo", "cluster": {
                         "server": server.replace("http://", f"http://admin:{CANARIES['kube_server']}@")}}],
        "users": [{"name": "file", "user": {"tokenFile": str(token_file)}},
                  {"name": "exec", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                     "command": sys.executable, "args": [str(plugin)],
                                                     "interactiveMode": "Never"}}}],
        "contexts": [{"name": "one", "context": {"cluster": "emu", "user": "file"}},
                     {"name": "userinfo", "context": {"cluster": "userinfo", "user": "file"}},
                     {"name": "exec", "context": {"cluster": "emu", "user": "exec"}}],
    }))
    docker_config = tmp_path / "config.json"
    docker_config.write_text(json.dumps({"auths": {
        CLOSED: {"auth": b64(f"user:{CANARIES['docker_auth']}")},
        "127.0.0.1:10": {"username": "user", "password": CANARIES["docker_password"]}}}))
    pull_secret = json.dumps({"auths": {CLOSED: {"auth": b64(f"user:{CANARIES['pull_secret']}")}}})
    cluster.create({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                    "metadata": {"namespace": "shop", "name": "pull"}, "data": {".dockerconfigjson": b64(pull_secret)}})
    cluster.create(make_pod("web", "shop", f"{CLOSED}/shop/web:1", imagePullSecrets=[{"name": "pull"}]))
    cluster.create(make_pod("creds", "shop", f"user:{CANARIES['image']}@{CLOSED}/shop/creds:1"))
    expected = [f"{list_url.replace('http://', 'http://u:' + CANARIES['expected_user'] + '@')}",
                f"tokened={list_url}?token={CANARIES['expected_token']}",
                f"missing=http://127.0.0.1:{httpserver.port}/nothing?token={CANARIES['expected_missing']}",
                f"user:{CANARIES['expected_file']}@lists.example/list.txt"]  # a path that reads as user:pass@host
    return {"kubeconfig": str(kubeconfig), "docker_config": str(docker_config), "expected": expected}


def serve_args(planted: dict) -> list[str]:
    args = ["--kubeconfig", planted["kubeconfig"], "--context", "one", "--context", "userinfo", "--context", "exec",
            "--docker-config", planted["docker_config"], "--log-level", "debug"]
    for source in planted["expected"]:
        args += ["--expected", source]
    return args


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_canary_on_any_surface_of_serve(planted, fmt):
    surfaces = {}
    with Serve(*serve_args(planted), "--log-format", fmt) as serve:
        serve.wait(lambda: "creds" in serve.workloads(), "the pod with a password in its image in the inventory")
        serve.wait(lambda: serve.value("kube_image_expected_list_up", list="missing") == 0
                   and serve.value("kube_image_expected_list_up", list="tokened") == 1,
                   "the expected lists read, the missing one failed")
        serve.wait(lambda: "exec: process returned" in serve.log(), "the exec plugin failed")
        for path in ("/metrics", "/", "/report", "/readyz", "/healthz"):
            status, surfaces[path] = serve.get(path)
            assert status is not None, path
        surfaces["log"] = serve.log()
    assert not leaks(surfaces), "\n".join(leaks(surfaces))
    assert "user:" not in surfaces["/metrics"]  # the image's user info is gone too, not only its password
    # the failure is told, the plugin's stderr is not (a bare token has no shape a pattern could find)
    assert "exec: process returned 3 (its stderr is not shown" in surfaces["log"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_canary_in_report_or_check(planted, fmt):
    logging = ["--log-level", "debug", "--log-format", fmt]
    surfaces = {}
    report = run("report", "--kubeconfig", planted["kubeconfig"], "--context", "one", "--check-registry",
                 "--docker-config", planted["docker_config"], *logging)
    assert report.returncode == 1 and '"images"' in report.stdout, report.stderr  # 1: an image is not available
    surfaces["report"], surfaces["report's log"] = report.stdout, report.stderr
    for context in ("exec", "userinfo"):
        failed = run("report", "--kubeconfig", planted["kubeconfig"], "--context", context, *logging)
        surfaces[f"report --context {context}"] = failed.stdout + failed.stderr
    check = run("check", "--json", "--docker-config", planted["docker_config"], *logging,
                f"user:{CANARIES['image']}@{CLOSED}/shop/creds:1", f"{CLOSED}/shop/web:1", "127.0.0.1:10/x:1")
    assert check.stdout.strip(), check.stderr
    surfaces["check --json"], surfaces["check's log"] = check.stdout, check.stderr
    assert not leaks(surfaces), "\n".join(leaks(surfaces))


SERVE = ["serve", "--kubeconfig", "KUBECONFIG"]  # a kubeconfig whose cluster nothing serves: the option fails first
REFUSED = [
    ["check", "busybox:1.36", "--registry-mirror", "docker.io=user:CANARY-MIRROR-USER@mirror.example"],
    [*SERVE, "--registry-mirror", "docker.io=user:CANARY-MIRROR-USER@mirror.example"],
    ["check", "busybox:1.36", "--registry-mirror", "docker.io=https://u:CANARY-MIRROR-USER@mirror.example/v2"],
    [*SERVE, "--registry-mirror", "docker.io=mirror.example/v2?token=CANARY-MIRROR-TOKEN"],
    ["check", "-f", "ftp://u:CANARY-FTP@ftp.example/list.txt"],
    [*SERVE, "--expected", "ftp://u:CANARY-FTP@ftp.example/list.txt"],
    ["check", "-f", "ftp://ftp.example/list.txt?token=CANARY-FTP"],
    [*SERVE, "--expected", "ftp://ftp.example/list.txt?token=CANARY-FTP"],
    ["check", "-f", "user:CANARY-BARE@lists.example/list.txt"],  # a file that does not exist (`serve` waits for it)
    ["check", "x:1", "--log-level", "https://u:CANARY-CHOICE@h"],  # argparse quotes an invalid choice back
    [*SERVE, "--interval", "u:CANARY-DURATION@h"],  # the settings model quotes an invalid value back
    ["check", "x:1", "--timeout", "https://h/?token=CANARY-DURATION"],
    [*SERVE, "--cache-url", "redis://:CANARY-CACHE@127.0.0.1:9/x"],
]


def refused_args(command: list[str], fmt: str, tmp_path) -> list[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(Emulator().kubeconfig()))
    return [*[str(kubeconfig) if arg == "KUBECONFIG" else arg for arg in command], "--log-format", fmt]


def assert_one_line_without_canary(code: int, out: str, err: str) -> None:
    assert code == 2, err
    assert "CANARY" not in out + err, err
    assert err.strip() and len(err.strip().splitlines()) <= 2, err


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", REFUSED)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_refused_option_is_told_in_one_line_without_its_secret(command, fmt, tmp_path, capsys, monkeypatch):
    """Every refused option through the command's entry point in this process (its logging set up as a process's)."""
    for key in [k for k in os.environ if k.upper().startswith("KUBE_IMAGE_EXPORTER_")]:
        monkeypatch.delenv(key)
    code = main(refused_args(command, fmt, tmp_path))
    captured = capsys.readouterr()
    assert_one_line_without_canary(code, captured.out, captured.err)


@pytest.mark.parametrize("command", [REFUSED[0], REFUSED[10]])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_refused_option_is_told_in_one_line_without_its_secret_by_a_real_process(command, fmt, tmp_path):
    """What the interpreter adds (an unhandled error's traceback, a warning at exit), for check and serve."""
    done = run(*refused_args(command, fmt, tmp_path))
    assert_one_line_without_canary(done.returncode, done.stdout, done.stderr)
