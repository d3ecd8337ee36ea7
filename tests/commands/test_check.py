"""`check` against a real registry: lines, JSON, exit codes, lists, credentials from a docker config."""

import base64
import json

import pytest

from exporter.cli import main
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed")


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    reg = real.Registry(tmp_path_factory.mktemp("check-registry"), "basic")
    reg.digest = reg.push_image("team/app", "1.0")
    yield reg
    reg.stop()


@pytest.fixture
def docker_config(basic_registry, tmp_path):
    path = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:wonderland").decode()
    path.write_text(json.dumps({"auths": {basic_registry.host: {"auth": auth}}}))
    return str(path)


def test_all_available_exits_0_with_digests(basic_registry, docker_config, capsys):
    image = f"{basic_registry.host}/team/app:1.0"
    code = main(["check", image, "--insecure-registry", basic_registry.host, "--docker-config", docker_config])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.split() == ["available", image, basic_registry.digest]
    assert "1 images: 1 available" in err


def test_any_missing_exits_1_and_json_says_why(basic_registry, docker_config, capsys):
    host = basic_registry.host
    images = [f"{host}/team/app:1.0", f"{host}/team/app:2.0"]
    code = main(["check", *images, "--json", "--insecure-registry", host, "--docker-config", docker_config])
    out, err = capsys.readouterr()
    assert code == 1
    assert [(r["image"], r["status"]) for r in json.loads(out)] == [(images[0], "available"), (images[1], "absent")]
    assert "wonderland" not in out + err


def test_without_credentials_is_unauthorized(basic_registry, capsys):
    image = f"{basic_registry.host}/team/app:1.0"
    assert main(["check", image, "--insecure-registry", basic_registry.host]) == 1
    assert capsys.readouterr().out.startswith("unauthorized")


def test_file_lists_of_every_format(basic_registry, docker_config, tmp_path, capsys):
    host = basic_registry.host
    text = tmp_path / "release.txt"
    text.write_text(f"# release 1.2\n{host}/team/app:1.0\n\nNot A Reference!\n")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"images": [f"{host}/team/app:1.0", f"{host}/team/gone:1"],
                                  "units_per_image": {f"{host}/team/gone:1": ["u"]}}))
    code = main(["check", "--file", str(text), "--file", str(report), "--insecure-registry", host,
                 "--docker-config", docker_config])
    out, err = capsys.readouterr()
    assert code == 1
    assert sorted(line.split()[0] for line in out.splitlines()) == ["absent", "available"]  # duplicates once
    assert "release.txt line 4" in err and "2 images: 1 absent, 1 available" in err


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["check"]) == 2
    assert "nothing to check" in capsys.readouterr().err
    assert main(["check", "nginx", "--registry-mirror", "docker.io"]) == 2
    assert "FROM=TO" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"no": "images"}')
    assert main(["check", "--file", str(bad)]) == 1
    assert "without an 'images' list" in capsys.readouterr().err


def test_config_file_registry_section(basic_registry, docker_config, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(f"registries:\n  '{basic_registry.host}': {{insecure: true, concurrency: 2}}\n"
                      f"docker_config: ['{docker_config}']\n")
    image = f"{basic_registry.host}/team/app:1.0"
    assert main(["check", image, "--config", str(config)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("registries:\n  x: {concurency: 2}\n")
    assert main(["check", image, "--config", str(bad)]) == 2
    assert "registries.x.concurency: unknown setting" in capsys.readouterr().err


def test_tagless_reference_checks_latest(basic_registry, docker_config, capsys):
    basic_registry.push_image("team/tagless", "latest")
    image = f"{basic_registry.host}/team/tagless"
    args = ["check", image, "--insecure-registry", basic_registry.host, "--docker-config", docker_config]
    assert main(args) == 0


def test_progress_line_on_a_terminal_only(tmp_path):
    import os
    import pty
    import subprocess
    import sys

    listing = tmp_path / "many.txt"
    listing.write_text("".join(f"127.0.0.1:1/team/app{i}:1\n" for i in range(25)))  # nothing listens on port 1
    main_fd, terminal = pty.openpty()
    command = [sys.executable, "-m", "exporter", "check", "--file", str(listing), "--insecure-registry", "127.0.0.1:1"]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=terminal, timeout=60)
    os.close(terminal)
    on_terminal = os.read(main_fd, 65536).decode()
    os.close(main_fd)
    assert proc.returncode == 1
    assert "checked 25/25" in on_terminal
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "checked 25/25" not in piped.stderr and "25 images" in piped.stderr
