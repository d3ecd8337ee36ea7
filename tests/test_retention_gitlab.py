"""GitLab's container registry cleanup policy, evaluated as GitLab's cleanup service does (a case table after its
documentation, "How the cleanup policy works", and its `CleanupTagsBaseService`), and read from a GitLab API emulator
with the faults a real one has."""

import logging

import pytest

from exporter.model.retention import DAY, at_risk
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.retention import Retention, parse_spec
from exporter.sources.registry.retention.common import PolicyError
from exporter.sources.registry.retention.gitlab import Tag, evaluate, parse_policy
from exporter.sources.registry.settings import from_options
from tests.support.gitlab import GitLab, expiration

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
TOKEN = "glpat-canary-0123456789"


def tag(name, days_ago, digest=None):
    return Tag(name, digest or f"sha256:{name}", None if days_ago is None else NOW - days_ago * DAY)


FIVE = [tag(f"v{i}", 10 - i) for i in range(5)] + [tag("latest", 30)]  # v4 the newest, created 6 days ago


def deleted(tags=FIVE, **policy):
    return set(evaluate(parse_policy(expiration(**policy)), tags, NOW))


@pytest.mark.parametrize("policy, gone", [
    ({"keep_n": 2}, {"v0", "v1", "v2"}),  # the 2 newest stay; `latest` is never deleted
    ({"older_than": "7d"}, {"v0", "v1", "v2"}),  # v3, created exactly 7 days before the run, is not older
    ({"keep_n": 2, "older_than": "8d"}, {"v0", "v1"}),  # beyond the newest 2 AND older than 8 days
    ({"keep_n": 1, "name_regex_keep": "v4"}, {"v0", "v1", "v2"}),  # keep_n counts the candidates only: v3 stays
    ({"name_regex": "v[0-2]"}, {"v0", "v1", "v2"}),  # candidates are the names matching name_regex
    ({"name_regex": "v"}, set()),  # anchored: `v` is not `v0`
    ({"name_regex_keep": "v0|v1"}, {"v2", "v3", "v4"}),  # `\Av0|v1\z`: starts with v0, or ends with v1
    ({"name_regex": ".*", "keep_n": 1, "name_regex_keep": ".*"}, set()),  # keep wins over delete
    ({"enabled": False, "keep_n": 1}, set()),  # a disabled policy deletes nothing
    ({"name_regex": None, "keep_n": 1}, set()),  # no pattern: nothing is a candidate
    ({"name_regex": ".*"}, {"v0", "v1", "v2", "v3", "v4"}),  # everything but latest
])
def test_gitlab_rules(policy, gone):
    assert deleted(**policy) == gone


def test_name_regex_delete_is_name_regex():
    raw = {**expiration(name_regex=None, keep_n=1), "name_regex_delete": "v[0-2]"}
    assert set(evaluate(parse_policy(raw), FIVE, NOW)) == {"v0", "v1"}  # v2: the newest candidate


def test_gitlab_anchors_without_a_group_so_a_top_level_alternation_escapes_the_anchors():
    tags = [tag("release-1", 40), tag("dev", 40), tag("v1", 40), tag("xrelease", 40)]
    assert deleted(tags, name_regex="release|v") == {"release-1", "dev"}  # `\Arelease` or `v\z`


def test_a_keep_pattern_that_does_not_match_the_whole_name_keeps_nothing():
    # gitlab#466239 reports 16.8.8-rc42-ee deleted after ~14 days under this keep pattern; anchored as GitLab anchors
    # it, the pattern does not match that whole name, so the tag is a candidate like any other.
    keep = r"(?:v.+|master|main|\d+\.\d+\.\d+(-ee)?)"
    tags = [tag("16.8.8-rc42-ee", 15), tag("16.8.8-ee", 15), tag("main", 15)]
    assert deleted(tags, older_than="14d", name_regex_keep=keep) == {"16.8.8-rc42-ee"}


def test_tags_sharing_a_created_at_across_the_keep_n_boundary_may_each_be_deleted():
    same = NOW - 20 * DAY  # three tags of one image: GitLab orders them arbitrarily (gitlab#351538)
    tags = [tag("new", 1), *(Tag(f"p{i}", "sha256:one", same) for i in range(3)), tag("old", 30)]
    decided = evaluate(parse_policy(expiration(keep_n=2)), tags, NOW)
    assert set(decided) == {"p0", "p1", "p2", "old"}
    assert all("may be deleted: 3 tags share its created_at" in decided[f"p{i}"] for i in range(3))
    assert decided["old"] == "cleanup policy: keep_n 2 (not among those kept)"


def test_a_tag_without_a_date_ranks_as_newest_and_is_never_older_than():
    tags = [tag("undated", None), tag("a", 50), tag("b", 40)]
    assert deleted(tags, keep_n=1) == {"a", "b"}  # undated ranks as now: it is the one kept
    assert deleted(tags, older_than="30d") == {"a", "b"}  # and no older_than can be said of it


def test_the_forecast_is_evaluated_at_the_next_run():
    policy = parse_policy(expiration(older_than="7d"))
    assert evaluate(policy, [tag("v1", 6.9)], NOW) == {}
    assert evaluate(policy, [tag("v1", 6.9)], NOW + 0.2 * DAY) == {"v1": "cleanup policy: older_than 7d (not among "
                                                                          "those kept)"}


@pytest.mark.parametrize("field, says", [
    ({"older_than": "2 weeks"}, "older_than '2 weeks' is not one of GitLab's"),
    ({"keep_n": "ten"}, "keep_n 'ten' is not a number"),
    ({"enabled": "yes"}, "enabled 'yes' is not true or false"),
    ({"name_regex": r"\p{L}+"}, "name_regex .* cannot be read here"),  # RE2, not Python
    ({"name_regex_keep": "(?<n>x)"}, "name_regex_keep"),
    ({"next_run_at": "tonight"}, "'tonight' is not RFC 3339"),
])
def test_a_policy_that_is_not_gitlabs_is_refused_with_what_is_wrong(field, says):
    with pytest.raises(PolicyError, match=says):
        parse_policy({**expiration(), **field})


@pytest.fixture
def gitlab():
    g = GitLab(TOKEN)
    yield g
    g.stop()


def retention_for(gitlab, tmp_path, token=TOKEN):
    (tmp_path / "token").write_text(token + "\n")
    spec = parse_spec(f"gitlab={gitlab.host},api={gitlab.api},token_file={tmp_path / 'token'}")
    return Retention([spec], from_options(), None, HostPauses(1, 10), clock=lambda: NOW)


def day(n):  # an RFC 3339 time n days before NOW
    import datetime
    return datetime.datetime.fromtimestamp(NOW - n * DAY, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def test_a_project_policy_under_nested_groups_forecasts_what_its_next_run_deletes(gitlab, tmp_path):
    gitlab.project("group/sub/proj", expiration(keep_n=1, older_than="7d"))
    root = gitlab.repository("group/sub/proj", "", {"1.0": ("sha256:" + "1" * 64, day(20)),
                                                     "1.1": ("sha256:" + "2" * 64, day(10)),
                                                     "main": ("sha256:" + "1" * 64, day(20))})
    worker = gitlab.repository("group/sub/proj", "worker", {"1.0": ("sha256:" + "3" * 64, day(20))})
    gitlab.project("group/open")  # no cleanup policy: nothing deleted
    retention = retention_for(gitlab, tmp_path)
    forecasts = sorted(retention.read_all({gitlab.host: [root, worker, "group/open/app"]}), key=lambda f: f.policy)
    assert [f.policy for f in forecasts] == ["gitlab:group/open", "gitlab:group/sub/proj"]
    [open_, proj] = forecasts
    assert open_.deletes == {} and proj.next_run == NOW + 19 * 3600  # next_run_at, 2027-01-16 03:00 UTC
    rule = "cleanup policy: keep_n 1, older_than 7d (not among those kept)"
    assert at_risk(gitlab.host, root, "1.0", [], [proj]) == [("gitlab:group/sub/proj", rule)]
    assert at_risk(gitlab.host, root, "main", [], [proj]) == [("gitlab:group/sub/proj", rule)]
    assert at_risk(gitlab.host, root, "1.1", [], [proj]) == []  # the newest: kept
    assert at_risk(gitlab.host, worker, "1.0", [], [proj]) == []  # the newest of its repository
    assert at_risk(gitlab.host, root, None, ["sha256:" + "1" * 64], [proj]) == [("gitlab:group/sub/proj", rule)]
    assert [h.up for h in retention.health()] == [True, True]
    # the longest prefix is asked first; a path under a project found is not asked for (it cannot be another one)
    assert gitlab.requests["/api/v4/projects/group%2Fopen%2Fapp"] == 1
    assert gitlab.requests["/api/v4/projects/group%2Fsub%2Fproj%2Fworker"] == 0
    assert gitlab.requests["/api/v4/projects/group%2Fsub"] == 0


def test_a_digest_another_kept_tag_points_to_is_not_forecast_deleted(gitlab, tmp_path):
    gitlab.project("team/app", expiration(name_regex="build-.*"))
    repo = gitlab.repository("team/app", "", {"build-7": ("sha256:" + "a" * 64, day(3)),
                                              "stable": ("sha256:" + "a" * 64, day(3))})
    [forecast] = retention_for(gitlab, tmp_path).read_all({gitlab.host: [repo]})
    assert set(forecast.deletes) == {"team/app:build-7"}  # the tag goes; the image stays tagged `stable`


def test_many_tags_are_read_page_by_page_and_each_once_more_for_its_date(gitlab, tmp_path):
    gitlab.project("team/app", expiration(keep_n=100))
    repo = gitlab.repository("team/app", "", {f"t{i:03d}": (f"sha256:{i:064x}", day(300 - i)) for i in range(250)})
    [forecast] = retention_for(gitlab, tmp_path).read_all({gitlab.host: [repo]})
    assert len([k for k in forecast.deletes if "@" in k]) == 150
    repository = gitlab.repositories["team/app"][0]["id"]
    assert gitlab.requests[f"/api/v4/projects/team%2Fapp/registry/repositories/{repository}/tags"] == 3
    assert sum(n for path, n in gitlab.requests.items() if "/tags/" in path) == 250


def setup_two(gitlab):
    gitlab.project("team/bad", expiration(keep_n=1))
    gitlab.project("team/good", expiration(keep_n=1))
    bad = gitlab.repository("team/bad", "", {"1": ("sha256:" + "a" * 64, day(40))})
    good = gitlab.repository("team/good", "", {"1": ("sha256:" + "b" * 64, day(40)),
                                               "2": ("sha256:" + "c" * 64, day(30))})
    return bad, good


@pytest.mark.parametrize("fault, reason, says", [
    (lambda g: g.projects["team/bad"].__setitem__("policy", expiration(older_than="3 months")), "invalid",
     "older_than '3 months'"),
    (lambda g: g.forbid.add("/api/v4/projects/team%2Fbad/registry"), "forbidden", "403"),
    (lambda g: setattr(g, "endless", "team/bad"), "invalid", "still more after 5 pages"),
    (lambda g: g.tags[g.repositories["team/bad"][0]["id"]]["1"].__setitem__("created_at", "last week"), "invalid",
     "'last week' is not RFC 3339"),
    (lambda g: g.projects["team/bad"].__setitem__("member", False), "forbidden", "public details"),
])
def test_a_bad_policy_or_listing_is_one_clear_error_and_no_forecast(gitlab, tmp_path, caplog, monkeypatch, fault,
                                                                    reason, says):
    monkeypatch.setattr("exporter.sources.registry.retention.common.MAX_PAGES", 5)  # the cap, not its size, matters
    bad, good = setup_two(gitlab)
    fault(gitlab)
    retention = retention_for(gitlab, tmp_path)
    with caplog.at_level(logging.WARNING):
        forecasts = retention.read_all({gitlab.host: [bad, good]})
        retention.read_all({gitlab.host: [bad, good]})
    assert [f.policy for f in forecasts] == ["gitlab:team/good"]  # the other project is unaffected
    assert at_risk(gitlab.host, good, "1", [], forecasts) != []
    assert {h.policy: h.up for h in retention.health()} == {"gitlab:team/bad": False, "gitlab:team/good": True}
    assert retention.errors[(f"gitlab={gitlab.host}", reason)] == 2
    said = [r.getMessage() for r in caplog.records if says in r.getMessage()]
    assert len(said) == 1 and TOKEN not in caplog.text  # said once; the token never


def test_a_wrong_token_is_said_once_per_policy_without_either_token(gitlab, tmp_path, caplog):
    bad, good = setup_two(gitlab)
    retention = retention_for(gitlab, tmp_path, token="glpat-wrong-canary")
    with caplog.at_level(logging.WARNING):
        assert retention.read_all({gitlab.host: [bad, good]}) == ()
    assert retention.errors[(f"gitlab={gitlab.host}", "forbidden")] == 2
    assert "401" in caplog.text and "canary" not in caplog.text


def test_a_path_under_no_project_the_token_sees_says_so(gitlab, tmp_path, caplog):
    retention = retention_for(gitlab, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert retention.read_all({gitlab.host: ["secret/proj/app"]}) == ()
    assert "no GitLab project at this path or a prefix of it" in caplog.text
    assert {h.policy: h.up for h in retention.health()} == {"gitlab:secret/proj/app": False}


def test_gitlab_source_specs(tmp_path):
    spec = parse_spec("gitlab=registry.example.com,api=https://gitlab.example.com,token_file=/t")
    assert (spec.host, spec.option("api")) == ("registry.example.com", "https://gitlab.example.com")
    for bad, says in (("gitlab=registry.example.com", "needs token_file=PATH"),
                      ("gitlab=r.example.com,token_file=/t,project=x", "unknown option 'project'"),
                      ("gitlab=r.example.com,token_file=/t,api=gitlab.example.com", "is not an http")):
        with pytest.raises(ValueError, match=says):
            parse_spec(bad)


def test_a_missing_token_file_is_said_without_a_traceback(gitlab, tmp_path, caplog):
    gitlab.project("team/app", expiration(keep_n=1))
    spec = parse_spec(f"gitlab={gitlab.host},api={gitlab.api},token_file={tmp_path / 'absent'}")
    retention = Retention([spec], from_options(), None, HostPauses(1, 10), clock=lambda: NOW)
    with caplog.at_level(logging.WARNING):
        assert retention.read_all({gitlab.host: ["team/app"]}) == ()
    assert "token_file" in caplog.text and "No such file" in caplog.text and "Traceback" not in caplog.text
