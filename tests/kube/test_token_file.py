"""A kubeconfig `tokenFile` written by `echo TOKEN > file` ends with a newline: the token is read as kubectl
reads it (client-go trims the file's white space), and the emulator accepts nothing but the exact token."""

import yaml

from tests.conftest import make_pod
from tests.support.serve_process import Serve


def kubeconfig_with_token_file(emulator, tmp_path, content: str):
    token_file = tmp_path / "token"
    token_file.write_text(content)
    config = emulator.kubeconfig({"one": "default"})
    config["users"][0]["user"] = {"tokenFile": str(token_file)}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_serve_is_ready_with_a_token_file_ending_in_a_newline(emulator, tmp_path):
    emulator.create(make_pod("web", "shop", "127.0.0.1:9/shop/web:1"))
    path = kubeconfig_with_token_file(emulator, tmp_path, "test-token\n")
    with Serve("--kubeconfig", str(path)) as serve:
        serve.wait(lambda: serve.get("/readyz")[0] == 200, "ready")
        assert serve.workloads() == {"web"}
        assert serve.value("kube_image_watch_errors_total", kind="Pod") == 0
        assert "test-token" not in serve.log()


def test_a_wrong_token_is_refused_and_never_written_to_the_log(emulator, tmp_path):
    emulator.create(make_pod("web", "shop", "127.0.0.1:9/shop/web:1"))
    path = kubeconfig_with_token_file(emulator, tmp_path, "test-token-but-not-quite\n")
    with Serve("--kubeconfig", str(path), "--watch-down-threshold", "1s") as serve:
        serve.wait(lambda: (serve.value("kube_image_watch_errors_total", kind="Pod") or 0) >= 1, "errors counted")
        assert serve.value("kube_image_watch_up", kind="Pod") == 0
        # why it is not ready: the failing list/watch, not only "first round not done"
        serve.wait(lambda: "list/watch failing for" in serve.get("/readyz")[1], "the reason in /readyz")
        status, reason = serve.get("/readyz")
        assert status == 503 and "401 Unauthorized" in reason
        assert "401 Unauthorized" in serve.log() and "test-token" not in serve.log()
