"""The Grafana dashboards: the generator's output, well formed, reading only the exporter's families, and
every query evaluated by a real Prometheus scraping a real exporter that sees a small cluster with problems.
"""

import collections
import importlib.util
import json
import pathlib
import re
import time

import pytest

from exporter.model.records import Status
from exporter.serve.endpoints import Published, Server
from exporter.serve.loop import Exporter
from exporter.sources.kube.clusters import load_clusters
from exporter.sources.registry.checker import Checker
from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.retention import Retention, parse_spec
from exporter.sources.registry.settings import RegistrySettings, from_options
from exporter.sources.registry.shared import SharedCache
from exporter.views.families import BY_NAME
from tests.conftest import make_pod
from tests.kube.test_releases import DEPLOYMENT, helm_object
from tests.support import prometheus
from tests.support import redis as real_redis
from tests.support import registry as real
from tests.support.harbor import Harbor, artifact, policy, rule

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
FILES = sorted(p.name for p in (ROOT / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "table", "heatmap", "bargauge"}
TARGET_LABELS = {"instance", "job"}  # Prometheus adds these to every scraped series
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}
# How Grafana fills its own variables for the queries run here; every dashboard variable means All (`.*`).
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def load_generator():
    spec = importlib.util.spec_from_file_location("dashboards_generator", ROOT / "scripts" / "dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> dict:
    return json.loads((ROOT / "dashboards" / name).read_text())


def panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def targets(dashboard: dict):
    for panel in panels(dashboard):
        for target in panel["targets"]:
            yield panel, target


def query_variables(dashboard: dict) -> list[dict]:
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


def metric_names(expr: str) -> list[str]:
    """Series names an expression reads: identifiers left once strings, matchers, ranges, label lists and
    function calls are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", text)
    return [n for n in names if n.lower() not in PROMQL_WORDS]


def family_of(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and base in BY_NAME and BY_NAME[base].type == "histogram":
            return base
    return name


def selectors(expr: str):
    """(series name, {label: (operator, value)}) for every selector with matchers in `expr`."""
    for name, body in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
        yield name, {label: (op, value)
                     for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', body)}


def every_expr(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for _, t in targets(dashboard)]
    return exprs + [LABEL_VALUES.fullmatch(v["query"])["selector"] for v in query_variables(dashboard)]


def test_metric_names_skip_functions_labels_strings_and_ranges():
    expr = ('sum by (le, on) (rate(a_bucket{x=~"b(c)", y!="d"}[$__rate_interval])) / on (x) group_left (z) '
            'label_replace(b, "u", "(none)", "u", "") or vector(0) > bool 1')
    assert metric_names(expr) == ["a_bucket", "b"]


# -- the files --


def test_committed_dashboards_are_the_generator_output():
    generator = load_generator()
    built = generator.build()
    assert sorted(built) == FILES
    for name, document in built.items():
        assert (ROOT / "dashboards" / name).read_text() == generator.render(document), \
            f"dashboards/{name} was edited by hand: change scripts/dashboards.py and run it"


def test_uids_and_titles_are_distinct():
    dashboards = [load(name) for name in FILES]
    assert len({d["uid"] for d in dashboards}) == len({d["title"] for d in dashboards}) == len(FILES) == 2


@pytest.mark.parametrize("name", FILES)
def test_current_schema_and_layout(name):
    dashboard = load(name)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40 and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in PANEL_TYPES | {"row"}, panel["title"]
        assert panel["title"]
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"} and all(isinstance(v, int) for v in grid.values()), panel["title"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            assert panel["panels"] == [] and "targets" not in panel
        else:
            assert panel["targets"] and panel["description"], panel["title"]
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


@pytest.mark.parametrize("name", FILES)
def test_every_panel_target_and_variable_uses_the_datasource_variable(name):
    dashboard = load(name)
    first = dashboard["templating"]["list"][0]
    assert (first["name"], first["type"], first["query"]) == ("datasource", "datasource", "prometheus")
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip()
    for variable in query_variables(dashboard):
        assert variable["datasource"] == DATASOURCE

    def walk(node):  # no other data source anywhere, but Grafana's own for annotations
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    assert value in (DATASOURCE, {"type": "grafana", "uid": "-- Grafana --"})
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)


@pytest.mark.parametrize("name", FILES)
def test_template_variables_are_label_values_of_families_with_all(name):
    variables = query_variables(load(name))
    assert variables
    for variable in variables:
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*", variable["name"]
        match = LABEL_VALUES.fullmatch(variable["query"])
        assert match and variable["definition"] == variable["query"], variable["query"]
        assert match["label"] == variable["name"]
        metric = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", match["selector"])[0]
        assert match["label"] in set(BY_NAME[family_of(metric)].labels) | TARGET_LABELS


@pytest.mark.parametrize("name", FILES)
def test_every_metric_is_a_family(name):
    for expr in every_expr(load(name)):
        names = metric_names(expr)
        assert names, expr
        for metric in names:
            assert family_of(metric) in BY_NAME, f"{metric} in {expr}"


@pytest.mark.parametrize("name", FILES)
def test_variables_filter_every_family_that_has_their_label(name):
    """A panel follows every variable that applies to its families, and only those: a matcher on a label
    the family lacks would empty the panel as soon as a value is picked."""
    dashboard = load(name)
    names = {v["name"] for v in query_variables(dashboard)}
    used = set()
    panel_exprs = {t["expr"] for _, t in targets(dashboard)}
    for expr in every_expr(dashboard):
        for variable in re.findall(r"\$\{?(\w+)", expr):
            assert variable in names or variable in BUILTINS, f"${variable} is not defined ({expr})"
        for metric, matchers in selectors(expr):
            labels = set(BY_NAME[family_of(metric)].labels) | TARGET_LABELS
            for label, (op, value) in matchers.items():
                if "$" in value:
                    assert (op, value) == ("=~", f"${label}") and label in labels, f"{label} in {expr}"
                    used.add(label)
            if expr in panel_exprs:
                for variable in names & labels:
                    assert variable in matchers, f"{metric} is not filtered by ${variable} in {expr}"
    assert used == names, f"variables used in no query: {names - used}"


# -- every query on a real Prometheus --


def substitute(expr: str) -> str:
    """The query Grafana sends with All selected for every variable."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: BUILTINS.get(m[1], ".*"), expr)


def deployment(name, image):
    rs = f"{name}-6c9f7d8b5"
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "shop", "uid": f"u-{name}",
                      "labels": {"kustomize.toolkit.fluxcd.io/name": "shop",
                                 "kustomize.toolkit.fluxcd.io/namespace": "flux"}},
         "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "main", "image": image}]}}}},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": rs, "namespace": "shop", "uid": f"u-{rs}",
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                           "controller": True}]},
         "spec": {"replicas": 1}},
        make_pod(f"{rs}-0", "shop", image, owner=("apps/v1", "ReplicaSet", rs)),
    ]


def kubelet_event(name, reason, message, pod):
    return {"apiVersion": "v1", "kind": "Event", "reason": reason, "message": message, "count": 1,
            "metadata": {"name": name, "namespace": "shop"}, "source": {"host": "node-1"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": pod}}


@pytest.fixture
def scenario(emulator, kubeconfig, tmp_path):
    """A registry missing one image in use, a cluster with a unit and a bare pod, pulls seen and failed, an
    expected list with an image nobody runs and one the registry lacks; the exporter, with a shared cache, and
    Prometheus on it."""
    (tmp_path / "registry").mkdir()
    reg = real.Registry(tmp_path / "registry", "none")
    started = []
    try:
        store = real_redis.RedisServer(tmp_path)
        started.append(store)
        web, api, batch, gone = (f"{reg.host}/shop/{i}" for i in ("web:1.0", "api:2.0", "batch:3.0", "gone:1.0"))
        reg.delete("shop/web", reg.push_image("shop/web", "1.0"))
        before = reg.push_image("shop/api", "2.0", seed="first build")
        reg.push_image("shop/api", "2.0", seed="second build")  # the tag moved on: a pod still runs `before`
        reg.push_image("shop/batch", "3.0")
        drifted = make_pod("api-old", "shop", api, imagePullSecrets=[{"name": "gone-secret"}])
        drifted["status"] = {"containerStatuses": [{"name": "main", "image": api, "imageID": f"{api}@{before}"}]}
        emulator.create_many(deployment("web", web) + deployment("api", api) + [make_pod("debug", "tools", api), drifted])
        emulator.create_many([  # kept Helm revisions: one whose image is gone, one that cannot be decoded
            helm_object(1, "superseded", namespace="shop", manifest=DEPLOYMENT.format(image=gone)),
            helm_object(1, "superseded", name="broken", namespace="shop", raw=b"bm90IGd6aXA="),
        ])
        # predicted losses: an arm64 node holding the deleted image, and running the amd64-only api; a Kyverno
        # policy requiring a signature api lacks; a Harbor project whose cleanup deletes an image in use
        from tests.emulator.server import Resource

        emulator.register(Resource("kyverno.io", "v1", "clusterpolicies", "ClusterPolicy", namespaced=False))
        harbor = Harbor()
        started.append(harbor)
        harbor.project("library", policy(rule("latestPushedK", 1)))
        harbor.artifacts[("library", "app")] = [artifact("sha256:" + "1" * 64, ("1.0",), pushed="2026-11-01T00:00:00Z"),
                                                artifact("sha256:" + "2" * 64, ("1.1",), pushed="2026-11-02T00:00:00Z")]
        emulator.create_many([
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-arm", "labels": {
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"}},
             "status": {"images": [{"names": [web], "sizeBytes": 1}]}},
            make_pod("api-arm", "shop", api, nodeName="node-arm"),
            make_pod("harbor-app", "shop", f"{harbor.host}/library/app:1.0"),
            {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "signed"},
             "spec": {"validationFailureAction": "Enforce", "rules": [{"name": "verify", "verifyImages": [{
                 "imageReferences": [f"{reg.host}/shop/api*"],
                 "attestors": [{"entries": [{"keys": {"publicKeys": "..."}}]}]}]}]}},
        ])
        emulator.create_many([
            kubelet_event("pulled-api", "Pulled", f'Successfully pulled image "{api}" in 2.5s (2.6s including '
                                                  "waiting). Image size: 31457280 bytes.", "api-6c9f7d8b5-0"),
            kubelet_event("failed-web", "Failed", f'Failed to pull image "{web}": rpc error: code = NotFound desc = '
                                                  f'failed to resolve reference "{web}": not found', "web-6c9f7d8b5-0"),
        ])
        expected = tmp_path / "release.txt"
        expected.write_text(f"# release 1.0\n{api}\n{batch}\n{gone}\n")
        short = {status: 0.5 for status in Status}
        settings = RegistrySettings(hosts=from_options(insecure=[reg.host]).hosts, ttl=short, digest_ttl=0.5)
        published = Published()
        server = Server(published, "127.0.0.1", 0).start()
        started.append(server)
        shared = SharedCache(store.url)
        checker = Checker(settings, shared=shared)
        robot = Keyring.of([Credential(harbor.host, "robot$exporter", "s3cret")])
        retention = Retention([parse_spec(f"harbor={harbor.host}")], from_options(insecure=[harbor.host]), robot,
                              checker.hosts.pauses, interval=1)
        exporter = Exporter(load_clusters(kubeconfig), checker, published,
                            expected=[f"release={expected}"], interval=0.5, watch_timeout=5,
                            rollback_namespaces=["shop"], retention=retention).start()
        started.append(exporter)
        prom = prometheus.Prometheus(tmp_path, [f"127.0.0.1:{server.port}"])
        started.append(prom)
        for series in ("kube_image_missing", "kube_image_unknown_unit", "kube_image_expected_missing",
                       "kube_image_expected_not_running", "kube_image_unexpected", "kube_image_pull_duration_seconds",
                       "kube_image_pull_failures_total", 'kube_image_registry_requests_total{code="404"}',
                       "kube_image_digest_drift", "kube_image_rollback_missing", "kube_image_pull_secret_unusable",
                       "kube_image_shared_cache_up == 1", "kube_image_node_only", "kube_image_platform_missing",
                       "kube_image_signature_missing", "kube_image_retention_at_risk"):
            prom.wait_for(lambda: prom.query(series), series, timeout=60)
        yield prom
    finally:
        for component in reversed(started):
            component.stop()
        reg.stop()


@pytest.mark.slow
@pytest.mark.skipif(not (real.available() and prometheus.available() and real_redis.available()),
                    reason="needs docker-registry, prometheus and redis-server (scripts/setup installs them)")
@pytest.mark.long
def test_every_query_runs_and_shows_data_on_a_real_prometheus(scenario):
    prom = scenario
    for name in FILES:
        check_dashboard(prom, load(name))


def check_dashboard(prom, dashboard):
    for variable in query_variables(dashboard):
        match = LABEL_VALUES.fullmatch(variable["query"])
        found = prom.evaluate(substitute(match["selector"]))
        assert any(match["label"] in r["metric"] for r in found), f"no {match['label']} in {variable['query']}"

    # The scenario gives every panel something to show; each query is run as Grafana runs it (instant or
    # range) and a rejected query fails at once. Rates need two scrapes, so an empty answer is asked again.
    deadline = time.monotonic() + 60
    for panel, target in targets(dashboard):
        expr = substitute(target["expr"])
        where = f"{dashboard['title']} / {panel['title']}"
        while True:
            end = time.time()
            try:
                if target["instant"]:
                    result = prom.evaluate(expr)
                else:
                    result = prom.evaluate_range(expr, end - 60, end, BUILTINS["__interval"])
            except prometheus.QueryError as exc:
                pytest.fail(f"{where}: Prometheus rejects {expr}: {exc}")
            if result or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert result, f"{where}: no data for {expr}"


@pytest.mark.slow
@pytest.mark.skipif(not prometheus.available(), reason="needs prometheus")
def test_a_bad_query_fails_the_strict_evaluation(tmp_path):
    prom = prometheus.Prometheus(tmp_path, [])
    try:
        with pytest.raises(prometheus.QueryError, match="parse error"):
            prom.evaluate("sum by (reason) (rate(kube_image_missing))")
        assert prom.query("sum by (reason) (rate(kube_image_missing))") == []  # the polling query stays lenient
        assert prom.evaluate("vector(1)")[0]["value"][1] == "1"
    finally:
        prom.stop()


@pytest.mark.parametrize("name", FILES)
def test_no_two_panels_share_a_title(name):
    titles = collections.Counter(panel["title"] for panel in load(name)["panels"])
    assert [title for title, n in titles.items() if n > 1] == []


def test_the_health_dashboard_shows_the_exporters_memory_and_cpu():
    panels = load("kube-image-exporter-health.json")["panels"]
    exprs = {panel["title"]: [t["expr"] for t in panel.get("targets", [])] for panel in panels}
    assert any("process_resident_memory_bytes" in e for e in exprs["Resident memory"])
    assert any("rate(process_cpu_seconds_total" in e for e in exprs["CPU"])
    assert all("kube_image_build_info" in e for e in exprs["Resident memory"] + exprs["CPU"])  # not other targets'


def test_the_health_dashboard_reads_the_shared_cache_gauge_as_words():
    panel = next(p for p in load("kube-image-exporter-health.json")["panels"] if p["title"] == "Shared cache")
    assert [t["expr"] for t in panel["targets"]] == ['kube_image_shared_cache_up{instance=~"$instance"}']
    defaults = panel["fieldConfig"]["defaults"]
    words = {value: (m["text"], m["color"]) for value, m in defaults["mappings"][0]["options"].items()}
    assert words == {"0": ("not answering", "red"), "1": ("answering", "green")}
    assert defaults["noValue"] == "not configured"  # the gauge is absent without --cache-url
