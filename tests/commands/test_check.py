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
    rows = [line.split(None, 2) for line in out.splitlines()]
    assert sorted(row[0] for row in rows) == ["absent", "available", "invalid_reference"]  # duplicates once
    [typo] = [row for row in rows if row[0] == "invalid_reference"]
    assert typo[1:] == ["Not", "A Reference!  " + typo[2].split("  ", 1)[1]] and "release.txt line 4" in typo[2]
    assert "3 images: 2 missing (1 absent, 1 invalid_reference), 1 available" in err


def test_a_typo_in_a_list_fails_the_gate_in_json_too(basic_registry, docker_config, tmp_path, capsys):
    host = basic_registry.host
    listing = tmp_path / "release.txt"
    listing.write_text(f"{host}/team/app:1.0\n{host}/Team/App:1.0\n")
    code = main(["check", "--json", "--file", str(listing), "--insecure-registry", host, "--docker-config",
                 docker_config])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(r["image"], r["status"]) for r in rows] == [(f"{host}/team/app:1.0", "available"),
                                                         (f"{host}/Team/App:1.0", "invalid_reference")]
    assert "release.txt line 2" in rows[1]["detail"]
    listing.write_text(f"{host}/team/app:1.0\n# only comments and good lines\n")
    assert main(["check", "--file", str(listing), "--insecure-registry", host, "--docker-config", docker_config]) == 0


def test_a_verdict_through_a_mirror_names_the_endpoint(basic_registry, tmp_path, capsys):
    mirror, air_gapped = basic_registry.host, "127.0.0.1:1"  # nothing listens on port 1
    auth = base64.b64encode(b"alice:wonderland").decode()
    docker_config = tmp_path / "config.json"
    docker_config.write_text(json.dumps({"auths": {host: {"auth": auth} for host in (mirror, air_gapped)}}))
    image = f"{air_gapped}/team/app:1.0"
    args = ["check", image, "--registry-mirror", f"{air_gapped}={mirror}", "--insecure-registry", mirror,
            "--insecure-registry", air_gapped, "--docker-config", str(docker_config)]
    assert main(args) == 0
    assert capsys.readouterr().out.split() == ["available", image, "via", mirror, basic_registry.digest]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["endpoint"] == mirror


def _one_short_error(capsys) -> str:
    err = capsys.readouterr().err
    assert 1 <= len(err.splitlines()) <= 2 and "Traceback" not in err and "usage:" not in err, err
    return err


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "nothing to check"),
        (["nginx", "--registry-mirror", "docker.io"], "FROM=TO"),
        (["nginx", "--concurrency", "-3"], "concurrency: Input should be greater than or equal to 1"),
        (["nginx", "--concurrency", "0"], "concurrency: Input should be greater than or equal to 1"),
        (["nginx", "--concurrency", "many"], "concurrency: Input should be a valid integer"),
        (["nginx", "--rate", "-1"], "rate: expected a rate from 0.01 to 10000 per second"),
        (["nginx", "--ca-file", "/missing.pem"], "ca_file: file /missing.pem does not exist"),
        (["nginx", "--docker-config", "/missing.json"], "docker config /missing.json"),
        (["nginx", "--bogus"], "unrecognized arguments: --bogus"),
        (["nginx", "--log-level", "loud"], "argument --log-level: invalid choice"),
        (["nginx", "--platform", "arm64"], "--platform: 'arm64' is not a platform: write os/architecture"),
        (["nginx", "--platform", "linux/amd64,linux"], "--platform: 'linux' is not a platform"),
    ],
)
def test_usage_errors_exit_2_in_two_lines_at_most(args, message, capsys):
    assert main(["check", *args]) == 2
    assert message in _one_short_error(capsys)


def test_unusable_list_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"no": "images"}')
    assert main(["check", "--file", str(bad)]) == 2
    assert "without an 'images' list" in _one_short_error(capsys)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["check", "--file", str(binary)]) == 2
    assert "not text" in _one_short_error(capsys)
    assert main(["check", "--file", str(tmp_path / "absent.txt")]) == 2
    assert "cannot read" in _one_short_error(capsys)


def test_a_list_over_the_cap_is_refused_unread(tmp_path, capsys):
    from exporter.common.files import MAX_LIST_BYTES

    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_LIST_BYTES + 1)  # sparse: costs no disk
    assert main(["check", "--file", str(huge)]) == 2
    assert "larger than 16 MiB" in _one_short_error(capsys)


def test_broken_docker_config_exits_2(tmp_path, capsys):
    broken = tmp_path / "config.json"
    broken.write_text("{")
    assert main(["check", "nginx", "--docker-config", str(broken)]) == 2
    assert f"docker config {broken}:1:2: not JSON" in _one_short_error(capsys)


def test_global_options_before_or_after_the_command(basic_registry, docker_config, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(f"insecure_registries: ['{basic_registry.host}']\ndocker_config: ['{docker_config}']\n")
    image = f"{basic_registry.host}/team/app:1.0"
    assert main(["--log-level", "debug", "--config", str(config), "check", image]) == 0
    assert main(["check", image, "--log-level", "warning", "--log-format", "json", "--config", str(config)]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("rate: -1\n")
    assert main(["--config", str(bad), "check", image]) == 2
    assert "rate: expected a rate from 0.01 to 10000 per second" in _one_short_error(capsys)


def test_a_bad_environment_value_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_REGISTRIES", "{bad")
    assert main(["check", "nginx"]) == 2
    assert "KUBE_IMAGE_EXPORTER_REGISTRIES: not valid JSON" in _one_short_error(capsys)


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


def test_report_check_registry_adds_statuses_with_the_options_of_check(basic_registry, docker_config, tmp_path,
                                                                       capsys):
    host = basic_registry.host
    pods = {"kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": name, "namespace": "a"},
         "spec": {"containers": [{"name": "c", "image": f"{host}/team/{image}"}]}}
        for name, image in (("up", "app:1.0"), ("gone", "app:9.9"))
    ]}
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods))
    args = ["report", "--from-file", str(path), "--check-registry", "--insecure-registry", host,
            "--docker-config", docker_config]
    assert main(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["registry_status"] == {f"{host}/team/app:1.0": "available", f"{host}/team/app:9.9": "absent"}
    assert list(report)[:5] == ["images", "units_per_image", "images_per_unit", "images_with_unknown_unit",
                                "pod_images_dependencies"]
    pods["items"].pop()
    path.write_text(json.dumps(pods))
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["registry_status"] == {f"{host}/team/app:1.0": "available"}
    assert main(["report", "--from-file", str(path)]) == 0
    assert "registry_status" not in json.loads(capsys.readouterr().out)  # Sylva's keys only, unless asked


def test_platform_gate_fails_an_image_lacking_one_and_passes_the_others(basic_registry, docker_config, capsys):
    """A release gate for mixed clusters: an index re-pushed without arm64, a single arm64 image, a full index."""
    reg, host = basic_registry, basic_registry.host
    reg.push_index("team/multi", "full", ("linux/amd64", "linux/arm64"), attestation=True)
    reg.push_index("team/multi", "amd-only", ("linux/amd64",), media_type=real.DOCKER_LIST)
    reg.push_image("team/arm", "1", platform="linux/arm64")
    images = [f"{host}/team/multi:full", f"{host}/team/multi:amd-only", f"{host}/team/arm:1", f"{host}/team/app:1.0"]
    registry = ["--insecure-registry", host, "--docker-config", docker_config]
    code = main(["check", *images, "--json", "--platform", "linux/amd64,linux/arm64", *registry])
    out, err = capsys.readouterr()
    assert code == 1
    rows = {row["image"]: (row["status"], row["detail"]) for row in json.loads(out)}
    assert rows == {
        images[0]: ("available", ""),
        images[1]: ("platform_missing", "lacks linux/arm64 (serves linux/amd64)"),
        images[2]: ("platform_missing", "lacks linux/amd64 (serves linux/arm64)"),
        images[3]: ("platform_missing", "lacks linux/arm64 (serves linux/amd64)"),
    }
    assert "4 images: 3 missing (3 platform_missing), 1 available" in err
    assert main(["check", images[0], images[2], "--platform", "linux/arm64", *registry]) == 0  # each serves arm64
    assert main(["check", images[1], *registry]) == 0  # without --platform, check is unchanged


def test_signature_gate_fails_an_image_its_glob_covers_that_carries_no_signature(basic_registry, docker_config,
                                                                                   capsys):
    reg, host = basic_registry, basic_registry.host
    signed = reg.push_image("sig/signed", "1")
    reg.push_cosign_signature("sig/signed", signed)
    reg.push_image("sig/unsigned", "1")
    images = [f"{host}/sig/signed:1", f"{host}/sig/unsigned:1", f"{host}/team/app:1.0"]
    registry = ["--insecure-registry", host, "--docker-config", docker_config]
    code = main(["check", *images, "--json", "--require-signature", f"{host}/sig/*", *registry])
    out, err = capsys.readouterr()
    assert code == 1
    assert [(row["image"], row["status"]) for row in json.loads(out)] == [
        (images[0], "available"), (images[1], "signature_missing"), (images[2], "available")]  # not covered
    assert "3 images: 1 missing (1 signature_missing), 2 available" in err
    assert main(["check", images[0], "--require-signature", "*", *registry]) == 0


def test_retention_gate_marks_what_tonights_cleanup_deletes_and_fails_only_when_asked(tmp_path, capsys):
    from tests.support.harbor import Harbor, artifact, policy, rule

    harbor = Harbor()
    try:
        harbor.project("library", policy(rule("latestPushedK", 1)))
        harbor.artifacts[("library", "app")] = [
            artifact("sha256:" + "1" * 64, ("1.0",), pushed="2026-11-01T00:00:00Z"),
            artifact("sha256:" + "2" * 64, ("1.1",), pushed="2026-11-02T00:00:00Z")]
        config = tmp_path / "docker.json"
        config.write_text(json.dumps({"auths": {harbor.host: {"username": "robot$exporter", "password": "s3cret"}}}))
        old, kept = f"{harbor.host}/library/app:1.0", f"{harbor.host}/library/app:1.1"
        common = ["--insecure-registry", harbor.host, "--docker-config", str(config),
                  "--retention-source", f"harbor={harbor.host}", "--json"]
        code = main(["check", old, kept, *common])
        rows = {row["image"]: row for row in json.loads(capsys.readouterr().out)}
        assert code == 0  # both available: a forecast fails the gate only when asked
        assert [row["status"] for row in rows.values()] == ["available", "available"]
        assert rows[old]["retention_at_risk"][0].startswith("harbor:library rule 1: latestPushedK 1")
        assert main(["check", old, *common, "--fail-on-retention"]) == 1
        assert main(["check", kept, *common, "--fail-on-retention"]) == 0
        capsys.readouterr()
        assert "03:00 UTC" in rows[old]["retention_at_risk"][0] and "retention_at_risk" not in rows[kept]
        harbor.projects["library"]["retention_id"] = "missing"  # a policy that cannot be read: a gate fails
        assert main(["check", kept, *common, "--fail-on-retention"]) == 1
        assert "harbor:library: the cleanup policy could not be read" in capsys.readouterr().err
    finally:
        harbor.stop()


def test_gitlab_retention_gate_through_check(tmp_path, capsys):
    import datetime

    from tests.support.gitlab import GitLab, expiration

    def days_ago(n):
        return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=n)).isoformat()

    gitlab = GitLab("glpat-canary-check")
    try:
        gitlab.project("team/app", expiration(keep_n=1, older_than="7d"))
        repository = gitlab.repository("team/app", "api", {"1.0": ("sha256:" + "1" * 64, days_ago(30)),
                                                           "1.1": ("sha256:" + "2" * 64, days_ago(20))})
        token = tmp_path / "token"
        token.write_text("glpat-canary-check")
        old, kept = f"{gitlab.host}/{repository}:1.0", f"{gitlab.host}/{repository}:1.1"
        common = ["--insecure-registry", gitlab.host, "--json",
                  "--retention-source", f"gitlab={gitlab.host},api={gitlab.api},token_file={token}"]
        code = main(["check", old, kept, *common])
        rows = {row["image"]: row for row in json.loads(capsys.readouterr().out)}
        assert code == 0 and [row["status"] for row in rows.values()] == ["available", "available"]
        assert rows[old]["retention_at_risk"][0].startswith("gitlab:team/app cleanup policy: keep_n 1, older_than 7d")
        assert "retention_at_risk" not in rows[kept]
        assert main(["check", old, *common, "--fail-on-retention"]) == 1
        assert main(["check", kept, *common, "--fail-on-retention"]) == 0
        capsys.readouterr()
        token.write_text("glpat-wrong-canary")  # a policy that cannot be read: a gate fails, no token said
        assert main(["check", kept, *common, "--fail-on-retention"]) == 1
        out, err = capsys.readouterr()
        assert "gitlab:team/app: the cleanup policy could not be read" in err and "canary" not in out + err
    finally:
        gitlab.stop()


def test_a_gitlab_retention_source_without_its_token_is_a_usage_error(capsys):
    assert main(["check", "nginx", "--retention-source", "gitlab=registry.example.com"]) == 2
    assert "needs token_file=PATH" in _one_short_error(capsys)


def test_a_retention_source_of_an_unknown_kind_is_a_usage_error(capsys):
    assert main(["check", "nginx", "--retention-source", "quay=quay.io"]) == 2
    assert "unknown kind 'quay'" in _one_short_error(capsys)


def test_ecr_retention_gate_through_the_sdk(basic_registry, tmp_path, capsys, monkeypatch):
    """An ECR repository's lifecycle policy (moto's ECR, tests/support/ecr.py) read by `check`; the images
    themselves are checked through a mirror of the ECR host (no AWS here)."""
    from exporter.sources.registry.retention import ecr as source
    from tests.support.ecr import CREDENTIALS, ECR, HOST, policy_text, rule

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    source._client.cache_clear()
    basic_registry.push_image("team/app", "1.1")
    docker_config = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:wonderland").decode()
    docker_config.write_text(json.dumps({"auths": {host: {"auth": auth} for host in (basic_registry.host, HOST)}}))
    aws = ECR()
    try:
        aws.repository("team/app", policy_text(rule(1, "imageCountMoreThan", 1, "tagged", prefixes=["1."])))
        aws.push("team/app", "1.0", pushed=1.7e9)
        aws.push("team/app", "1.1", pushed=1.7e9 + 3600)
        old, kept = f"{HOST}/team/app:1.0", f"{HOST}/team/app:1.1"
        common = ["--registry-mirror", f"{HOST}={basic_registry.host}", "--insecure-registry", basic_registry.host,
                  "--docker-config", str(docker_config), "--retention-source", f"ecr={HOST},endpoint={aws.endpoint}",
                  "--json"]
        code = main(["check", old, kept, *common])
        rows = {row["image"]: row for row in json.loads(capsys.readouterr().out)}
        assert code == 0 and [row["status"] for row in rows.values()] == ["available", "available"], rows
        assert rows[old]["retention_at_risk"] == [
            "ecr:team/app rule 1: expire tagged more than 1 images (next run within a day)"]
        assert "retention_at_risk" not in rows[kept]
        assert main(["check", old, *common, "--fail-on-retention"]) == 1
        assert main(["check", kept, *common, "--fail-on-retention"]) == 0
        capsys.readouterr()
        aws.forbid.add("GetLifecyclePolicy")  # a policy that cannot be read: a gate fails, and says why once
        assert main(["check", kept, *common, "--fail-on-retention"]) == 1
        err = capsys.readouterr().err
        assert "ecr:team/app: the cleanup policy could not be read" in err
        assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in err
    finally:
        aws.stop()
        source._client.cache_clear()
