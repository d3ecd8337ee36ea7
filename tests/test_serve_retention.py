"""Retention forecasts through a real `serve`: a Harbor API emulator whose project policy deletes, at its next run,
an image a workload runs; the exporter says so on /metrics, the page and /report, and a policy it cannot read is
said once and forecasts nothing."""

import json

import pytest

from tests.conftest import make_pod
from tests.support.browser import Text
from tests.support.harbor import Harbor, artifact, policy, rule
from tests.support.serve_process import Serve


def test_an_image_in_use_that_tonights_cleanup_deletes_is_named_with_its_rule(emulator, kubeconfig, tmp_path):
    harbor = Harbor()
    try:
        harbor.project("library", policy(rule("latestPushedK", 1, repos="app")))
        harbor.artifacts[("library", "app")] = [
            artifact("sha256:" + "1" * 64, ("1.0",), pushed="2026-11-01T00:00:00Z"),
            artifact("sha256:" + "2" * 64, ("1.1",), pushed="2026-11-02T00:00:00Z")]
        harbor.project("broken", policy({**rule("always"), "template": "latestActiveK"}))
        old, new, other = (f"{harbor.host}/{image}" for image in ("library/app:1.0", "library/app:1.1",
                                                                  "broken/tool:1"))
        emulator.create_many([make_pod("old", "shop", old), make_pod("new", "shop", new),
                              make_pod("tool", "shop", other)])
        config = tmp_path / "docker.json"
        config.write_text(json.dumps({"auths": {harbor.host: {"username": "robot$exporter", "password": "s3cret"}}}))
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--insecure-registry", harbor.host,
                   "--docker-config", str(config), "--retention-source", f"harbor={harbor.host}",
                   "--interval", "1s") as serve:
            serve.wait(lambda: serve.samples("kube_image_retention_at_risk"), "the forecast")
            assert [labels for labels, _ in serve.samples("kube_image_retention_at_risk")] == [
                {"cluster": "one", "image": old, "policy": "harbor:library",
                 "rule": "rule 1: latestPushedK 1 (not among those kept)"}]  # 1.1 is the one kept
            assert serve.value("kube_image_retention_up", policy="harbor:library") == 1
            assert serve.value("kube_image_retention_up", policy="harbor:broken") == 0  # no guess for it
            assert serve.value("kube_image_retention_next_run_timestamp_seconds", policy="harbor:library") % 86400 \
                == 3 * 3600
            assert serve.value("kube_image_retention_errors_total", source=f"harbor={harbor.host}",
                               reason="invalid") >= 1
            page = Text(serve.get("/")[1].encode()).text
            assert "Will be deleted (1)" in page and "Pod shop/old" in page and "harbor:broken" in page
            report = json.loads(serve.get("/report")[1])["retention_at_risk"]
            assert report == {old: [{"policy": "harbor:library", "rule": "rule 1: latestPushedK 1 (not among those "
                                                                          "kept)"}]}
            said = [line for line in serve.log().splitlines() if "latestActiveK" in line]
            assert len(said) == 1 and "s3cret" not in serve.log()
    finally:
        harbor.stop()


def test_a_gitlab_project_policy_names_the_image_its_next_run_deletes(emulator, kubeconfig, tmp_path):
    import datetime

    from tests.support.gitlab import GitLab, expiration

    def days_ago(n):
        return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=n)).isoformat()

    gitlab = GitLab("glpat-canary-serve")
    try:
        gitlab.project("group/sub/proj", expiration(keep_n=1, older_than="7d"))
        repository = gitlab.repository("group/sub/proj", "", {"1.0": ("sha256:" + "1" * 64, days_ago(30)),
                                                               "1.1": ("sha256:" + "2" * 64, days_ago(20))})
        old, new = f"{gitlab.host}/{repository}:1.0", f"{gitlab.host}/{repository}:1.1"
        emulator.create_many([make_pod("old", "shop", old), make_pod("new", "shop", new)])
        token = tmp_path / "token"
        token.write_text("glpat-canary-serve\n")
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--insecure-registry", gitlab.host,
                   "--retention-source", f"gitlab={gitlab.host},api={gitlab.api},token_file={token}",
                   "--interval", "1s") as serve:
            serve.wait(lambda: serve.samples("kube_image_retention_at_risk"), "the forecast")
            assert [labels for labels, _ in serve.samples("kube_image_retention_at_risk")] == [
                {"cluster": "one", "image": old, "policy": "gitlab:group/sub/proj",
                 "rule": "cleanup policy: keep_n 1, older_than 7d (not among those kept)"}]
            assert serve.value("kube_image_retention_up", policy="gitlab:group/sub/proj") == 1
            assert serve.value("kube_image_retention_next_run_timestamp_seconds", policy="gitlab:group/sub/proj") \
                == datetime.datetime(2027, 1, 16, 3, tzinfo=datetime.timezone.utc).timestamp()
            assert "canary" not in serve.log()
    finally:
        gitlab.stop()


def test_an_ecr_lifecycle_policy_names_the_image_it_expires_and_an_invalid_one_is_said(emulator, kubeconfig,
                                                                                       tmp_path):
    """ECR (moto's, behind tests/support/ecr.py's front) through the SDK's default chain, read from the environment;
    the images themselves pull through a mirror of the ECR host (no AWS here)."""
    from tests.support import registry as real
    from tests.support.ecr import CREDENTIALS, ECR, HOST, policy_text
    from tests.support.ecr import rule as ecr_rule

    if not real.available():
        pytest.skip("docker-registry not installed")
    mirror = real.Registry(tmp_path, "none")
    for repository, tag in (("team/app", "1.0"), ("team/app", "1.1"), ("team/tool", "1")):
        mirror.push_image(repository, tag)
    aws = ECR()
    try:
        aws.repository("team/app", policy_text(ecr_rule(1, "imageCountMoreThan", 1, "tagged", prefixes=["1."])))
        aws.push("team/app", "1.0", pushed=1.7e9)
        aws.push("team/app", "1.1", pushed=1.7e9 + 3600)
        aws.repository("team/tool", json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any"}}]}))
        aws.push("team/tool", "1", pushed=1.7e9)
        old, new, tool = f"{HOST}/team/app:1.0", f"{HOST}/team/app:1.1", f"{HOST}/team/tool:1"
        emulator.create_many([make_pod("old", "shop", old), make_pod("new", "shop", new),
                              make_pod("tool", "shop", tool)])
        with Serve("--kubeconfig", str(kubeconfig), "--context", "one", "--registry-mirror",
                   f"{HOST}={mirror.host}", "--insecure-registry", mirror.host,
                   "--retention-source", f"ecr={HOST},endpoint={aws.endpoint}",
                   env=CREDENTIALS) as serve:
            serve.wait(lambda: serve.value("kube_image_retention_up", policy="ecr:team/tool") is not None,
                       "both repositories' policies read")
            assert [labels for labels, _ in serve.samples("kube_image_retention_at_risk")] == [
                {"cluster": "one", "image": old, "policy": "ecr:team/app",
                 "rule": "rule 1: expire tagged more than 1 images"}]
            assert serve.value("kube_image_retention_up", policy="ecr:team/app") == 1
            assert serve.value("kube_image_retention_up", policy="ecr:team/tool") == 0  # no guess for it
            assert serve.value("kube_image_retention_next_run_timestamp_seconds", policy="ecr:team/app") is None
            assert serve.value("kube_image_retention_errors_total", source=f"ecr={HOST}", reason="invalid") >= 1
            report = json.loads(serve.get("/report")[1])["retention_at_risk"]
            assert list(report) == [old]
            assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in serve.log()
    finally:
        aws.stop()
        mirror.stop()
