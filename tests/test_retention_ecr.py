"""ECR lifecycle policies, evaluated as AWS documents them (a case table after the User Guide's properties and
examples), and read through the AWS SDK from moto's ECR with the gaps it leaves filled (tests/support/ecr.py)."""

import logging

import pytest

from exporter.model.retention import DAY, Artifact, at_risk
from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.retention import Retention, ecr, parse_spec
from exporter.sources.registry.retention.common import PolicyError
from exporter.sources.registry.retention.ecr import Image, evaluate, parse_policy
from exporter.sources.registry.settings import from_options
from tests.support.ecr import CREDENTIALS, ECR, HOST, policy_text, rule

NOW = 1_800_000_000.0


def image(digest, *tags, pushed_days_ago=0.0, pulled_days_ago=None, archived_days_ago=None):
    pulled = None if pulled_days_ago is None else NOW - pulled_days_ago * DAY
    artifact = Artifact("app", digest, tags, NOW - pushed_days_ago * DAY, pulled)
    if archived_days_ago is None:
        return Image(artifact)
    return Image(artifact, "archive", NOW - archived_days_ago * DAY)


def expired(rules, images, when=NOW):
    return {key.split("@")[1]: label for key, label in evaluate(parse_policy(policy_text(*rules)), images, when).items()}


FIVE = [image(f"d{i}", f"v{i}", pushed_days_ago=10 - 2 * i, pulled_days_ago=i) for i in range(5)]  # d4 newest


@pytest.mark.parametrize("rules, gone", [
    ([rule(1, "imageCountMoreThan", 3)], {"d0", "d1"}),  # the newest 3 by push stay
    ([rule(1, "sinceImagePushed", 5)], {"d0", "d1", "d2"}),  # pushed 10, 8, 6 days ago (4 is not over 5)
    ([rule(1, "sinceImagePulled", 2)], {"d3", "d4"}),  # pulled 3 and 4 days ago
    ([rule(1, "imageCountMoreThan", 1, "tagged", patterns=["v*"])], {"d0", "d1", "d2", "d3"}),
    ([rule(1, "imageCountMoreThan", 1, "tagged", patterns=["v1", "v3"])], set()),  # all patterns on one image
    ([rule(1, "imageCountMoreThan", 1, "tagged", prefixes=["v"])], {"d0", "d1", "d2", "d3"}),
    ([rule(1, "imageCountMoreThan", 1, "tagged", patterns=["x*"])], set()),
    ([rule(1, "imageCountMoreThan", 1, "untagged")], set()),  # every image is tagged
    ([rule(1, "sinceImagePushed", 30)], set()),
])
def test_one_rule_of_each_kind(rules, gone):
    assert set(expired(rules, FIVE)) == gone


def test_tag_patterns_match_whole_tags_with_wildcards_and_every_entry_must_match_some_tag():
    images = [image("a", "prod", "web-1", pushed_days_ago=5), image("b", "prod1", pushed_days_ago=4),
              image("c", "preprod", pushed_days_ago=3)]
    assert set(expired([rule(1, "sinceImagePushed", 1, "tagged", patterns=["prod*"])], images)) == {"a", "b"}
    assert set(expired([rule(1, "sinceImagePushed", 1, "tagged", patterns=["prod*", "*web*"])], images)) == {"a"}
    assert set(expired([rule(1, "sinceImagePushed", 1, "tagged", prefixes=["pre"])], images)) == {"c"}


def test_aws_example_a_tag_match_on_a_higher_rule_shields_the_image_from_lower_ones():
    """User Guide, "Filtering on multiple rules": A (beta-1, prod-1) 10 days, B (beta-2, prod-2) 9, C (beta-3) 8;
    rule 1 prod* more than 1, rule 2 beta* more than 1: only A is expired (B was seen by rule 1)."""
    images = [image("A", "beta-1", "prod-1", pushed_days_ago=10), image("B", "beta-2", "prod-2", pushed_days_ago=9),
              image("C", "beta-3", pushed_days_ago=8)]
    rules = [rule(1, "imageCountMoreThan", 1, "tagged", patterns=["prod*"]),
             rule(2, "imageCountMoreThan", 1, "tagged", patterns=["beta*"])]
    assert expired(rules, images) == {"A": "rule 1: expire tagged more than 1 images"}
    images[2] = image("C", "beta-3", "prod-3", pushed_days_ago=8)  # the second example: A and B by rule 1
    assert set(expired(rules, images)) == {"A", "B"}


def test_an_any_rule_last_counts_every_image_but_expires_none_a_higher_rule_matched():
    images = [image("keep", "release-1", pushed_days_ago=40), image("old", "dev-1", pushed_days_ago=30),
              image("untagged", pushed_days_ago=20), image("new", "dev-2", pushed_days_ago=1)]
    rules = [rule(1, "imageCountMoreThan", 100, "tagged", patterns=["release-*"]),  # keeps (matches) releases
             rule(2, "imageCountMoreThan", 1)]  # any: only the newest of all stays
    assert expired(rules, images) == {"old": "rule 2: expire any more than 1 images",
                                      "untagged": "rule 2: expire any more than 1 images"}
    with pytest.raises(PolicyError, match="'any' rule is not the last"):
        parse_policy(policy_text(rule(1, "imageCountMoreThan", 1), rule(2, "sinceImagePushed", 1, "untagged")))


def test_never_pulled_images_age_from_their_push_and_archive_rules_see_only_archived_images():
    images = [image("never", "a", pushed_days_ago=40), image("recent", "b", pushed_days_ago=40, pulled_days_ago=1),
              image("cold", "c", pushed_days_ago=90, archived_days_ago=60)]
    assert set(expired([rule(1, "sinceImagePulled", 30)], images)) == {"never"}  # `cold` is archived: not standard
    assert expired([rule(1, "sinceImageTransitioned", 30, storageClass="archive")], images) == {
        "cold": "rule 1: expire any archived over 30 days ago"}


def test_transition_to_archive_is_forecast_too_pulls_of_an_archived_image_fail():
    assert expired([rule(1, "sinceImagePushed", 5, action="transition")], FIVE)["d0"] == (
        "rule 1: transition any pushed over 5 days ago")


def test_ties_in_push_time_are_not_guessed_and_age_is_counted_a_day_ahead():
    tied = [image(d, d, pushed_days_ago=3) for d in ("a", "b", "c")]
    assert expired([rule(1, "imageCountMoreThan", 2)], tied) == {}  # which two ECR keeps is not documented
    assert expired([rule(1, "sinceImagePushed", 4)], tied, when=NOW + DAY) == {}
    assert set(expired([rule(1, "sinceImagePushed", 3)], tied, when=NOW + DAY)) == {"a", "b", "c"}


@pytest.mark.parametrize("text, says", [
    (policy_text({**rule(1), "selection": {**rule(1)["selection"], "countType": "sinceImageBuilt"}}),
     "unknown countType 'sinceImageBuilt'"),
    (policy_text({**rule(1), "selection": {**rule(1)["selection"], "imageSizeMoreThan": 5}}),
     "unknown selection field 'imageSizeMoreThan'"),
    (policy_text({**rule(1), "action": {"type": "delete"}}), "unknown action type 'delete'"),
    (policy_text(rule(1, "sinceImagePushed", 1, "tagged")), "needs a list of tag patterns"),
    (policy_text({**rule(1, "sinceImagePushed", 1), "selection": {"tagStatus": "any", "countType": "sinceImagePushed",
                                                                  "countNumber": 1}}), "countUnit None"),
    (policy_text(rule(1, count=0)), "countNumber 0"),
    (policy_text(rule(1, status="untagged"), rule(1, "sinceImagePushed", 3)), "share a rulePriority"),
    ("{not json", "not JSON"),
])
def test_a_policy_that_is_not_awss_is_refused_with_what_is_wrong(text, says):
    with pytest.raises(PolicyError, match=says):
        parse_policy(text)


@pytest.fixture
def aws(monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    emulator = ECR()
    ecr._client.cache_clear()
    yield emulator
    emulator.stop()
    ecr._client.cache_clear()


def retention_for(aws, clock=NOW):
    return Retention([parse_spec(f"ecr={HOST},endpoint={aws.endpoint}")], from_options(), Keyring.of([]),
                     HostPauses(1, 10), clock=lambda: clock)


def test_a_repository_policy_read_from_ecr_forecasts_what_is_expired_by_tomorrow(aws):
    aws.repository("team/app", policy_text(rule(1, "imageCountMoreThan", 2, "tagged", prefixes=["1."]),
                                           rule(2, "sinceImagePulled", 30, "untagged")))
    old, mid, new = (aws.push("team/app", f"1.{i}", pushed=NOW - (10 - i) * DAY) for i in range(3))
    pinned = aws.push("team/app", pushed=NOW - 60 * DAY)  # untagged: a pod pins its digest, last pulled long ago
    aws.pulls[pinned] = NOW - 45 * DAY
    aws.repository("team/tool")  # no policy
    aws.push("team/tool", "1", pushed=NOW - 400 * DAY)
    retention = retention_for(aws)
    forecasts = {f.policy: f for f in retention.read_all({HOST: ["team/app", "team/tool"]})}
    assert set(forecasts) == {"ecr:team/app", "ecr:team/tool"} and forecasts["ecr:team/tool"].deletes == {}
    app = forecasts["ecr:team/app"]
    assert app.next_run is None  # ECR acts within a day, at no fixed time
    assert at_risk(HOST, "team/app", "1.0", [], [app]) == [("ecr:team/app", "rule 1: expire tagged more than 2 images")]
    assert at_risk(HOST, "team/app", "1.2", [new], [app]) == []
    assert at_risk(HOST, "team/app", None, [pinned], [app]) == [("ecr:team/app",
                                                                "rule 2: expire untagged not pulled for 30 days")]
    assert {h.policy: h.up for h in retention.health()} == {"ecr:team/app": True, "ecr:team/tool": True}
    assert aws.requests["GetLifecyclePolicyPreview"] == 1  # asked once for the repository with a policy
    assert old and mid


def test_the_pull_hosts_pause_does_not_stop_reading_the_api_and_the_apis_throttling_pauses_only_it(aws):
    """Behind a mirror the pull host is unreachable, and the checks pause it; ECR's API is another endpoint."""
    aws.repository("team/app", policy_text(rule(1, "imageCountMoreThan", 1)))
    aws.push("team/app", "1.0", pushed=NOW - 2 * DAY)
    aws.push("team/app", "1.1", pushed=NOW - DAY)
    pauses = HostPauses(60, 600)
    retention = Retention([parse_spec(f"ecr={HOST},endpoint={aws.endpoint}")], from_options(), Keyring.of([]),
                          pauses, clock=lambda: NOW)
    pauses.failed(HOST, "unreachable")
    assert [f.policy for f in retention.read_all({HOST: ["team/app"]})] == ["ecr:team/app"]
    api = aws.endpoint.split("://", 1)[1]
    pauses.rate_limited(api, 60, "ThrottlingException")  # the API's own throttling: its last forecast stands
    assert [f.policy for f in retention.read_all({HOST: ["team/app"]})] == ["ecr:team/app"]
    assert aws.requests["GetLifecyclePolicy"] == 1


def test_images_are_read_page_by_page(aws, monkeypatch):
    monkeypatch.setattr(ecr, "PAGE", 2)
    aws.repository("app", policy_text(rule(1, "imageCountMoreThan", 1)))
    digests = [aws.push("app", f"v{i}", pushed=NOW - (10 - i) * DAY) for i in range(5)]
    [forecast] = retention_for(aws).read_all({HOST: ["app"]})
    assert {k for k in forecast.deletes if "@" in k} == {f"app@{d}" for d in digests[:4]}
    assert aws.requests["DescribeImages"] == 3


def test_ecrs_own_preview_of_the_policy_in_force_confirms_what_it_expires(aws):
    text = policy_text(rule(1, "sinceImagePushed", 90))
    aws.repository("app", text)
    young = aws.push("app", "v1", pushed=NOW - 1 * DAY)
    aws.previews["app"] = {"status": "COMPLETE", "lifecyclePolicyText": text, "previewResults": [
        {"imageDigest": young, "imageTags": ["v1"], "action": {"type": "EXPIRE"}, "appliedRulePriority": 1}]}
    [forecast] = retention_for(aws).read_all({HOST: ["app"]})
    assert forecast.deletes[f"app@{young}"] == "rule 1: expire any pushed over 90 days ago (ECR's preview)"
    aws.previews["app"]["lifecyclePolicyText"] = policy_text(rule(1, "sinceImagePushed", 1))  # another policy's
    [forecast] = retention_for(aws).read_all({HOST: ["app"]})
    assert forecast.deletes == {}


@pytest.mark.parametrize("fault, reason, says", [
    (lambda a: a.forbid.add("GetLifecyclePolicy"), "forbidden", "AccessDeniedException"),
    (lambda a: a.endless.add("app"), "invalid", "still more after 5 pages"),
    (lambda a: a.garbage.__setitem__(a.push("app", "x"), "yesterday"), "invalid", "DescribeImages"),
    (lambda a: a.policy("app", policy_text({**rule(1), "selection": {**rule(1)["selection"],
                                                                      "countType": "sinceImageBuilt"}})),
     "invalid", "unknown countType 'sinceImageBuilt'"),
])
def test_a_bad_policy_or_listing_is_one_clear_error_and_no_forecast(aws, caplog, monkeypatch, fault, reason, says):
    monkeypatch.setattr("exporter.sources.registry.retention.common.MAX_PAGES", 5)  # the cap, not its size, matters
    aws.repository("app", policy_text(rule(1, "imageCountMoreThan", 1)))
    aws.repository("other", policy_text(rule(1, "imageCountMoreThan", 1)))
    aws.push("app", "1")
    aws.push("other", "1", pushed=NOW - 2 * DAY)
    aws.push("other", "2", pushed=NOW - DAY)
    fault(aws)
    retention = retention_for(aws)
    with caplog.at_level(logging.WARNING):
        forecasts = retention.read_all({HOST: ["app", "other"]})
        retention.read_all({HOST: ["app", "other"]})
    if reason == "forbidden":  # the role may read no policy: both repositories say so
        assert forecasts == () and retention.errors[(f"ecr={HOST}", "forbidden")] == 4
    else:
        assert [f.policy for f in forecasts] == ["ecr:other"] and len(forecasts[0].deletes) == 2  # unaffected
        assert {h.policy: h.up for h in retention.health()}["ecr:app"] is False
        assert retention.errors[(f"ecr={HOST}", reason)] == 2
    said = [r.getMessage() for r in caplog.records if says in r.getMessage()]
    assert 1 <= len(said) <= 2
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in caplog.text


def test_no_credentials_is_said_plainly(aws, monkeypatch, caplog, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    for key in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(key, str(tmp_path / "none"))
    aws.repository("app", policy_text(rule(1)))
    retention = retention_for(aws)
    with caplog.at_level(logging.WARNING):
        assert retention.read_all({HOST: ["app"]}) == ()
    assert "no AWS credentials found" in caplog.text and retention.errors[(f"ecr={HOST}", "forbidden")] == 1


def test_source_specs(monkeypatch):
    spec = parse_spec(f"ecr={HOST},endpoint=http://127.0.0.1:4566")
    assert ecr.region_of(spec.host) == ("123456789012", "eu-west-1")
    assert ecr.region_of("123456789012.dkr-ecr.us-east-2.on.aws") == ("123456789012", "us-east-2")
    for bad, says in (("ecr=harbor.example.com", "not an ECR registry host"),
                      (f"ecr={HOST},region=us-east-1", "unknown option 'region'"),
                      (f"ecr={HOST},endpoint=localhost", "not an http")):
        with pytest.raises(ValueError, match=says):
            parse_spec(bad)
    real = ecr.importlib.util.find_spec
    monkeypatch.setattr(ecr.importlib.util, "find_spec", lambda name: None if name == "boto3" else real(name))
    with pytest.raises(ValueError, match=r"pip install 'kube-image-exporter\[aws\]'"):
        parse_spec(f"ecr={HOST}")
