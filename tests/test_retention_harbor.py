"""Harbor's tag retention, evaluated as Harbor does (a case table after its documentation and its evaluator tests),
and read from a Harbor API emulator with the faults a real one has."""

import logging

import pytest

from exporter.model.retention import DAY, Artifact, at_risk
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.retention import Retention, parse_spec
from exporter.sources.registry.retention.common import PolicyError
from exporter.sources.registry.retention.harbor import evaluate, parse_policy
from exporter.sources.registry.settings import from_options
from tests.support.harbor import Harbor, artifact, policy, rule

NOW = 1_800_000_000.0


def art(digest, *tags, pushed_days_ago=0.0, pulled_days_ago=None, repository="library/app"):
    pulled = None if pulled_days_ago is None else NOW - pulled_days_ago * DAY
    return Artifact(repository, digest, tags, NOW - pushed_days_ago * DAY, pulled)


def deleted(rules, artifacts, repository="app"):
    parsed, _ = parse_policy(policy(*rules))
    return set(d.split("@")[1] for d in evaluate(parsed, {repository: artifacts}, NOW))


FIVE = [art(f"d{i}", f"v{i}", pushed_days_ago=10 - i, pulled_days_ago=i) for i in range(5)]  # d4 pushed last


@pytest.mark.parametrize("rules, gone", [
    ([rule("latestPushedK", 3)], {"d0", "d1"}),  # the 3 most recently pushed stay
    ([rule("latestPulledN", 2)], {"d2", "d3", "d4"}),  # d0 pulled most recently, then d1
    ([rule("nDaysSinceLastPush", 7)], {"d0", "d1"}),  # pushed 10 and 9 days ago (8 is kept? no: 8 > 7)
    ([rule("nDaysSinceLastPull", 2)], {"d3", "d4"}),
    ([rule("always")], set()),
    ([rule("latestPushedK", 1), rule("latestPulledN", 1)], {"d1", "d2", "d3"}),  # rules are ORed
    ([rule("always", tags="v1")], {"d0", "d2", "d3", "d4"}),  # whatever no rule retains goes
    ([rule("always", tags="v1", decoration="excludes")], {"d1"}),
    ([rule("always", repos="other/**")], set()),  # a repository no rule selects is untouched
    ([rule("always", tags="v1"), rule("always", disabled=True)], {"d0", "d2", "d3", "d4"}),  # disabled: ignored
])
def test_harbor_rules(rules, gone):
    if rules[0]["template"] == "nDaysSinceLastPush":
        gone = {"d0", "d1", "d2"}  # pushed 10, 9 and 8 days ago
    assert deleted(rules, FIVE) == gone


def test_one_retained_tag_keeps_every_tag_of_its_artifact():
    both = [art("d0", "v1", "latest", pushed_days_ago=1), art("d1", "v0", pushed_days_ago=5)]
    assert deleted([rule("always", tags="latest")], both) == {"d1"}
    decided = evaluate(parse_policy(policy(rule("always", tags="latest")))[0], {"app": both}, NOW)
    assert decided == {"library/app@d1": "no rule selects its tags"}


def test_untagged_artifacts_go_unless_a_rule_includes_them():
    artifacts = [art("d0", "v1"), art("d1")]
    assert deleted([rule("always")], artifacts) == {"d1"}
    assert deleted([rule("always", untagged=True)], artifacts) == set()


def test_latest_pulled_with_pull_times_switched_off_forecasts_nothing_on_a_guess():
    never_pulled = [art(f"d{i}", f"v{i}", pushed_days_ago=i) for i in range(4)]  # pull times all zero
    assert deleted([rule("latestPulledN", 2)], never_pulled) == set()  # Harbor orders these ties arbitrarily
    assert deleted([rule("nDaysSinceLastPull", 30)], never_pulled) == {"d0", "d1", "d2", "d3"}  # this one is sure


def test_the_forecast_is_evaluated_at_the_next_run():
    parsed, cron = parse_policy(policy(rule("nDaysSinceLastPush", 7)))
    aging = [art("d0", "v1", pushed_days_ago=6.9)]
    assert evaluate(parsed, {"app": aging}, NOW) == {}
    assert evaluate(parsed, {"app": aging}, NOW + 0.2 * DAY) == {"library/app@d0": "rule 1: nDaysSinceLastPush 7 "
                                                                                    "(not among those kept)"}
    assert cron == "0 0 3 * * *"


@pytest.mark.parametrize("body, says", [
    (policy({**rule("latestPushedK", 3), "template": "latestActiveK"}), "unknown template 'latestActiveK'"),
    (policy(rule("latestPushedK", "three")), "latestPushedK needs a number"),
    ({"rules": "none"}, "not a Harbor policy"),
    ({**policy(), "algorithm": "and"}, "algorithm 'and'"),
])
def test_a_policy_that_is_not_harbors_is_refused_with_what_is_wrong(body, says):
    with pytest.raises(PolicyError, match=says):
        parse_policy(body)


@pytest.fixture
def harbor():
    h = Harbor()
    yield h
    h.stop()


def retention_for(harbor, password="s3cret"):
    keyring = Keyring.of([Credential(harbor.host, "robot$exporter", password, source="secret kie/harbor-robot")])
    return Retention([parse_spec(f"harbor={harbor.host}")], from_options(insecure=[harbor.host]), keyring,
                     HostPauses(1, 10), clock=lambda: NOW)


def test_a_harbor_project_policy_forecasts_what_its_next_run_deletes(harbor):
    harbor.project("library", policy(rule("latestPushedK", 2, repos="app")))
    harbor.artifacts[("library", "app")] = [
        artifact(f"sha256:{i:064x}", (f"1.{i}",), pushed=f"2026-11-0{i + 1}T00:00:00.000Z") for i in range(4)]
    harbor.artifacts[("library", "team/tool")] = [artifact("sha256:" + "f" * 64, ("1",))]
    harbor.project("open")  # no policy: nothing deleted
    retention = retention_for(harbor)
    [library, open_] = sorted(retention.read_all({harbor.host: ["library/app", "library/team/tool", "open/x"]}),
                              key=lambda f: f.policy)
    assert library.policy == "harbor:library" and open_.deletes == {}
    assert library.next_run is not None and library.next_run % 86400 == 3 * 3600  # 03:00 UTC, the cron's
    assert at_risk(harbor.host, "library/app", "1.0", [], [library]) == [
        ("harbor:library", "rule 1: latestPushedK 2 (not among those kept)")]
    assert at_risk(harbor.host, "library/app", "1.3", [], [library]) == []
    assert at_risk(harbor.host, "library/team/tool", "1", [], [library]) == []  # its repository is not selected
    assert at_risk(harbor.host, "library/app", None, ["sha256:" + "1" * 64], [library]) == []
    assert [h.up for h in retention.health()] == [True, True]
    assert harbor.requests["/api/v2.0/projects/library/repositories/team%252Ftool/artifacts"] == 0  # not selected


def test_many_artifacts_are_read_page_by_page(harbor):
    harbor.project("library", policy(rule("latestPushedK", 150)))
    harbor.artifacts[("library", "app")] = [artifact(f"sha256:{i:064x}", (f"t{i}",), pushed=f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}.000Z")
                                            for i in range(250)]
    [forecast] = retention_for(harbor).read_all({harbor.host: ["library/app"]})
    assert len([k for k in forecast.deletes if "@" in k]) == 100
    assert harbor.requests["/api/v2.0/projects/library/repositories/app/artifacts"] == 3


@pytest.mark.parametrize("fault, reason, says", [
    (lambda h: h.policies["7"]["rules"].append({**rule("always"), "template": "nothing"}), "invalid",
     "unknown template 'nothing'"),
    (lambda h: h.forbid.add("/api/v2.0/retentions"), "forbidden", "403"),
    (lambda h: setattr(h, "endless", "library"), "invalid", "still more after 5 pages"),
    (lambda h: h.artifacts.__setitem__(("library", "app"), [artifact("sha256:" + "a" * 64, ("1",),
                                                                     pushed="yesterday")]), "invalid",
     "'yesterday' is not RFC 3339"),
])
def test_a_bad_policy_or_listing_is_one_clear_error_and_no_forecast(harbor, caplog, monkeypatch, fault, reason, says):
    monkeypatch.setattr("exporter.sources.registry.retention.common.MAX_PAGES", 5)  # the cap, not its size, matters
    harbor.project("library", policy(rule("always")))
    harbor.project("other", policy(rule("latestPushedK", 1)))
    harbor.artifacts[("library", "app")] = [artifact("sha256:" + "a" * 64, ("1",))]
    harbor.artifacts[("other", "app")] = [artifact("sha256:" + "b" * 64, ("1",)),
                                          artifact("sha256:" + "c" * 64, ("2",), pushed="2026-11-02T00:00:00Z")]
    fault(harbor)
    retention = retention_for(harbor)
    with caplog.at_level(logging.WARNING):
        forecasts = retention.read_all({harbor.host: ["library/app", "other/app"]})
        retention.read_all({harbor.host: ["library/app", "other/app"]})
    if reason == "forbidden":  # the robot may read no retention: both projects say so
        assert forecasts == () and retention.errors[(f"harbor={harbor.host}", "forbidden")] == 4
    else:
        assert [f.policy for f in forecasts] == ["harbor:other"]  # the other project is unaffected
        assert {h.policy: h.up for h in retention.health()}["harbor:library"] is False
        assert retention.errors[(f"harbor={harbor.host}", reason)] == 2
    said = [r.getMessage() for r in caplog.records if says in r.getMessage()]
    assert 1 <= len(said) <= 2 and all("s3cret" not in r.getMessage() for r in caplog.records)  # once per policy


def test_wrong_credentials_are_said_without_them(harbor, caplog):
    harbor.project("library", policy(rule("always")))
    retention = retention_for(harbor, password="wrong-password")
    with caplog.at_level(logging.WARNING):
        assert retention.read_all({harbor.host: ["library/app"]}) == ()
    assert retention.errors[(f"harbor={harbor.host}", "forbidden")] == 1
    assert "401" in caplog.text and "wrong-password" not in caplog.text


def test_source_specs():
    assert parse_spec("harbor=harbor.example.com").host == "harbor.example.com"
    for bad, says in (("harbor", "KIND=REGISTRY_HOST"), ("quay=q.io", "unknown kind 'quay'"),
                      ("harbor=h/x", "KIND=REGISTRY_HOST")):
        with pytest.raises(ValueError, match=says):
            parse_spec(bad)


def test_a_surprise_in_one_projects_answer_costs_that_forecast_only(harbor, caplog):
    """A surprise in reading one project's answer (here: the evaluator raising what it never raises) is counted and
    said; the other project's forecast stands and the reader goes on."""
    harbor.project("library", policy(rule("always")))
    harbor.project("other", policy(rule("always")))
    harbor.artifacts[("other", "app")] = [artifact("sha256:" + "b" * 64, ("1",))]
    harbor.policies[harbor.projects["library"]["retention_id"]]["marker"] = True
    retention = retention_for(harbor)
    import exporter.sources.registry.retention.harbor as module

    real = module.parse_policy
    module.parse_policy = lambda body: (_ for _ in ()).throw(KeyError("rules")) if body.get("marker") else real(body)
    try:
        forecasts = retention.read_all({harbor.host: ["library/app", "other/app"]})
    finally:
        module.parse_policy = real
    assert [f.policy for f in forecasts] == ["harbor:other"]
    assert retention.errors[(f"harbor={harbor.host}", "error")] == 1
    assert {h.policy: h.up for h in retention.health()} == {"harbor:library": False, "harbor:other": True}
