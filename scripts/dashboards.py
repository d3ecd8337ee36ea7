#!/usr/bin/env python3
"""Build the Grafana dashboards in dashboards/ from the compact panel definitions below.

Edit the definitions here, then run `scripts/dashboards.py` to rewrite the JSON files (sorted keys, indent 2);
`tests/dashboards/test_dashboards.py` fails when the committed JSON is not this script's output.

Every query reads families of exporter.views.families. `select()` adds a `label=~"$variable"` matcher for each
template variable that is a label of the family (or a label Prometheus adds to every target), and only
those: a matcher on a label a family lacks would empty the panel as soon as a value is picked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from exporter.model.records import MISSING, UNVERIFIED, reason_pattern
from exporter.views.families import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TARGET_LABELS = frozenset({"instance", "job"})  # added by Prometheus to every series it scrapes
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
TAGS = ["kube-image-exporter", "kubernetes", "container-images"]

GREEN_RED = [{"color": "green", "value": None}, {"color": "red", "value": 1}]
GREEN_ORANGE = [{"color": "green", "value": None}, {"color": "orange", "value": 1}]
NEUTRAL = [{"color": "text", "value": None}]
RED_GREEN = [{"color": "red", "value": None}, {"color": "green", "value": 1}]
FRESHNESS = [{"color": "green", "value": None}, {"color": "orange", "value": 300}, {"color": "red", "value": 600}]


def family_of(metric: str) -> str:
    """The family a series name belongs to: histogram series lose their _bucket/_sum/_count suffix."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = metric.removesuffix(suffix)
        if base != metric and BY_NAME.get(base) is not None and BY_NAME[base].type == "histogram":
            return base
    return metric


def select(metric: str, variables: tuple[str, ...], *matchers: str) -> str:
    """`metric{label=~"$label", ...}` for each variable that is a label of the metric's family, plus `matchers`."""
    labels = set(BY_NAME[family_of(metric)].labels) | TARGET_LABELS
    parts = [f'{v}=~"${v}"' for v in variables if v in labels] + list(matchers)
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


# -- targets and panels --


def target(expr: str, legend: str = "__auto", instant: bool = False, fmt: str = "time_series") -> dict:
    return {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "format": fmt, "instant": instant,
            "legendFormat": legend, "range": not instant}


def table_target(expr: str) -> dict:
    return target(expr, instant=True, fmt="table")


def _panel(kind: str, title: str, description: str, targets: list[dict], w: int, h: int, unit: str = "short",
           thresholds: list[dict] | None = None, options: dict | None = None, custom: dict | None = None,
           overrides: list[dict] | None = None, transformations: list[dict] | None = None) -> dict:
    defaults: dict = {"unit": unit}
    if thresholds is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        defaults["color"] = {"mode": "thresholds"}
    if custom:
        defaults["custom"] = custom
    panel = {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "targets": [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "gridPos": {"w": w, "h": h},
    }
    if transformations:
        panel["transformations"] = transformations
    return panel


def _reduce(fields: str = "", values: bool = False) -> dict:
    return {"calcs": ["lastNotNull"], "fields": fields, "values": values}


def stat(title, description, targets, w=6, h=4, unit="short", thresholds=GREEN_RED, text_mode="auto",
         fields="", graph="area"):
    options = {"colorMode": "value", "graphMode": graph, "justifyMode": "auto", "orientation": "auto",
               "reduceOptions": _reduce(fields, values=bool(fields)), "textMode": text_mode}
    return _panel("stat", title, description, targets, w, h, unit, thresholds, options)


def timeseries(title, description, targets, w=12, h=8, unit="short", bars=False, stack=False, min_zero=True):
    custom = {"drawStyle": "bars" if bars else "line", "fillOpacity": 80 if bars else 10, "lineWidth": 1,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"group": "A", "mode": "normal" if stack else "none"}}
    if min_zero:
        custom["axisSoftMin"] = 0
    options = {"legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "right",
                          "showLegend": True},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, description, targets, w, h, unit, options=options, custom=custom)


def bargauge(title, description, targets, w=12, h=8, unit="short", thresholds=GREEN_RED):
    options = {"displayMode": "gradient", "minVizHeight": 16, "minVizWidth": 8, "orientation": "horizontal",
               "reduceOptions": _reduce(), "showUnfilled": True, "valueMode": "color"}
    return _panel("bargauge", title, description, targets, w, h, unit, thresholds, options)


def table(title, description, targets, columns, w=24, h=8, values=None, hide_value=True, overrides=None,
          sort_by=None):
    """A table of instant series: `columns` in this order; the sample value is hidden, or named by `values`;
    rows sorted by the column `sort_by`, descending."""
    exclude = {"Time": True, "__name__": True, "instance": True, "job": True}
    rename = dict(values or {})
    if hide_value:
        exclude["Value"] = True
    order = {name: i for i, name in enumerate(columns + list(rename))}
    transformations = [{"id": "organize", "options": {"excludeByName": exclude, "indexByName": order,
                                                      "renameByName": rename}}]
    if len(targets) > 1:
        transformations.insert(0, {"id": "merge", "options": {}})
    options = {"cellHeight": "sm", "footer": {"countRows": False, "reducer": ["sum"], "show": False},
               "showHeader": True, "sortBy": [{"desc": True, "displayName": sort_by}] if sort_by else []}
    return _panel("table", title, description, targets, w, h, options=options, overrides=overrides,
                  transformations=transformations)


def heatmap(title, description, targets, w=12, h=8):
    options = {"calculate": False, "cellGap": 1, "cellValues": {},
               "color": {"exponent": 0.5, "fill": "dark-orange", "mode": "scheme", "reverse": False,
                         "scale": "exponential", "scheme": "Oranges", "steps": 64},
               "exemplars": {"color": "rgba(255,0,255,0.7)"}, "filterValues": {"le": 1e-9},
               "legend": {"show": True}, "rowsFrame": {"layout": "auto", "value": "pulls/s"},
               "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
               "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"}}
    return _panel("heatmap", title, description, targets, w, h, "short", options=options)


def shared_cache(panel: dict) -> dict:
    """The shared cache's up gauge read as words; no series (no --cache-url) reads "not configured"."""
    defaults = panel["fieldConfig"]["defaults"]
    defaults["mappings"] = [{"type": "value", "options": {
        "0": {"text": "not answering", "color": "red", "index": 0},
        "1": {"text": "answering", "color": "green", "index": 1}}}]
    defaults["noValue"] = "not configured"
    return panel


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def override(column: str, **properties) -> dict:
    return {"matcher": {"id": "byName", "options": column},
            "properties": [{"id": key, "value": value} for key, value in properties.items()]}


# -- template variables --


def datasource_variable() -> dict:
    return {"current": {}, "hide": 0, "includeAll": False, "label": "Data source", "multi": False,
            "name": "datasource", "options": [], "query": "prometheus", "refresh": 1, "regex": "",
            "skipUrlSync": False, "type": "datasource"}


def query_variable(name: str, label: str, query: str) -> dict:
    """Multi-value with All; All means `.*` so series without the label (no unit, say) still match."""
    return {"allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DATASOURCE, "definition": query, "hide": 0, "includeAll": True, "label": label,
            "multi": True, "name": name, "options": [], "query": query, "refresh": 2, "regex": "",
            "skipUrlSync": False, "sort": 1, "type": "query"}


# -- layout and the dashboard document --


def layout(panels: list[dict]) -> list[dict]:
    """Place panels left to right on the 24-column grid, wrapping lines; number them from 1."""
    x = y = line_height = 0
    placed = []
    for number, panel in enumerate(panels, 1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24 or panel["type"] == "row":
            y += line_height
            x = line_height = 0
        placed.append({**panel, "id": number, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x += w
        line_height = max(line_height, h)
        if panel["type"] == "row":
            y += h
            x = line_height = 0
    return placed


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [{"asDropdown": False, "icon": "external link", "includeVars": True, "keepTime": True,
                   "tags": ["kube-image-exporter"], "targetBlank": False, "title": "kube-image-exporter",
                   "type": "dashboards"}],
        "panels": layout(panels),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": [datasource_variable(), *variables]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


REFERENCE_COLUMNS = ["cluster", "namespace", "workload_kind", "workload", "container", "container_type", "image",
                     "unit"]
WORKLOAD = "cluster, namespace, workload_kind, workload"
# the alerts' grouping: a reference counted once whatever the number of exporter replicas scraped
ONCE = f"{WORKLOAD}, container, image, unit, reason"


def once(selector: str) -> str:
    return f"max by ({ONCE}) ({selector})"


def classed(s, statuses, active: bool) -> str:
    """The references of one class (README "What missing means"), of running workloads or of inactive ones, each
    once: the expression KubeImageMissing and KubeImageMissingInactive evaluate."""
    selector = once(s("kube_image_missing", f'reason=~"{reason_pattern(statuses)}"'))
    return f"{selector} {'unless' if active else 'and'} on ({WORKLOAD}) kube_image_workload_inactive"


def overview() -> dict:
    scope = ("cluster", "namespace", "unit")

    def s(metric: str, *matchers: str) -> str:
        return select(metric, scope, *matchers)

    problems = s("kube_image_missing")  # every reference not available, whatever its class
    slowest = f"topk(10, {s('kube_image_pull_duration_seconds')})"
    rate_interval = "[$__rate_interval]"
    # Namespaces and units are offered where images are missing: what this dashboard is for.
    variables = [
        query_variable("cluster", "Cluster", "label_values(kube_image_status, cluster)"),
        query_variable("namespace", "Namespace",
                       f"label_values({select('kube_image_missing', ('cluster',))}, namespace)"),
        query_variable("unit", "Unit",
                       f"label_values({select('kube_image_missing', ('cluster', 'namespace'))}, unit)"),
    ]
    panels = [
        row("Missing from registries"),
        stat("Missing references", "Container references of running workloads whose image the registry says is "
             f"gone or can never be pulled ({', '.join(MISSING)}): what KubeImageMissing pages on, each once "
             "whatever the number of exporter replicas.",
             [target(f"count({classed(s, MISSING, active=True)}) or vector(0)")], w=4),
        stat("Missing images", "Unique images (per cluster) that running workloads use and the registry says are "
             "gone or can never be pulled.",
             [target(f"count(count by (cluster, image) ({classed(s, MISSING, active=True)})) or vector(0)")], w=4),
        stat("Unverified references", "Container references of running workloads whose image could not be "
             f"checked ({', '.join(UNVERIFIED)}): not known to be missing; the registry alerts say why.",
             [target(f"count({classed(s, UNVERIFIED, active=True)}) or vector(0)")], thresholds=GREEN_ORANGE,
             w=4),
        stat("Missing, inactive workloads", "Container references of workloads that run nothing now (scaled to "
             "zero, suspended) whose image is missing: a scale-up or the next schedule fails.",
             [target(f"count({classed(s, MISSING, active=False)}) or vector(0)")], thresholds=GREEN_ORANGE,
             w=4),
        stat("References without a unit", "Container references whose owning unit (Flux, Helm, Argo CD, "
             "top-level controller) could not be resolved.",
             [target(f"count({s('kube_image_unknown_unit')}) or vector(0)")], thresholds=GREEN_ORANGE, w=4),
        stat("Unique images", "Unique images in use (per cluster), whatever their registry status.",
             [target(f"count({s('kube_image_status')}) or vector(0)")], thresholds=NEUTRAL, w=4),
        timeseries("References not available by reason", "Container references whose image is not available, by "
                   f"registry status: missing ({', '.join(MISSING)}) and unverified ({', '.join(UNVERIFIED)}).",
                   [target(f"count by (reason) ({once(problems)})", "{{reason}}")], stack=True),
        bargauge("References not available by unit", "Container references whose image is not available, per "
                 "owning unit; (none) when the unit is unknown.",
                 [target(f'count by (unit) (label_replace({once(problems)}, "unit", "(none)", "unit", ""))',
                         "{{unit}}", instant=True)], w=6),
        bargauge("References not available by namespace", "Container references whose image is not available, "
                 "per cluster and namespace.",
                 [target(f"count by (cluster, namespace) ({once(problems)})", "{{cluster}} / {{namespace}}",
                         instant=True)], w=6),
        table("Each reference not available", "Every container reference whose image is not available, with the "
              "registry status as reason (missing or unverified: see the headline stats).",
              [table_target(problems)], REFERENCE_COLUMNS + ["reason"], h=10),
        row("Registries"),
        table("Images by registry and status", "Unique images per registry endpoint and current status.",
              [table_target(f"count by (registry, status) ({s('kube_image_status')})")], ["registry", "status"],
              w=12, values={"Value": "images"}, hide_value=False, sort_by="images"),
        timeseries("Images by status", "Unique images per registry status over time.",
                   [target(f"count by (status) ({s('kube_image_status')})", "{{status}}")], stack=True),
        table("Each reference without a unit", "Container references whose owning unit could not be resolved: "
              "bare pods and objects outside any Flux, Helm or Argo CD release.",
              [table_target(s("kube_image_unknown_unit"))], REFERENCE_COLUMNS[:-1]),
        row("Expected lists"),
        stat("Expected list drift", "Images of expected lists missing from their registry or run by no "
             "workload, and running images that no expected list names.",
             [target(f"count({s('kube_image_expected_missing')}) or vector(0)", "missing from registry"),
              target(f"count({s('kube_image_expected_not_running')}) or vector(0)", "not running"),
              target(f"count({s('kube_image_unexpected')}) or vector(0)", "unexpected")],
             w=24, thresholds=GREEN_ORANGE, text_mode="value_and_name"),
        table("Expected images missing from registries", "Images of expected lists that are not available "
              "in their registry: the release cannot roll out.",
              [table_target(s("kube_image_expected_missing"))], ["list", "image", "unit", "reason"], w=8),
        table("Expected images not running", "Images of expected lists that no workload of the cluster uses.",
              [table_target(s("kube_image_expected_not_running"))], ["cluster", "list", "image", "unit"], w=8),
        table("Running images in no expected list", "Container references whose image no expected list "
              "names (shown only when lists are configured).",
              [table_target(s("kube_image_unexpected"))], REFERENCE_COLUMNS, w=8),
        row("Restarts and rollbacks"),
        stat("Drifted references", "Running containers whose tag now names another image in the registry: a "
             "restart or a new node runs a different image.",
             [target(f"count({s('kube_image_digest_drift')}) or vector(0)")], thresholds=GREEN_ORANGE),
        stat("Rollback images missing", "Images of kept Helm release revisions that are not available: a "
             "rollback to that revision would fail (namespaces given with --rollback-images).",
             [target(f"count({s('kube_image_rollback_missing')}) or vector(0)")], thresholds=GREEN_ORANGE),
        table("Digest drift", "Each drifted reference with the digest it runs and the digest its tag names "
              "now.", [table_target(s("kube_image_digest_drift"))],
              REFERENCE_COLUMNS + ["running_digest", "registry_digest"], w=12),
        table("Each rollback image missing", "Each image of a kept release revision that is not available, with "
              "the registry status as reason.", [table_target(s("kube_image_rollback_missing"))],
              ["cluster", "namespace", "release", "revision", "image", "reason"]),
        row("Predicted losses"),
        stat("Images a cleanup deletes next", "Images in use that the next run of their registry's cleanup policy "
             "deletes (--retention-source): pin, keep or re-tag them before it runs.",
             [target(f"count({s('kube_image_retention_at_risk')}) or vector(0)")], thresholds=GREEN_ORANGE),
        stat("References unsigned", "References whose verifying admission policy requires a signature or "
             "attestation the registry lacks: their next pod is rejected (enforce).",
             [target("count(" + s("kube_image_signature_missing", 'mode="enforce"') + ") or vector(0)")]),
        stat("Platforms lacking", "Images whose tag lacks a platform of nodes they run or may run on.",
             [target(f"count({s('kube_image_platform_missing')}) or vector(0)")], thresholds=GREEN_ORANGE),
        stat("Nodes holding last copies", "Nodes holding an image gone from its registry: do not drain them.",
             [target(f"count(count by (cluster, node) ({s('kube_image_node_only')})) or vector(0)")]),
        table("Will be deleted by a cleanup policy", "Each image in use that a cleanup policy's next run deletes, "
              "with the rule deciding it.", [table_target(s("kube_image_retention_at_risk"))],
              ["cluster", "image", "policy", "rule"], w=12),
        table("Cleanup policies' next runs", "When each cleanup policy read runs next.",
              [table_target(s("kube_image_retention_next_run_timestamp_seconds"))], ["policy"], w=12,
              hide_value=False),
        row("Pulls"),
        heatmap("Pull duration", "Observed image pull durations (kubelet Pulled events), pulls per second by "
                "duration bucket.",
                [target(f"sum by (le) (rate({s('kube_image_pull_seconds_bucket')}{rate_interval}))", "{{le}}",
                        fmt="heatmap")]),
        timeseries("Pull duration quantiles by registry", "Median and 90th percentile of observed pull "
                   "durations per registry.",
                   [target(f"histogram_quantile({q}, sum by (registry, le) "
                           f"(rate({s('kube_image_pull_seconds_bucket')}{rate_interval})))", f"{{{{registry}}}} p{p}")
                    for q, p in ((0.5, 50), (0.9, 90))], unit="s"),
        table("Slowest pulls", "The ten longest last pulls per namespace, node and image, with the image size "
              "where the kubelet reports it.",
              [table_target(slowest), table_target(f"{s('kube_image_pull_size_bytes')} and {slowest}")],
              ["cluster", "namespace", "node", "image"], w=12, hide_value=False,
              values={"Value #A": "duration", "Value #B": "size"}, sort_by="duration",
              overrides=[override("duration", unit="s"), override("size", unit="bytes")]),
        timeseries("Pull failures by reason", "Image pull failures seen in kubelet events per interval, by "
                   "reason.",
                   [target(f"sum by (reason) (increase({s('kube_image_pull_failures_total')}{rate_interval}))",
                           "{{reason}}")], bars=True, stack=True),
        bargauge("Pull failures in the time range", "Image pull failures by registry and reason over the "
                 "dashboard's time range.",
                 [target(f"sum by (registry, reason) (increase({s('kube_image_pull_failures_total')}[$__range]))",
                         "{{registry}} {{reason}}", instant=True)], w=24, h=6),
    ]
    return dashboard("kube-image-exporter-overview", "kube-image-exporter / Overview",
                     "Images used by Kubernetes workloads that are missing from their registries, expected-list "
                     "drift and observed image pulls.", variables, panels)


def health() -> dict:
    scope = ("instance", "cluster", "registry")

    def s(metric: str, *matchers: str) -> str:
        return select(metric, scope, *matchers)

    rate_interval = "[$__rate_interval]"
    requests = s("kube_image_registry_requests_total")
    failed = s("kube_image_registry_requests_total", 'code!~"2.."')
    latency = s("kube_image_registry_request_duration_seconds_bucket")
    exporter = s("kube_image_build_info")  # process_* of this exporter only: every other target has them too
    variables = [
        query_variable("instance", "Exporter", "label_values(kube_image_build_info, instance)"),
        query_variable("cluster", "Cluster",
                       f"label_values({select('kube_image_last_check_timestamp_seconds', ('instance',))}, cluster)"),
        query_variable("registry", "Registry",
                       f"label_values({select('kube_image_registry_requests_total', ('instance',))}, registry)"),
    ]
    panels = [
        row("Exporter"),
        stat("Version", "The exporter's version, per exporter instance.",
             [table_target(s("kube_image_build_info"))], thresholds=NEUTRAL, text_mode="value",
             fields="/^version$/", graph="none"),
        stat("Since last cycle", "Seconds since the exporter last computed a snapshot; it should stay near "
             "the cycle interval.",
             [target(f"time() - {s('kube_image_last_cycle_timestamp_seconds')}", "{{instance}}")], unit="s",
             thresholds=FRESHNESS),
        stat("Last cycle duration", "How long the last cycle took (inventory, registry checks, join).",
             [target(s("kube_image_cycle_duration_seconds"), "{{instance}}")], unit="s", thresholds=NEUTRAL),
        stat("Oldest image check", "Seconds since the least recently checked image was checked in its "
             "registry, per cluster.",
             [target(f"time() - min by (cluster) ({s('kube_image_last_check_timestamp_seconds')})",
                     "{{cluster}}")], unit="s", thresholds=NEUTRAL),
        timeseries("Cycle duration", "Duration of each cycle that computed a snapshot.",
                   [target(s("kube_image_cycle_duration_seconds"), "{{instance}}")], unit="s"),
        timeseries("Freshness", "Seconds since the last snapshot; a rising line means cycles have stopped.",
                   [target(f"time() - {s('kube_image_last_cycle_timestamp_seconds')}", "{{instance}}")], unit="s"),
        timeseries("Resident memory", "The exporter process's resident memory (process_resident_memory_bytes, "
                   "made at each scrape): it follows the cluster's size, and should not grow with time.",
                   [target(f"{s('process_resident_memory_bytes')} and on (instance, job) {exporter}",
                           "{{instance}}")], unit="bytes"),
        timeseries("CPU", "CPU the exporter process uses, in cores (rate of process_cpu_seconds_total): peaks "
                   "at each cycle's check round.",
                   [target(f"rate({s('process_cpu_seconds_total')}{rate_interval}) and on (instance, job) "
                           f"{exporter}", "{{instance}}")], unit="short"),
        row("Sources"),
        table("Watches", "Whether each list and watch of the Kubernetes API works (1) or fails (0), and the "
              "objects held.",
              [table_target(s("kube_image_watch_up")), table_target(s("kube_image_watch_objects"))],
              ["cluster", "kind"], w=8, hide_value=False, values={"Value #A": "up", "Value #B": "objects"},
              sort_by="up"),
        timeseries("Watch errors and relists", "Failed lists and watches per interval, by cluster and kind; and "
                   "lists made again because the API server could not serve a watch from its version (expired, "
                   "version_reset after a restore, errors after repeated failures).",
                   [target(f"sum by (cluster, kind) (increase({s('kube_image_watch_errors_total')}{rate_interval}))",
                           "{{cluster}} {{kind}} errors"),
                    target(f"sum by (cluster, kind, reason) (increase({s('kube_image_watch_relists_total')}"
                           f"{rate_interval}))", "{{cluster}} {{kind}} relist {{reason}}")],
                   w=8, bars=True, stack=True),
        table("Expected lists", "Whether each expected list loaded at its last reading (a failing one keeps "
              "its last good content), its images, and failed loads.",
              [table_target(s("kube_image_expected_list_up")), table_target(s("kube_image_expected_list_images")),
               table_target(s("kube_image_expected_list_load_errors_total"))],
              ["list"], w=8, hide_value=False,
              values={"Value #A": "up", "Value #B": "images", "Value #C": "load errors"}, sort_by="up"),
        table("Unusable pull secrets", "Pull secrets named by workloads that cannot be used: unreadable (missing "
              "or not readable), invalid, or an API error.",
              [table_target(s("kube_image_pull_secret_unusable"))], ["cluster", "namespace", "secret", "reason"],
              w=12),
        stat("Helm releases not decodable", "Helm release revisions skipped because they could not be decoded "
             "(corrupt, or over the size limit).",
             [target(f"sum({s('kube_image_rollback_release_errors_total')}) or vector(0)")],
             thresholds=GREEN_ORANGE),
        shared_cache(stat("Shared cache", "Whether each exporter's shared cache (--cache-url, Redis or Valkey) "
                          "answers. While it does not, the exporter checks every image on its own: nothing is "
                          "missed, the registries get more requests. No value: no shared cache configured.",
                          [target(s("kube_image_shared_cache_up"), "{{instance}}")], thresholds=RED_GREEN)),
        row("Registries"),
        timeseries("Registry requests by registry and code", "Requests sent to registries per second, by HTTP "
                   "status code (error: no answer).",
                   [target(f"sum by (registry, code) (rate({requests}{rate_interval}))", "{{registry}} {{code}}")],
                   unit="reqps", stack=True),
        timeseries("Registry request latency", "Latency quantiles of requests sent to registries.",
                   [target(f"histogram_quantile({q}, sum by (registry, le) (rate({latency}{rate_interval})))",
                           f"{{{{registry}}}} p{p}") for q, p in ((0.5, 50), (0.9, 90), (0.99, 99))], unit="s"),
        timeseries("Non-2xx answers by registry", "Requests per second that got no 2xx answer: 401 challenges "
                   "and 404 for absent images are expected; 429, 5xx and error (no answer) are trouble.",
                   [target(f"sum by (registry, code) (rate({failed}{rate_interval}))", "{{registry}} {{code}}")],
                   unit="reqps", stack=True),
        timeseries("Registry requests by method", "Requests per second by method: HEAD and GET for "
                   "manifests, TOKEN for token endpoints.",
                   [target(f"sum by (method) (rate({requests}{rate_interval}))", "{{method}}")], unit="reqps",
                   stack=True),
        bargauge("Non-2xx share by registry", "Share of requests without a 2xx answer over the dashboard's "
                 "time range.",
                 [target(f"sum by (registry) (increase({failed}[$__range])) / "
                         f"sum by (registry) (increase({requests}[$__range]))", "{{registry}}", instant=True)],
                 w=24, h=6, unit="percentunit",
                 thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.1},
                             {"color": "red", "value": 0.5}]),
    ]
    return dashboard("kube-image-exporter-health", "kube-image-exporter / Exporter health",
                     "Whether kube-image-exporter keeps its figures fresh, and how registries answer it.",
                     variables, panels)


def build() -> dict[str, dict]:
    """Every dashboard by file name."""
    return {"kube-image-exporter-overview.json": overview(), "kube-image-exporter-health.json": health()}


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, document in build().items():
        (OUT / name).write_text(render(document))
        print(f"wrote {(OUT / name).relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
