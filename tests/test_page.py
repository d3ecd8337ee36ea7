"""The status page view: grouping of what is missing, first-seen times, source health, escaping, redaction,
and the `/` route that serves it with its security headers."""

import html
import re
import pathlib
import subprocess
import sys
import urllib.request

import pytest

from exporter.common.redact import redact
from exporter.model.health import RegistryLimit
from exporter.model.records import Status
from exporter.serve import firstseen
from exporter.serve.endpoints import LazyPage, Page, Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.views import page
from exporter.views.families import BY_NAME
from tests.conftest import make_pod
from tests.support import eventually, free_port, http_get, stop_process
from tests.support.browser import Text

NOW = 1_800_000_000.0


def missing(cluster, namespace, kind, workload, container, image, unit, reason="absent", ctype="container"):
    return ((cluster, namespace, kind, workload, container, ctype, image, unit, reason), 1.0)


SERIES = {
    "kube_image_missing": (
        missing("prod", "shop", "CronJob", "report", "report", "reg.example/shop/report:0.9", "shop-backend"),
        missing("prod", "shop", "Deployment", "web", "web", "reg.example/shop/web:1.4", "shop-frontend"),
        missing("prod", "shop", "Deployment", "web", "migrate", "reg.example/shop/migrate:1", "shop-frontend",
                "unauthorized", "init"),
        missing("prod", "tools", "Pod", "debug", "debug", "reg.example/tools/debug:1", ""),
        missing("staging", "shop", "Deployment", "web", "web", "reg.example/shop/web:1.5", "shop-frontend"),
    ),
    "kube_image_workload_inactive": ((("prod", "shop", "CronJob", "report"), 1.0),),
    "kube_image_expected_missing": ((("release-1.4", "reg.example/shop/report:0.9", "shop-backend", "absent"), 1.0),),
    "kube_image_expected_not_running": ((("prod", "release-1.4", "reg.example/shop/admin:1.4", ""), 1.0),),
    "kube_image_expected_list_up": ((("release-1.4",), 1.0), (("release-1.5",), 0.0)),
    "kube_image_expected_list_images": ((("release-1.4",), 4.0),),
    "kube_image_expected_list_load_errors_total": ((("release-1.5",), 3.0),),
    "kube_image_digest_drift": (
        (("prod", "shop", "Deployment", "web", "web", "container", "reg.example/shop/web:1.4", "shop-frontend",
          "sha256:aaa", "sha256:bbb"), 1.0),),
    "kube_image_rollback_missing": ((("prod", "shop", "web", "3", "reg.example/shop/web:1.3", "absent"), 1.0),),
    "kube_image_watch_up": ((("prod", "Pod"), 1.0), (("prod", "Event"), 0.0)),
    "kube_image_watch_objects": ((("prod", "Pod"), 12.0),),
    "kube_image_watch_errors_total": ((("prod", "Event"), 4.0),),
    "kube_image_status": (
        (("prod", "reg.example/shop/web:1.4", "reg.example", "absent"), 1.0),
        (("prod", "reg.example/shop/api:2", "reg.example", "available"), 1.0),
        (("prod", "docker.io/library/nginx:1", "docker.io", "rate_limited"), 1.0),
    ),
    "kube_image_registry_requests_total": (
        (("reg.example", "HEAD", "200"), 5.0), (("reg.example", "HEAD", "404"), 2.0),
        (("docker.io", "HEAD", "429"), 7.0),
    ),
    "kube_image_pull_secret_unusable": ((("prod", "shop", "regcred", "invalid"), 1.0),),
    "kube_image_pull_failures_total": ((("prod", "reg.example", "not_found"), 2.0),),
}


def render(series=SERIES, **kwargs) -> bytes:
    return page.render(page.PageInput(series, NOW, "1.2.3", **kwargs))


def section(body: bytes, name: str) -> str:
    text = body.decode()
    start = text.index(f'<section id="{name}">')
    return text[start:text.index("</section>", start)]


def test_missing_images_are_grouped_by_cluster_then_unit_then_workload():
    body = section(render(), "missing")
    headings = re.findall(r"<h[34][^>]*>([^<]*)</h[34]>", body)
    assert headings == ["cluster prod", "unit shop-backend", "unit shop-frontend", "no unit resolved",
                        "cluster staging", "unit shop-frontend"]
    prod_frontend = body[body.index("unit shop-frontend"):body.index("no unit resolved")]
    rows = Text(prod_frontend.encode()).text
    assert "Deployment shop/web" in rows and "reg.example/shop/web:1.4" in rows
    assert "migrate" not in rows  # unauthorized: unverified, in its own section
    unverified = Text(section(render(), "unverified").encode()).text
    assert "Unverified images (1)" in unverified and "migrate (init)" in unverified and "unauthorized" in unverified
    assert "reg.example/shop/web:1.5" not in rows  # staging's, under its own cluster
    assert "runs nothing now" in Text(body[:body.index("unit shop-frontend")].encode()).text  # the suspended CronJob


def test_missing_since_shows_the_first_seen_time_and_how_long_ago():
    key = ("kube_image_missing", "prod", "shop", "CronJob", "report", "report", "container",
           "reg.example/shop/report:0.9", "shop-backend")
    text = Text(render(first_seen={key: NOW - 3 * 3600 - 5 * 60})).text
    assert "2027-01-15 04:55:00 UTC (3h 5m)" in text


def test_first_seen_is_kept_while_seen_and_forgotten_when_cleared():
    seen = firstseen.advance({}, page.tracked_keys(SERIES), 100.0)
    assert len(seen) == 5 + 1 + 1 and set(seen.values()) == {100.0}
    # the reason changes (absent -> unauthorized): still the same problem, same first-seen time
    changed = dict(SERIES, kube_image_missing=(missing("prod", "shop", "CronJob", "report", "report",
                                                        "reg.example/shop/report:0.9", "shop-backend", "unauthorized"),))
    later = firstseen.advance(seen, page.tracked_keys(changed), 200.0)
    report_key = ("kube_image_missing", "prod", "shop", "CronJob", "report", "report", "container",
                  "reg.example/shop/report:0.9", "shop-backend")
    assert later[report_key] == 100.0
    assert len(later) == 3  # the cleared references are forgotten
    back = firstseen.advance(firstseen.advance(later, [], 300.0), page.tracked_keys(changed), 400.0)
    assert back[report_key] == 400.0  # cleared, then back: a new problem


def test_first_seen_merges_with_a_store_and_writes_only_what_changed():
    memory, stored = {"a": 50.0, "b": 300.0}, {"b": 200.0, "c": 100.0}
    assert firstseen.earliest(memory, stored) == {"a": 50.0, "b": 200.0, "c": 100.0}  # the earlier sighting wins
    assert firstseen.changes(stored, {"b": 200.0, "d": 400.0}) == ({"d": 400.0}, ["c"])
    assert firstseen.changes(stored, stored) == ({}, [])
    assert firstseen.group(["x1", "y1", "x2"], lambda key: key[0]) == {"x": ["x1", "x2"], "y": ["y1"]}
    assert [page.tracked_cluster(key) for key in page.tracked_keys(SERIES)] == \
           ["prod"] * 4 + ["staging", None, "prod"]  # an expected list's problem belongs to no one cluster


class MemoryStore:
    """What `firstseen.Persisted` asks of the shared cache, in memory, with an outage that loses the data."""

    def __init__(self):
        self.up, self.data, self.writes = True, {}, []

    def load(self, scopes):
        return {key: seen for scope in scopes for key, seen in self.data.get(scope, {}).items()} if self.up else None

    def save(self, scopes, upserts, deletes):
        if not self.up:
            return False
        if upserts or deletes:
            self.writes.append((upserts, deletes))
        for scope, times in upserts.items():
            self.data.setdefault(scope, {}).update(times)
        for scope, keys in deletes.items():
            for key in keys:
                self.data.get(scope, {}).pop(key, None)
        return True


def test_persisted_first_seen_survives_a_restart_and_a_wiped_store():
    store = MemoryStore()
    one = firstseen.Persisted(store, ["s"], lambda key: "s")
    seen = firstseen.advance(one.merged({}), ["a", "b"], 100.0)
    one.save(seen)
    one.save(seen)
    assert store.writes == [({"s": {"a": 100.0, "b": 100.0}}, {})]  # an unchanged cycle writes nothing

    restarted = firstseen.Persisted(store, ["s"], lambda key: "s")  # a new process
    seen = firstseen.advance(restarted.merged({}), ["a"], 500.0)
    assert seen == {"a": 100.0}  # "missing since" kept across the restart
    restarted.save(seen)
    assert store.data == {"s": {"a": 100.0}}  # "b" cleared: deleted

    store.up, store.data = False, {}  # away, and wiped
    seen = firstseen.advance(restarted.merged(seen), ["a"], 600.0)
    restarted.save(seen)
    assert seen == {"a": 100.0} and store.data == {}  # memory carries on
    store.up = True
    restarted.save(firstseen.advance(restarted.merged(seen), ["a"], 700.0))
    assert store.data == {"s": {"a": 100.0}}  # written back once the store answers


def test_expected_lists_drift_and_rollback_sections():
    body = render()
    expected = Text(section(body, "expected").encode()).text
    assert "list release-1.4 loaded 4 images, 1 missing from their registry, 1 not running" in expected
    assert "reg.example/shop/admin:1.4" in expected and "list release-1.5 failing to load" in expected
    drift = Text(section(body, "drift").encode()).text
    assert "Deployment shop/web" in drift and "sha256:aaa sha256:bbb" in drift
    rollback = Text(section(body, "rollback").encode()).text
    assert "shop/web 3 reg.example/shop/web:1.3 absent" in rollback


def test_source_health_watches_lists_registries_secrets_cache():
    body = render(watch_errors={("prod", "Event"): "403 Forbidden: events is forbidden"},
                  list_sources={"release-1.4": ("https://ci:s3cret@lists.example/release-1.4.txt",)})
    sources = Text(section(body, "sources").encode()).text
    assert "prod Event down 0 4 0 403 Forbidden: events is forbidden" in sources
    assert "prod Pod up 12 0 0" in sources
    assert "release-1.5 failing 0 3" in sources
    assert "https://lists.example/release-1.4.txt" in sources and "s3cret" not in body.decode()
    assert "reg.example 1 absent, 1 available 200: 5, 404: 2 never refused" in sources
    assert "docker.io 1 rate_limited 429: 7 limited now (1 images waiting)" in sources
    assert "prod shop/regcred invalid" in sources
    assert "Image pulls (kubelet events) cluster registry failure seen prod reg.example not_found 2" in sources
    assert "Shared cache None configured" in sources
    cached = Text(section(render(dict(SERIES, kube_image_shared_cache_up=(((), 0.0),))), "sources").encode()).text
    assert "Shared cache not answering" in cached


def test_registry_pauses_and_learned_rates_are_shown_with_their_reason():
    limits = {
        "docker.io": RegistryLimit("docker.io", NOW + 90, "429 Too Many Requests", True, 4.25),
        "reg.example": RegistryLimit("reg.example", NOW - 1, "old pause", False),  # over: not shown
        "down.example": RegistryLimit("down.example", NOW + 30, "cannot connect to https://u:s3cret@down.example/v2/"),
    }
    body = render(registry_limits=limits)
    sources = Text(section(body, "sources").encode()).text
    assert ("docker.io 1 rate_limited 429: 7 limited now (1 images waiting) paused by the registry until "
            "2027-01-15 08:01:30 UTC (429 Too Many Requests) slowed to 4.2 requests/s after 429s") in sources
    assert "reg.example 1 absent, 1 available 200: 5, 404: 2 never refused Registries" not in sources
    assert "old pause" not in sources
    # a host known only by its pause (nothing checked there this cycle) still has its row
    assert ("down.example never refused backing off after failures until 2027-01-15 08:00:30 UTC "
            "(cannot connect to https://down.example/v2/)") in sources
    assert "s3cret" not in body.decode()


def test_serve_shows_a_registry_pause_on_the_page(emulator, kubeconfig, httpserver):
    from werkzeug import Response

    from exporter.sources.registry.settings import from_options

    host = f"127.0.0.1:{httpserver.port}"
    httpserver.expect_request("/v2/").respond_with_data("{}")
    httpserver.expect_request("/v2/shop/web/manifests/1", method="HEAD").respond_with_response(
        Response(status=429, headers={"Retry-After": "600"}))
    emulator.create(make_pod("web", "shop", f"{host}/shop/web:1"))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(from_options(insecure=[host])), published,
                        interval=0.3, watch_timeout=5).start()
    try:
        assert eventually(lambda: published.ready and "paused by the registry" in Text(published.page.get().body).text,
                          timeout=30)
        text = Text(published.page.get().body).text
        assert (f"{host} 1 rate_limited 200: 1, 429: 1 limited now (1 images waiting) paused by the registry until "
                f"{page._when(exporter.checker.host_limits()[0].paused_until)} ({host}/shop/web:1: rate limited) "
                "slowed to 1.0 requests/s after 429s") in text
    finally:
        exporter.stop()


def test_header_links_version_cycle_time_and_readiness():
    parsed = Text(render(not_ready_reason="first inventory and check round not done yet"))
    links = [v for k, v in parsed.attrs if k == "href" and not v.startswith(page.RUNBOOK)]
    assert links == ["metrics", "report", "healthz", "readyz"]  # relative
    assert "version 1.2.3" in parsed.text and "last cycle 2027-01-15 08:00:00 UTC" in parsed.text
    assert "not ready: first inventory and check round not done yet" in parsed.text
    # one meaning of missing: absent on running workloads; the suspended CronJob's and the unauthorized apart
    assert "3 references missing" in parsed.text and "1 missing on an inactive workload" in parsed.text
    assert "1 reference unverified" in parsed.text and "0 references without a unit" in parsed.text
    assert "1 watch down" in parsed.text


def test_an_empty_cycle_says_all_is_well():
    text = Text(page.render(page.PageInput({}, NOW, "1.2.3"))).text
    assert "Every image in use is available in its registry." in text
    assert "No expected list is configured" in text and "No watch has reported yet." in text


HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>"\'&'


def test_every_value_from_outside_is_escaped():
    hostile = {
        "kube_image_missing": (missing(HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE, HOSTILE,
                                       HOSTILE),),
        "kube_image_expected_missing": (((HOSTILE, HOSTILE, HOSTILE, HOSTILE), 1.0),),
        "kube_image_expected_not_running": (((HOSTILE, HOSTILE, HOSTILE, HOSTILE), 1.0),),
        "kube_image_expected_list_up": (((HOSTILE,), 1.0),),
        "kube_image_digest_drift": (((HOSTILE,) * 10, 1.0),),
        "kube_image_rollback_missing": (((HOSTILE,) * 6, 1.0),),
        "kube_image_watch_up": (((HOSTILE, HOSTILE), 0.0),),
        "kube_image_status": (((HOSTILE, HOSTILE, HOSTILE, HOSTILE), 1.0),),
        "kube_image_registry_requests_total": (((HOSTILE, HOSTILE, HOSTILE), 1.0),),
        "kube_image_pull_secret_unusable": (((HOSTILE,) * 4, 1.0),),
        "kube_image_rollback_release_errors_total": (((HOSTILE,) * 3, 1.0),),
        "kube_image_pull_failures_total": (((HOSTILE,) * 3, 1.0),),
    }
    body = page.render(page.PageInput(hostile, NOW, HOSTILE, not_ready_reason=HOSTILE,
                                      watch_errors={(HOSTILE, HOSTILE): HOSTILE},
                                      list_sources={HOSTILE: (HOSTILE,)}))
    parsed = Text(body)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [k for k, _ in parsed.attrs if k.startswith("on") or k == "src"]
    assert parsed.text.count('<script>document.title="pwned"</script>') >= 30  # shown as text, everywhere
    assert "<script" not in body.decode() and "<img" not in body.decode()


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pa55@lists.example/a.txt", "https://lists.example/a.txt"),
    ("Get http://admin:hunter2@10.0.0.1:6443/api: refused", "Get http://10.0.0.1:6443/api: refused"),
    ("https://lists.example/a.txt?token=abc&x=1", "https://lists.example/a.txt?token=REDACTED&x=REDACTED"),
    ("https://lists.example/a.txt?x=1&access_token=abc#top",
     "https://lists.example/a.txt?x=REDACTED&access_token=REDACTED#REDACTED"),
    ("key=/etc/lists/key.txt", "key=/etc/lists/key.txt"),
    ("reg.example/shop/web:1.4", "reg.example/shop/web:1.4"),
])
def test_urls_are_shown_without_credentials(text, shown):
    assert redact(text) == shown
    assert html.escape(shown) in render(list_sources={"release-1.4": (text,)}).decode()


def test_the_page_reads_declared_families_only():
    # the shared cache's family comes with the fleet settings; until then the page says "none configured"
    assert set(page.READS) - set(BY_NAME) <= {"kube_image_shared_cache_up"}
    assert set(SERIES) <= set(page.READS)


def test_tables_are_capped_and_the_rest_counted():
    many = {"kube_image_missing": tuple(missing("prod", "ns", "Pod", f"p{i:03}", "c", f"r/i:{i}", "")
                                        for i in range(30))}
    body = render(many, max_rows=10)
    assert body.count(b"<tr><td>Pod ns/") == 10
    assert "20 more not shown here" in Text(body).text


@pytest.fixture
def server():
    published = Published()
    srv = Server(published, "127.0.0.1", 0).start()
    yield published, srv
    srv.stop()


def test_root_serves_the_page_with_a_strict_policy(server):
    published, srv = server
    assert http_get(f"http://127.0.0.1:{srv.port}/") == (200, "kube-image-exporter: /metrics /report /healthz /readyz\n")
    built = []
    published.page = LazyPage(lambda: (built.append(1) or render(), page.CONTENT_TYPE))
    for _ in range(2):
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=5) as response:
            body, headers = response.read(), response.headers
    assert built == [1]  # built once for the cycle, however often it is opened
    assert headers["Content-Type"] == "text/html; charset=utf-8" and b"cluster prod" in body
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    published.page = Page.of(b"<p>x</p>", page.CONTENT_TYPE)
    assert http_get(f"http://127.0.0.1:{srv.port}/") == (200, "<p>x</p>")
    assert http_get(f"http://127.0.0.1:{srv.port}/nope")[0] == 404


def test_web_ui_false_leaves_the_plain_links_at_root(emulator, kubeconfig):
    emulator.create(make_pod("web", "shop", "registry.invalid.example/Shop/web:1"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "exporter", "serve", "--kubeconfig", str(kubeconfig),
                             "--listen", f"127.0.0.1:{port}", "--interval", "1", "--web-ui=false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert eventually(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=30)
        assert 'reason="invalid_reference"' in http_get(f"http://127.0.0.1:{port}/metrics")[1]
        assert http_get(f"http://127.0.0.1:{port}/") == (200, "kube-image-exporter: /metrics /report /healthz /readyz\n")
    finally:
        stop_process(proc)


def test_web_ui_bad_value_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "exporter", "serve", "--web-ui=maybe"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "web_ui: Input should be a valid boolean" in result.stderr


def test_serve_keeps_first_seen_across_cycles_and_forgets_it_when_cleared(emulator, kubeconfig):
    emulator.create(make_pod("p", "ns1", "bad/Image:1"))
    published = Published()
    exporter = Exporter(load_clusters(kubeconfig), Checker(), published, interval=0.3, watch_timeout=5).start()
    key = ("kube_image_missing", "one", "ns1", "Pod", "p", "main", "container", "bad/Image:1", "")
    try:
        assert eventually(lambda: key in exporter.first_seen, timeout=30)
        since, cycles = exporter.first_seen[key], exporter.cycles
        assert eventually(lambda: exporter.cycles >= cycles + 3, timeout=30)
        assert exporter.first_seen[key] == since
        text = Text(published.page.get().body).text
        assert f"ns1/p main bad/Image:1 invalid_reference {page._when(since)}" in text
        emulator.delete("Pod", "ns1", "p")
        assert eventually(lambda: key not in exporter.first_seen, timeout=30)
    finally:
        exporter.stop()


def test_references_without_a_unit_are_listed_as_the_banner_counts_them():
    unknown = {"kube_image_unknown_unit": (
        (("prod", "tools", "Pod", "debug", "debug", "container", "reg.example/tools/debug:1"), 1.0),
        (("prod", "tools", "Pod", "shell", "sh", "ephemeral", "reg.example/tools/sh:1"), 1.0))}
    body = render(dict(SERIES, **unknown))
    assert "2 references without a unit" in Text(body).text
    listed = Text(section(body, "unknown-unit").encode()).text
    assert "References without a unit (2)" in listed
    assert "Pod tools/debug debug reg.example/tools/debug:1" in listed and "Pod tools/shell sh" in listed
    assert "Every reference belongs to a unit." in Text(section(render(), "unknown-unit").encode()).text


def test_each_problem_links_to_the_runbook_section_of_the_alert_that_covers_it():
    """Every status but available has a section; each reason on the page is a link to it."""
    runbook = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "runbook.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    assert set(page.RUNBOOK_BY_REASON) == set(Status) - {Status.AVAILABLE}
    assert set(page.RUNBOOK_BY_REASON.values()) <= anchors
    body = render().decode()
    assert f'<a href="{page.RUNBOOK}#kubeimagemissing">absent</a>' in body
    assert f'<a href="{page.RUNBOOK}#kubeimagecredentialsfailing">unauthorized</a>' in body


def test_each_section_of_problems_links_to_its_alerts_runbook_section():
    runbook = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "runbook.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    unknown = (("prod", "tools", "Pod", "debug", "debug", "container", "reg.example/tools/debug:1"), 1.0)
    links = set(re.findall(rf'href="{re.escape(page.RUNBOOK)}#(\w+)"', render(
        dict(SERIES, kube_image_shared_cache_up=(((), 0.0),), kube_image_unknown_unit=(unknown,))).decode()))
    assert links <= anchors
    assert {"kubeimagemissing", "kubeimagecredentialsfailing", "kubeimageexpectedmissing", "kubeimagedigestdrift",
            "kubeimagerollbackmissing", "kubeimagewatchfailing", "kubeimageexpectedlistfailing",
            "kubeimagesharedcachedown", "kubeimageunknownunit"} <= links
