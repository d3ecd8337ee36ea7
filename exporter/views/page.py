"""The status page at `/`: what is wrong now, for a person with a browser and no dashboard at hand.

A view like the exposition and the report: plain data in (the cycle's series, when each problem was first
seen, a few health details), HTML bytes out. No JavaScript and no external assets, so it works offline and
under a Content-Security-Policy that allows nothing but its own inline style. Every value shown comes from
a cluster, a registry or a configuration and is escaped; URLs are shown without their user info.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import html
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter import __version__
from exporter.common.redact import redact
from exporter.model.health import RegistryLimit
from exporter.model.records import MISSING, Status, Verdict, verdict
from exporter.snapshot.join import Snapshot

Labels = tuple[str, ...]
Rows = tuple[tuple[Labels, float], ...]

# Families whose rows are problems with a "since": the reason (their last label) is left out of the key, so
# a problem whose reason changes (absent, then unauthorized) keeps its first-seen time.
TRACKED = ("kube_image_missing", "kube_image_expected_missing", "kube_image_rollback_missing")

# Every family the page reads (the serve loop hands over these rows only, so the page keeps no more in memory).
READS = TRACKED + (
    "kube_image_workload_inactive", "kube_image_expected_not_running", "kube_image_expected_list_up",
    "kube_image_expected_list_images", "kube_image_expected_list_load_errors_total", "kube_image_digest_drift",
    "kube_image_watch_up", "kube_image_watch_errors_total", "kube_image_watch_skipped_objects_total",
    "kube_image_watch_objects", "kube_image_status", "kube_image_registry_requests_total",
    "kube_image_pull_secret_unusable", "kube_image_pull_failures_total", "kube_image_pull_duration_seconds",
    "kube_image_rollback_release_errors_total", "kube_image_shared_cache_up", "kube_image_unknown_unit",
    "kube_image_node_only", "kube_image_platform_missing", "kube_image_signature_missing",
    "kube_image_retention_at_risk", "kube_image_retention_next_run_timestamp_seconds", "kube_image_retention_up",
)

# Where each problem's runbook section is: the alert that covers it (docs/runbook.md, as the rules link it).
RUNBOOK = "https://github.com/kube-image-exporter/kube-image-exporter/blob/main/docs/runbook.md"
RUNBOOK_BY_REASON = {
    **dict.fromkeys(MISSING, "kubeimagemissing"),
    Status.UNAUTHORIZED: "kubeimagecredentialsfailing", Status.FORBIDDEN: "kubeimagecredentialsfailing",
    Status.RATE_LIMITED: "kubeimageregistryratelimited", Status.SIGNATURE_MISSING: "kubeimagesignaturemissing",
    **dict.fromkeys((Status.UNREACHABLE, Status.TLS_ERROR, Status.ERROR, Status.UNCHECKED),
                    "kubeimageregistryunreachable"),
}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 2em 2em;color:#1b1b1b;background:#fff}
header{border-bottom:2px solid #ddd;padding:.6em 0;display:flex;flex-wrap:wrap;gap:1.5em;align-items:baseline}
h1{font-size:1.3em;margin:0}h2{margin:1.4em 0 .4em;font-size:1.15em}h3{margin:1em 0 .3em;font-size:1.05em}
h4{margin:.8em 0 .2em;font-size:1em;color:#444}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.2em 0 .8em;width:100%}
th,td{text-align:left;padding:.2em .6em;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
td.image,td.mono{font-family:ui-monospace,monospace;word-break:break-all}
.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3b;font-weight:600}.warn{color:#a15c00;font-weight:600}
.muted{color:#666}.summary span{margin-right:1.2em}a.runbook{font-size:.75em;font-weight:400;margin-left:.4em}
"""
STYLE_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

# Sent with the page: nothing may load or run but the page's own inline style, and no other site frames it.
HEADERS = (
    ("Content-Security-Policy", f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
CONTENT_TYPE = "text/html; charset=utf-8"
_STATUS_CLASS = {"available": "ok", "unchecked": "muted"}



def _e(value: object) -> str:
    """A value from outside, redacted and escaped for HTML text or a quoted attribute."""
    return html.escape(redact(str(value)), quote=True)


@dataclass(frozen=True)
class PageInput:
    """What one cycle hands to the page; all of it plain data already in memory."""

    series: Mapping[str, Rows]  # family -> rows of the families in READS: the join's and the health ones
    created_at: float  # Unix time of the cycle
    version: str
    first_seen: Mapping[Labels, float] = field(default_factory=dict)  # from `tracked_keys`, via exporter.serve.firstseen
    not_ready_reason: str = ""
    watch_errors: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (cluster, kind) -> last error
    list_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # list name -> where it is read
    registry_limits: Mapping[str, RegistryLimit] = field(default_factory=dict)  # host -> paused or slowed now
    refresh_seconds: int = 60  # the browser reloads the page this often (0: never)
    lists_loading: frozenset[str] = frozenset()  # lists whose first reading is under way
    max_rows: int = 1000  # per table; the rest is counted and left to /metrics
    users: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # (cluster, image at risk) -> workloads


def of(snapshot: Snapshot, rows: Mapping[str, Rows], first_seen: Mapping[Labels, float], not_ready_reason: str,
       refresh_seconds: int) -> PageInput:
    """The page's input from one snapshot and its rendered rows (series.of), with the problems' first-seen times."""
    health = snapshot.health
    list_sources: dict[str, tuple[str, ...]] = {}
    for state in health.lists:
        list_sources[state.name] = (*list_sources.get(state.name, ()), state.source)
    at_risk = {labels[:2] for labels, _ in rows.get("kube_image_retention_at_risk", ())}
    users: dict[tuple[str, str], set[str]] = {}
    for ref, _ in snapshot.references if at_risk else ():
        if (ref.cluster, ref.image) in at_risk:
            users.setdefault((ref.cluster, ref.image), set()).add(f"{ref.workload_kind} {ref.namespace}/{ref.workload}")
    return PageInput({family: rows.get(family, ()) for family in READS}, snapshot.created_at, __version__,
                     first_seen, not_ready_reason,
                     {(w.cluster, w.kind): w.last_error for w in health.watches if w.last_error},
                     list_sources, {limit.host: limit for limit in health.registry_limits},
                     refresh_seconds=refresh_seconds,
                     lists_loading=frozenset(state.name for state in health.lists if state.loading),
                     users={key: tuple(sorted(names)) for key, names in users.items()})


def tracked_keys(series: Mapping[str, Rows]) -> list[Labels]:
    """The problems whose first-seen time the page shows: (family, labels without the reason)."""
    return [(family, *labels[:-1]) for family in TRACKED for labels, _ in series.get(family, ())]


def tracked_cluster(key: Labels) -> str | None:
    """The cluster a tracked problem belongs to; None for an expected list's, which no one cluster holds."""
    return None if key[0] == "kube_image_expected_missing" else key[1]


def render(data: PageInput) -> bytes:
    """The whole page, UTF-8."""
    out: list[str] = []
    refresh = f'<meta http-equiv="refresh" content="{int(data.refresh_seconds)}">' if data.refresh_seconds > 0 else ""
    out.append(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
               f'<meta name="viewport" content="width=device-width,initial-scale=1">{refresh}'
               f"<title>kube-image-exporter status</title><style>{CSS}</style></head><body>")
    classes = _classes(data)  # once: the banner and the sections count the same rows
    _header(out, data, classes)
    _missing(out, data, classes)
    _node_only(out, data)
    _signatures(out, data)
    _retention(out, data)
    _unknown_units(out, data)
    _expected(out, data)
    _drift(out, data)
    _rollback(out, data)
    _sources(out, data)
    reloads = f" and reloads every {int(data.refresh_seconds)}s" if data.refresh_seconds > 0 else ""
    out.append(f'<footer class="muted"><p>kube-image-exporter {_e(data.version)}; this page shows the cycle of '
               f"{_when(data.created_at)}{reloads}. Nothing on it runs code or loads from elsewhere.</p></footer>")
    out.append("</body></html>")
    return "".join(out).encode()


# -- sections --

def _header(out: list[str], data: PageInput, classes: Classes) -> None:
    s = data.series
    ready = ('<span class="ok">ready</span>' if not data.not_ready_reason
             else f'<span class="warn">not ready: {_e(data.not_ready_reason)}</span>')
    out.append(f"<header><h1>kube-image-exporter</h1><span>version {_e(data.version)}</span>"
               f"<span>last cycle {_when(data.created_at)}</span>{ready}"
               # relative links: they still work behind a path prefix (`kubectl proxy`, an ingress path)
               '<nav><a href="metrics">/metrics</a><a href="report">/report</a>'
               '<a href="healthz">/healthz</a><a href="readyz">/readyz</a></nav></header>')
    counts = [
        (len(classes.missing), "reference missing", "references missing"),
        (len(classes.inactive), "missing on an inactive workload", "missing on inactive workloads"),
        (len(classes.unverified), "reference unverified", "references unverified"),
        (len(s.get("kube_image_unknown_unit", ())), "reference without a unit", "references without a unit"),
        (len({labels[:2] for labels, _ in s.get("kube_image_node_only", ())}), "node holding a last copy",
         "nodes holding last copies"),
        (len({labels[:7] for labels, _ in s.get("kube_image_signature_missing", ())}), "reference unsigned",
         "references unsigned"),
        (len(s.get("kube_image_expected_missing", ())), "expected image missing", "expected images missing"),
        (len(s.get("kube_image_expected_not_running", ())), "expected image not running",
         "expected images not running"),
        (len(s.get("kube_image_digest_drift", ())), "digest drift", "digest drifts"),
        (len(s.get("kube_image_rollback_missing", ())), "rollback image missing", "rollback images missing"),
        (sum(1 for _, v in s.get("kube_image_watch_up", ()) if v == 0), "watch down", "watches down"),
    ]
    out.append('<p class="summary">' + "".join(
        f'<span class="{"bad" if n else "ok"}">{n} {one if n == 1 else many}</span>' for n, one, many in counts)
        + "</p>")


@dataclass(frozen=True)
class Classes:
    """kube_image_missing's rows split as every surface splits them (README "What missing means")."""

    missing: list[Labels]  # missing, workload running
    inactive: list[Labels]  # missing, workload scaled to zero or suspended
    unverified: list[Labels]  # could not be told, workload running
    unverified_inactive: list[Labels]
    inactive_workloads: frozenset[Labels]  # (cluster, namespace, kind, workload) of those that run nothing now


def _classes(data: PageInput) -> Classes:
    inactive = frozenset(labels for labels, _ in data.series.get("kube_image_workload_inactive", ()))
    classes = Classes([], [], [], [], inactive)
    split = ((classes.unverified, classes.unverified_inactive), (classes.missing, classes.inactive))
    for labels, _ in data.series.get("kube_image_missing", ()):  # kube_image_missing rows are never available
        split[verdict(labels[-1]) is Verdict.MISSING][labels[:4] in inactive].append(labels)
    return classes


def _missing(out: list[str], data: PageInput, classes: Classes) -> None:
    """Two sections: images the registry says are gone (missing), then images that could not be checked."""
    unverified = classes.unverified + classes.unverified_inactive
    _references(out, data, classes, "missing", classes.missing + classes.inactive,
                f"No image in use is known to be missing; {len(unverified)} could not be checked (below)."
                if unverified else "Every image in use is available in its registry.")
    _references(out, data, classes, "unverified", unverified, "Every image in use could be checked.")


def _references(out: list[str], data: PageInput, classes: Classes, anchor: str, rows: list[Labels],
                 empty: str) -> None:
    out.append(f'<section id="{anchor}"><h2>{anchor.capitalize()} images ({len(rows)})</h2>')
    if not rows:
        out.append(f'<p class="ok">{empty}</p></section>')
        return
    inactive = classes.inactive_workloads
    lacking: dict[tuple[str, str], list[str]] = {}  # (cluster, image) -> the platforms its nodes pull and it lacks
    for (cluster, image, platform), _ in data.series.get("kube_image_platform_missing", ()):
        lacking.setdefault((cluster, image), []).append(platform)
    # cluster, then units by name with "no unit" last, then namespace, kind, workload, container
    shown = heapq.nsmallest(data.max_rows, rows, key=lambda l: (l[0], l[7] == "", l[7], l[1:7]))
    tree: dict[str, dict[str, dict[Labels, list[Labels]]]] = {}  # cluster -> unit -> workload -> rows
    for labels in shown:
        tree.setdefault(labels[0], {}).setdefault(labels[7], {}).setdefault(labels[1:4], []).append(labels)
    for cluster, units in tree.items():
        out.append(f"<h3>cluster {_e(cluster)}</h3>")
        for unit, workloads in units.items():
            out.append(f"<h4>unit {_e(unit)}</h4>" if unit else '<h4 class="muted">no unit resolved</h4>')
            cells = []
            for (namespace, kind, workload), refs in workloads.items():
                note = (' <span class="muted">(runs nothing now: scaled to zero or suspended)</span>'
                        if (cluster, namespace, kind, workload) in inactive else "")
                for labels in refs:
                    *_, container, ctype, image, _unit, reason = labels
                    kind_note = "" if ctype == "container" else f' <span class="muted">({_e(ctype)})</span>'
                    platforms = lacking.get((cluster, image)) if reason == Status.PLATFORM_MISSING else None
                    why = _runbook(reason) + (f" ({_e(', '.join(sorted(platforms)))})" if platforms else "")
                    cells.append((f"{_e(kind)} {_e(namespace)}/{_e(workload)}{note}", f"{_e(container)}{kind_note}",
                                  ("image", _e(image)), ("bad", why),
                                  _since(data, ("kube_image_missing", *labels[:-1]))))
            _table(out, ("workload", "container", "image", "reason", f"{anchor} since"), cells)
    _more(out, len(rows) - len(shown), "kube_image_missing")
    out.append("</section>")


def _node_only(out: list[str], data: PageInput) -> None:
    """Nodes holding the last copy of an image gone from its registry: the ones not to drain (shown when any)."""
    rows = data.series.get("kube_image_node_only", ())
    if not rows:
        return
    held: dict[tuple[str, str], list[str]] = {}
    for (cluster, node, image), _ in rows:
        held.setdefault((cluster, node), []).append(image)
    out.append(f'<section id="node-only"><h2>Do not drain: last copies on nodes ({len(held)} nodes) '
               f'{_runbook_link("kubeimageonlyonnode")}</h2>'
               '<p class="warn">Their registries no longer have these images; these nodes still hold them. Draining '
               'or replacing a node loses its copies: cordon it, and copy the image back to the registry first.</p>')
    _table(out, ("cluster", "node", "images held nowhere else"),
           [(_e(cluster), ("bad", _e(node)), ("image", "<br>".join(_e(image) for image in sorted(images))))
            for (cluster, node), images in sorted(held.items())[:data.max_rows]])
    _more(out, len(held) - data.max_rows, "kube_image_node_only")
    out.append("</section>")


def _signatures(out: list[str], data: PageInput) -> None:
    """References whose verifying policies require a signature or attestation the registry lacks (shown when any)."""
    rows = sorted(labels for labels, _ in data.series.get("kube_image_signature_missing", ()))
    if not rows:
        return
    out.append(f'<section id="signatures"><h2>Signatures missing ({len(rows)}) '
               f'{_runbook_link("kubeimagesignaturemissing")}</h2>'
               '<p class="warn">An admission policy requires these, and the registry does not hold them where its '
               'verifier reads them: the next pod of these workloads is rejected (audit: reported only). Checked for '
               'presence and type, not verified cryptographically.</p>')
    _table(out, ("cluster", "workload", "container", "image", "policy", "missing", "mode"),
           [(_e(cluster), f"{_e(kind)} {_e(namespace)}/{_e(workload)}", _e(container), ("image", _e(image)),
             _e(policy), ("bad", _e(f"{need} {predicate}".strip())), _e(mode))
            for cluster, namespace, kind, workload, container, _ctype, image, _unit, policy, need, predicate, mode
            in rows[:data.max_rows]])
    _more(out, len(rows) - data.max_rows, "kube_image_signature_missing")
    out.append("</section>")


def _retention(out: list[str], data: PageInput) -> None:
    """Images in use that a registry's cleanup policy deletes at its next run (shown when any, or a policy is down)."""
    rows = sorted(labels for labels, _ in data.series.get("kube_image_retention_at_risk", ()))
    down = sorted(labels[0] for labels, value in data.series.get("kube_image_retention_up", ()) if not value)
    if not rows and not down:
        return
    runs = {labels[0]: value for labels, value in data.series.get("kube_image_retention_next_run_timestamp_seconds", ())}
    out.append(f'<section id="retention"><h2>Will be deleted ({len(rows)}) {_runbook_link("kubeimageretentionatrisk")}'
               '</h2><p class="warn">The next run of these registries\' cleanup policies deletes these images, which '
               'are in use: pin them by digest, add a keep rule, or re-tag them before it runs.</p>')
    if down:
        out.append(f'<p class="warn">Not forecast (the policy could not be read): {_e(", ".join(down))}.</p>')
    _table(out, ("image", "policy", "rule", "next run", "used by"),
           [(("image", _e(image)), _e(policy), ("bad", _e(rule)),
             _when(runs[policy]) if policy in runs else '<span class="muted">within a day</span>',
             "<br>".join(_e(f"{cluster}: {user}" if cluster else user)
                         for user in data.users.get((cluster, image), ("expected list",) if not cluster else ())))
            for cluster, image, policy, rule in rows[:data.max_rows]])
    _more(out, len(rows) - data.max_rows, "kube_image_retention_at_risk")
    out.append("</section>")


def _unknown_units(out: list[str], data: PageInput) -> None:
    """References no unit owns (the banner and kube_image_unknown_unit count them): a release list misses them."""
    rows = sorted(labels for labels, _ in data.series.get("kube_image_unknown_unit", ()))
    out.append(f'<section id="unknown-unit"><h2>References without a unit ({len(rows)})</h2>')
    if not rows:
        out.append('<p class="ok">Every reference belongs to a unit.</p></section>')
        return
    out.append('<p class="muted">Deployed by hand, or by a tool the unit sources do not read: release image lists '
               f'miss their images {_runbook_link("kubeimageunknownunit")}.</p>')
    _table(out, ("cluster", "workload", "container", "image"),
           [(_e(cluster), f"{_e(kind)} {_e(namespace)}/{_e(workload)}", _e(container), ("image", _e(image)))
            for cluster, namespace, kind, workload, container, _ctype, image in rows[:data.max_rows]])
    _more(out, len(rows) - data.max_rows, "kube_image_unknown_unit")
    out.append("</section>")


def _runbook_link(anchor: str) -> str:
    """A small link to a runbook section, beside a heading."""
    return f'<a class="muted runbook" href="{RUNBOOK}#{anchor}">runbook</a>'


def _runbook(reason: str) -> str:
    """A reason linked to the runbook section of the alert that covers it."""
    anchor = RUNBOOK_BY_REASON.get(reason)
    return f'<a href="{RUNBOOK}#{anchor}">{_e(reason)}</a>' if anchor else _e(reason)


def _expected(out: list[str], data: PageInput) -> None:
    s = data.series
    names = sorted({labels[0] for labels, _ in s.get("kube_image_expected_list_up", ())}
                   | {labels[0] for labels, _ in s.get("kube_image_expected_missing", ())}
                   | {labels[1] for labels, _ in s.get("kube_image_expected_not_running", ())})
    out.append(f'<section id="expected"><h2>Expected lists {_runbook_link("kubeimageexpectedmissing")}</h2>')
    if not names:
        out.append('<p class="muted">No expected list is configured (<code>--expected</code>).</p></section>')
        return
    up = {labels[0]: value for labels, value in s.get("kube_image_expected_list_up", ())}
    images = {labels[0]: value for labels, value in s.get("kube_image_expected_list_images", ())}
    for name in names:
        missing = [labels for labels, _ in s.get("kube_image_expected_missing", ()) if labels[0] == name]
        not_running = [labels for labels, _ in s.get("kube_image_expected_not_running", ()) if labels[1] == name]
        state = ("" if name not in up else ' <span class="ok">loaded</span>' if up[name]
                 else ' <span class="warn">loading (first reading under way)</span>' if name in data.lists_loading
                 else ' <span class="bad">failing to load (last good content kept)</span>')
        count = f" {int(images[name])} images," if name in images else ""
        out.append(f"<h3>list {_e(name)}</h3><p>{state}{count} {len(missing)} missing from their registry, "
                   f"{len(not_running)} not running</p>")
        if missing:  # (list, image, unit, reason)
            _table(out, ("image", "unit", "reason", "missing since"),
                   [(("image", _e(image)), _e(unit), ("bad", _e(reason)),
                     _since(data, ("kube_image_expected_missing", name, image, unit)))
                    for _, image, unit, reason in missing[:data.max_rows]])
            _more(out, len(missing) - data.max_rows, "kube_image_expected_missing")
        if not_running:  # (cluster, list, image, unit)
            _table(out, ("not running in cluster", "image", "unit"),
                   [(_e(cluster), ("image", _e(image)), _e(unit)) for cluster, _, image, unit in not_running[:data.max_rows]])
            _more(out, len(not_running) - data.max_rows, "kube_image_expected_not_running")
    out.append("</section>")


def _drift(out: list[str], data: PageInput) -> None:
    rows = [labels for labels, _ in data.series.get("kube_image_digest_drift", ())]
    out.append(f'<section id="drift"><h2>Digest drift ({len(rows)}) {_runbook_link("kubeimagedigestdrift")}</h2>')
    if not rows:
        out.append('<p class="ok">Every running tag still resolves to the digest it runs.</p></section>')
        return
    out.append('<p class="muted">The tag now names another image in the registry: a restart would run it.</p>')
    _table(out, ("cluster", "workload", "container", "image", "running digest", "registry digest"),
           [(_e(cluster), f"{_e(kind)} {_e(namespace)}/{_e(workload)}", _e(container), ("image", _e(image)),
             ("mono", _e(running)), ("mono", _e(registry)))
            for cluster, namespace, kind, workload, container, _, image, _, running, registry in rows[:data.max_rows]])
    _more(out, len(rows) - data.max_rows, "kube_image_digest_drift")
    out.append("</section>")


def _rollback(out: list[str], data: PageInput) -> None:
    rows = [labels for labels, _ in data.series.get("kube_image_rollback_missing", ())]
    out.append(f'<section id="rollback"><h2>Rollback images missing ({len(rows)}) '
               f'{_runbook_link("kubeimagerollbackmissing")}</h2>')
    if not rows:
        out.append('<p class="muted">No kept Helm release revision names a missing image '
                   "(or <code>--rollback-images</code> is not set).</p></section>")
        return
    _table(out, ("cluster", "release", "revision", "image", "reason", "missing since"),
           [(_e(cluster), f"{_e(namespace)}/{_e(release)}", _e(revision), ("image", _e(image)), ("bad", _e(reason)),
             _since(data, ("kube_image_rollback_missing", cluster, namespace, release, revision, image)))
            for cluster, namespace, release, revision, image, reason in rows[:data.max_rows]])
    _more(out, len(rows) - data.max_rows, "kube_image_rollback_missing")
    out.append("</section>")


def _sources(out: list[str], data: PageInput) -> None:
    """Where the data comes from and how each source is doing: one subsection per source."""
    out.append('<section id="sources"><h2>Sources</h2>')
    for subsection in (_watches, _lists, _registries, _pull_secrets, _pulls, _release_storage, _shared_cache):
        subsection(out, data)
    out.append("</section>")


def _watches(out: list[str], data: PageInput) -> None:
    """Each (cluster, kind) list/watch: up or down, objects held, errors, skipped objects, the last error."""
    s = data.series
    up = dict(s.get("kube_image_watch_up", ()))
    errors = dict(s.get("kube_image_watch_errors_total", ()))
    skipped = dict(s.get("kube_image_watch_skipped_objects_total", ()))
    objects = dict(s.get("kube_image_watch_objects", ()))
    out.append(f"<h3>Kubernetes watches {_runbook_link('kubeimagewatchfailing')}</h3>")
    if not up:
        out.append('<p class="muted">No watch has reported yet.</p>')
        return
    _table(out, ("cluster", "kind", "state", "objects", "errors", "skipped objects", "last error"),
           [(_e(key[0]), _e(key[1]), '<span class="ok">up</span>' if up[key] else '<span class="bad">down</span>',
             str(int(objects.get(key, 0))), str(int(errors.get(key, 0))), str(int(skipped.get(key, 0))),
             _e(data.watch_errors.get(key, ""))) for key in sorted(up)])


def _lists(out: list[str], data: PageInput) -> None:
    """Each expected list: loaded, loading (first reading under way) or failing, its size and sources."""
    s = data.series
    up = {labels[0]: v for labels, v in s.get("kube_image_expected_list_up", ())}
    images = {labels[0]: v for labels, v in s.get("kube_image_expected_list_images", ())}
    errors = {labels[0]: v for labels, v in s.get("kube_image_expected_list_load_errors_total", ())}
    out.append(f"<h3>Expected lists {_runbook_link('kubeimageexpectedlistfailing')}</h3>")
    if not up:
        out.append('<p class="muted">None configured.</p>')
        return

    def state(name: str) -> str:
        if up[name]:
            return '<span class="ok">loaded</span>'
        return '<span class="warn">loading</span>' if name in data.lists_loading else '<span class="bad">failing</span>'

    _table(out, ("list", "state", "images", "load errors", "source"),
           [(_e(name), state(name), str(int(images.get(name, 0))), str(int(errors.get(name, 0))),
             ("mono", "<br>".join(_e(source) for source in data.list_sources.get(name, ()))))
            for name in sorted(up)])


def _pull_secrets(out: list[str], data: PageInput) -> None:
    secrets = [labels for labels, _ in data.series.get("kube_image_pull_secret_unusable", ())]
    out.append(f"<h3>Pull secrets {_runbook_link('kubeimagecredentialsfailing')}</h3>")
    if not secrets:
        out.append('<p class="ok">Every pull secret named by a workload is usable.</p>')
        return
    _table(out, ("cluster", "secret", "problem"),
           [(_e(cluster), f"{_e(namespace)}/{_e(secret)}", ("bad", _e(reason)))
            for cluster, namespace, secret, reason in secrets[:data.max_rows]])


def _pulls(out: list[str], data: PageInput) -> None:
    """Pull failures the kubelet's events told of, by cluster, registry and reason."""
    s = data.series
    failures = [(labels, v) for labels, v in s.get("kube_image_pull_failures_total", ()) if v]
    out.append("<h3>Image pulls (kubelet events)</h3>")
    if not failures:
        pulls = sum(1 for _ in s.get("kube_image_pull_duration_seconds", ()))
        out.append(f'<p class="ok">No pull failure seen ({pulls} images with a pull observed).</p>')
        return
    _table(out, ("cluster", "registry", "failure", "seen"),
           [(_e(cluster), _e(registry), ("warn", _e(reason)), str(int(n)))
            for (cluster, registry, reason), n in failures[:data.max_rows]])


def _release_storage(out: list[str], data: PageInput) -> None:
    """Helm release revisions that could not be read (shown only when there are some)."""
    releases = [(labels, v) for labels, v in data.series.get("kube_image_rollback_release_errors_total", ()) if v]
    if releases:
        out.append("<h3>Helm release storage</h3>")
        _table(out, ("cluster", "namespace", "problem", "revisions skipped"),
               [(_e(cluster), _e(namespace), ("warn", _e(reason)), str(int(n)))
                for (cluster, namespace, reason), n in releases])


def _shared_cache(out: list[str], data: PageInput) -> None:
    cache = data.series.get("kube_image_shared_cache_up", ())
    if not cache:
        out.append('<h3>Shared cache</h3><p class="muted">None configured (<code>--cache-url</code>).</p>')
        return
    out.append("<h3>Shared cache</h3>")
    state = '<span class="ok">answering</span>' if cache[0][1] else '<span class="bad">not answering</span>'
    out.append(f"<p>{state} {_runbook_link('kubeimagesharedcachedown')}</p>")


def _registries(out: list[str], data: PageInput) -> None:
    """Per registry host: its images by current status, the answers it gave, and whether it is limiting us."""
    s = data.series
    statuses: dict[str, Counter] = {}
    for (_, _, registry, status), _ in s.get("kube_image_status", ()):
        if registry:  # an image not checked yet has no registry
            statuses.setdefault(registry, Counter())[status] += 1
    codes: dict[str, Counter] = {}
    for (registry, _, code), n in s.get("kube_image_registry_requests_total", ()):
        codes.setdefault(registry, Counter())[code] += int(n)
    out.append("<h3>Registries</h3>")
    if not statuses and not codes and not data.registry_limits:
        out.append('<p class="muted">No registry has been asked yet.</p>')
        return
    cells = []
    for registry in sorted(statuses.keys() | codes.keys() | data.registry_limits.keys()):
        by_status = statuses.get(registry, Counter())
        by_code = codes.get(registry, Counter())
        shown = ", ".join(f'<span class="{_STATUS_CLASS.get(st, "bad")}">{n} {_e(st)}</span>'
                          for st, n in sorted(by_status.items()))
        answers = ", ".join(f"{_e(code)}: {n}" for code, n in sorted(by_code.items()))
        if by_status.get("rate_limited"):
            limit = f'<span class="bad">limited now ({by_status["rate_limited"]} images waiting)</span>'
        elif by_code.get("429"):
            limit = f'<span class="warn">{by_code["429"]} refusals (429) so far, none now</span>'
        else:
            limit = '<span class="ok">never refused</span>'
        cells.append((_e(registry), shown, answers, limit + _pause(data, data.registry_limits.get(registry))))
    _table(out, ("registry", "images by status", "answers (HTTP code: requests)", "rate limit"), cells)


def _pause(data: PageInput, limit: RegistryLimit | None) -> str:
    """What the exporter itself holds back for a host now: a pause, and a rate its 429s taught it."""
    if limit is None:
        return ""
    parts = []
    if limit.paused_until > data.created_at:
        what = ('<span class="bad">paused by the registry' if limit.rate_limited
                else '<span class="warn">backing off after failures')
        why = f" ({_e(limit.reason)})" if limit.reason else ""
        parts.append(f"{what} until {_when(limit.paused_until)}</span>{why}")
    if limit.learned_rate is not None:
        parts.append(f'<span class="warn">slowed to {limit.learned_rate:.1f} requests/s after 429s</span>')
    return "".join(f"<br>{part}" for part in parts)


# -- small helpers --

Cell = str | tuple[str, str]  # HTML already escaped, or (CSS class, that HTML)


def _table(out: list[str], headers: Iterable[str], rows: Iterable[Iterable[Cell]]) -> None:
    """One table: a header of plain names, then a row of cells each."""
    out.append("<table><tr>" + "".join(f"<th>{header}</th>" for header in headers) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{cell[0]}">{cell[1]}</td>' if isinstance(cell, tuple)
                                    else f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</table>")


def _more(out: list[str], hidden: int, family: str) -> None:
    if hidden > 0:
        out.append(f'<p class="warn">{hidden} more not shown here; all are in <a href="metrics">/metrics</a> '
                   f"({family}).</p>")


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _since(data: PageInput, key: Labels) -> str:
    seen = data.first_seen.get(key)
    if seen is None:
        return '<span class="muted">—</span>'
    return f"{_when(seen)} <span class=\"muted\">({_duration(data.created_at - seen)})</span>"


def _duration(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`: two units at most, enough to read at a glance."""
    seconds = max(0, int(seconds))
    parts: Iterable[tuple[int, str]] = ((seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
                                        (seconds % 3600 // 60, "m"), (seconds % 60, "s"))
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) if shown else "0s"
