"""Every file a user names, given as a FIFO, a device, binary data or a document nested 100,000 deep, through the
command line: one line on stderr naming the file and why, exit 2, never a hang (a timeout fails the test) and never
a traceback. Every option through the command's entry point in this process; each kind of file through a real
process too (what the interpreter adds: an unhandled error's traceback, a read blocking at exit)."""

import os
import subprocess
import sys

import pytest

from exporter.cli import main

IMAGE = "127.0.0.1:1/never/reached:1"  # reached only when a bad file was let through: then exit 1, not 2
DEEP_JSON = b"{\"a\": " * 100_000 + b"1" + b"}" * 100_000
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_TOML = b"a = " + DEEP_ARRAY
BINARY = bytes(range(256)) * 4
KINDS = ("fifo", "device", "binary", "deep")


def make(path, kind, deep=DEEP_JSON):
    """`path` as a FIFO with no writer, a link to /dev/zero, binary data or a deep document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(BINARY if kind == "binary" else deep)
    return path


# option -> (how the command line names the file, the file that is read, what a deep file is)
def cases(tmp):
    good_report = tmp / "good.json"
    good_report.write_text('{"images": ["a:1"]}')
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    return {
        "--config (serve)": (lambda f: ["serve", "--listen", "127.0.0.1:0", "--config", str(f)], tmp / "c.yaml", DEEP_JSON),
        "--config (check)": (lambda f: ["check", IMAGE, "--config", str(f)], tmp / "c.yaml", DEEP_JSON),
        "--kubeconfig": (lambda f: ["report", "--kubeconfig", str(f)], tmp / "kubeconfig", DEEP_JSON),
        "--docker-config": (lambda f: ["check", IMAGE, "--docker-config", str(f)], tmp / "config.json", DEEP_JSON),
        "--cache-password-file": (lambda f: ["check", IMAGE, "--cache-url", "redis://127.0.0.1:1/0",
                                             "--cache-password-file", str(f)], tmp / "password", None),
        "--ca-file": (lambda f: ["check", IMAGE, "--ca-file", str(f)], tmp / "ca.pem", None),
        "--registries-conf": (lambda f: ["check", IMAGE, "--registries-conf", str(f)], tmp / "registries.conf",
                              DEEP_TOML),
        "--image-credential-provider-config": (
            lambda f: ["check", IMAGE, "--image-credential-provider-config", str(f),
                       "--image-credential-provider-bin-dir", str(bin_dir)], tmp / "providers.yaml", DEEP_JSON),
        "--kubelet-root-dir": (lambda f: ["check", IMAGE, "--kubelet-root-dir", str(f.parent)],
                               tmp / "kubelet" / "config.json", DEEP_JSON),
        "--containerd-hosts-dir": (lambda f: ["check", IMAGE, "--containerd-hosts-dir", str(f.parent.parent)],
                                   tmp / "certs.d" / "127.0.0.1:1" / "hosts.toml", DEEP_TOML),
        "report --from-file": (lambda f: ["report", "--from-file", str(f)], tmp / "pods.json", DEEP_JSON),
        "merge -i": (lambda f: ["merge", "-i", str(good_report), str(f)], tmp / "report.json", DEEP_JSON),
        "check --file": (lambda f: ["check", "--file", str(f)], tmp / "list.json", DEEP_JSON),
    }


OPTIONS = ["--config (serve)", "--config (check)", "--kubeconfig", "--docker-config", "--cache-password-file",
           "--ca-file", "--registries-conf", "--image-credential-provider-config", "--kubelet-root-dir",
           "--containerd-hosts-dir", "report --from-file", "merge -i", "check --file"]
WHY = {"fifo": "not a regular file", "device": "not a regular file", "binary": "not text",
       "deep": "nested deeper than 100 levels"}


FLAT = {"--cache-password-file", "--ca-file"}  # a password, PEM: no nested document to make deep


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("option", "kind"), [(o, k) for o in OPTIONS for k in KINDS if not (k == "deep" and o in FLAT)])
def test_a_bad_file_is_one_line_and_exit_2(tmp_path, option, kind, capsys, monkeypatch):
    args, path, deep = cases(tmp_path)[option]
    make(path, kind, deep)
    for key in [k for k in os.environ if k.upper().startswith("KUBE_IMAGE_EXPORTER_")]:
        monkeypatch.delenv(key)
    code = main(args(path))
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and WHY[kind] in err, err


@pytest.mark.parametrize(("option", "kind"), [("--docker-config", "fifo"), ("--kubeconfig", "device"),
                                              ("--config (serve)", "binary"), ("report --from-file", "deep")])
def test_a_bad_file_is_one_line_and_exit_2_from_a_real_process(tmp_path, option, kind):
    args, path, deep = cases(tmp_path)[option]
    make(path, kind, deep)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KUBE_IMAGE_EXPORTER_")}
    result = subprocess.run([sys.executable, "-m", "exporter", *args(path)], capture_output=True, text=True,
                            timeout=60, env=env, stdin=subprocess.DEVNULL)
    err = result.stderr
    assert result.returncode == 2, (result.returncode, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and WHY[kind] in err, err
