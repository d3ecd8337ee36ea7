"""The rows of /metrics: the join's series, and those that describe the sources and the exporter itself.

A view of one Snapshot: registry request counters, kubelet pull observations and the health of each watch,
each expected list and each pull secret come from its plain `health` figures (exporter.model.health), so a
failing source shows here as a metric, never as a failed scrape; build info and cycle figures close it.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter import __version__
from exporter.model.health import Counts, Health, Histogram, ListHealth, WatchHealth
from exporter.snapshot.join import Snapshot

Rows = tuple[tuple[tuple[str, ...], float], ...]


def of(snapshot: Snapshot) -> tuple[dict[str, Rows], dict[str, list[Histogram]]]:
    """Every family's rows and histograms, for exposition.render."""
    health = snapshot.health
    series = dict(snapshot.series)
    series.update(registry(health))
    series.update(pulls(health))
    series.update(watches(health.watches))
    series.update(expected_lists(health.lists))
    series.update(pull_secrets(health.unusable_secrets))
    series["kube_image_rollback_release_errors_total"] = _counts(health.release_errors)
    series["kube_image_inventory_errors_total"] = _counts(health.inventory_errors)
    series["kube_image_cycle_failures_total"] = (((), float(health.cycle_failures)),)
    if health.shared_cache_up is not None:
        series["kube_image_shared_cache_up"] = (((), float(health.shared_cache_up)),)
        series["kube_image_shared_cache_errors_total"] = _counts(health.shared_cache_errors)
    series.update(retention(health))
    series["kube_image_build_info"] = (((__version__,), 1.0),)
    series["kube_image_cycle_duration_seconds"] = (((), health.cycle_seconds),)
    series["kube_image_last_cycle_timestamp_seconds"] = (((), snapshot.created_at),)
    histograms = {
        "kube_image_registry_request_duration_seconds": list(health.registry_durations),
        "kube_image_pull_seconds": list(health.pull_durations),
    }
    return series, histograms


def retention(health: Health) -> dict[str, Rows]:
    """Each cleanup policy read for a forecast: up, its next run where known; the sources' errors."""
    return {
        "kube_image_retention_up": tuple(((p.policy,), float(p.up)) for p in health.retention),
        "kube_image_retention_next_run_timestamp_seconds": tuple(((p.policy,), p.next_run) for p in health.retention
                                                                 if p.next_run is not None),
        "kube_image_retention_errors_total": _counts(health.retention_errors),
    }


def registry(health: Health) -> dict[str, Rows]:
    return {"kube_image_registry_requests_total": _counts(health.registry_requests)}


def pulls(health: Health) -> dict[str, Rows]:
    """Last pulls by (cluster, namespace, node, image), and failures."""
    durations, sizes = [], []
    for pull in health.pulls:
        labels = (pull.cluster, pull.namespace, pull.node, pull.image)
        durations.append((labels, pull.seconds))
        if pull.size_bytes is not None:
            sizes.append((labels, float(pull.size_bytes)))
    return {
        "kube_image_pull_duration_seconds": tuple(durations),
        "kube_image_pull_size_bytes": tuple(sizes),
        "kube_image_pull_failures_total": _counts(health.pull_failures),
    }


def watches(rows: Iterable[WatchHealth]) -> dict[str, Rows]:
    """Several watches of one kind (one per namespace) add up, and are up only when all of them are."""
    up: dict[tuple[str, str], bool] = {}
    errors: dict[tuple[str, str], int] = {}
    relists: dict[tuple[str, str, str], int] = {}
    skipped: dict[tuple[str, str], int] = {}
    objects: dict[tuple[str, str], int] = {}
    for watch in rows:
        labels = (watch.cluster, watch.kind)
        up[labels] = up.get(labels, True) and watch.up
        errors[labels] = errors.get(labels, 0) + watch.errors
        skipped[labels] = skipped.get(labels, 0) + watch.skipped
        objects[labels] = objects.get(labels, 0) + watch.objects
        for reason, n in watch.relists:
            relists[(watch.cluster, watch.kind, reason)] = relists.get((watch.cluster, watch.kind, reason), 0) + n
    return {
        "kube_image_watch_up": tuple((labels, 1.0 if ok else 0.0) for labels, ok in sorted(up.items())),
        "kube_image_watch_errors_total": tuple((labels, float(n)) for labels, n in sorted(errors.items())),
        "kube_image_watch_skipped_objects_total": tuple((labels, float(n)) for labels, n in sorted(skipped.items())),
        "kube_image_watch_objects": tuple((labels, float(n)) for labels, n in sorted(objects.items())),
        "kube_image_watch_relists_total": tuple((labels, float(n)) for labels, n in sorted(relists.items())),
    }


def expected_lists(states: Iterable[ListHealth]) -> dict[str, Rows]:
    """One row per list name; a list fed by several sources is up only when all of them are. A list whose first
    reading is under way is not up, and its image count is absent (not known yet, not zero)."""
    up: dict[str, bool] = {}
    errors: dict[str, int] = {}
    images: dict[str, set[str]] = {}
    for state in states:
        up[state.name] = up.get(state.name, True) and state.up
        errors[state.name] = errors.get(state.name, 0) + state.errors
        if not state.loading:
            images.setdefault(state.name, set()).update(state.images)
    return {
        "kube_image_expected_list_up": tuple(((name,), 1.0 if ok else 0.0) for name, ok in sorted(up.items())),
        "kube_image_expected_list_images": tuple(((name,), float(len(images[name]))) for name in sorted(images)),
        "kube_image_expected_list_load_errors_total": tuple(((name,), float(n)) for name, n in sorted(errors.items())),
    }


def pull_secrets(unusable: Iterable[tuple[str, str, str, str]]) -> dict[str, Rows]:
    """From (cluster, namespace, secret, reason) of each unusable pull secret."""
    return {"kube_image_pull_secret_unusable": tuple((row, 1.0) for row in sorted(unusable))}


def _counts(counts: Counts) -> Rows:
    return tuple((labels, float(n)) for labels, n in counts)
