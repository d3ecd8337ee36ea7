"""Rows of the families that describe the sources themselves, beside the join's reference-level rows.

Registry request counters, kubelet pull observations, the health of each watch, each expected list and
each pull secret: plain state read once per cycle and turned into `{family: rows}` (and histograms) for
the exposition. A failing source shows here as a metric, never as a failed scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from exporter.events.pulls import PULL_BUCKETS
from exporter.expected.sources import ListState
from exporter.exposition import Histogram
from exporter.kube.watch import ReflectorStats
from exporter.registry.stats import DURATION_BUCKETS, RequestStats

Rows = tuple[tuple[tuple[str, ...], float], ...]


def registry(stats: RequestStats) -> tuple[dict[str, Rows], dict[str, list[Histogram]]]:
    with stats._lock:  # a copy, so concurrent checks never change what is being rendered
        requests = sorted(stats.requests.items())
        durations = [(host, tuple(buckets), stats.duration_sum[host], stats.duration_count[host])
                     for host, buckets in sorted(stats.duration_buckets.items())]
    series = {"kube_image_registry_requests_total": tuple((key, float(n)) for key, n in requests)}
    histograms = {"kube_image_registry_request_duration_seconds": [
        Histogram((host,), DURATION_BUCKETS, buckets, total, count) for host, buckets, total, count in durations
    ]}
    return series, histograms


def pulls(clusters: Iterable[tuple[str, tuple]]) -> tuple[dict[str, Rows], dict[str, list[Histogram]]]:
    """From each cluster's `PullTracker.snapshot()`: last pulls, histograms by registry, failures."""
    durations, sizes, failures, histograms = [], [], [], []
    for name, (last, by_registry, failed) in clusters:
        for (namespace, node, image), pull in sorted(last.items()):
            durations.append(((name, namespace, node, image), pull.seconds))
            if pull.size_bytes is not None:
                sizes.append(((name, namespace, node, image), float(pull.size_bytes)))
        for registry_host, h in sorted(by_registry.items()):
            histograms.append(Histogram((name, registry_host), PULL_BUCKETS, tuple(h.buckets), h.sum, h.count))
        for (registry_host, reason), n in sorted(failed.items()):
            failures.append(((name, registry_host, reason), float(n)))
    series = {
        "kube_image_pull_duration_seconds": tuple(durations),
        "kube_image_pull_size_bytes": tuple(sizes),
        "kube_image_pull_failures_total": tuple(failures),
    }
    return series, {"kube_image_pull_seconds": histograms}


def watches(rows: Iterable[tuple[str, str, ReflectorStats, int]]) -> dict[str, Rows]:
    """From (cluster, kind, stats, objects held) of every reflector; several of one kind (one per namespace)
    add up, and are up only when all of them are."""
    up: dict[tuple[str, str], bool] = {}
    errors: dict[tuple[str, str], int] = {}
    relists: dict[tuple[str, str, str], int] = {}
    skipped: dict[tuple[str, str], int] = {}
    objects: dict[tuple[str, str], int] = {}
    for cluster, kind, stats, held in rows:
        labels = (cluster, kind)
        up[labels] = up.get(labels, True) and stats.failing_since is None and stats.lists > 0
        errors[labels] = errors.get(labels, 0) + stats.errors
        skipped[labels] = skipped.get(labels, 0) + stats.skipped
        objects[labels] = objects.get(labels, 0) + held
        for reason, n in (("expired", stats.relists_after_expiry), ("version_reset", stats.relists_after_reset),
                          ("errors", stats.relists_after_errors)):
            relists[(cluster, kind, reason)] = relists.get((cluster, kind, reason), 0) + n
    return {
        "kube_image_watch_up": tuple((labels, 1.0 if ok else 0.0) for labels, ok in sorted(up.items())),
        "kube_image_watch_errors_total": tuple((labels, float(n)) for labels, n in sorted(errors.items())),
        "kube_image_watch_skipped_objects_total": tuple((labels, float(n)) for labels, n in sorted(skipped.items())),
        "kube_image_watch_objects": tuple((labels, float(n)) for labels, n in sorted(objects.items())),
        "kube_image_watch_relists_total": tuple((labels, float(n)) for labels, n in sorted(relists.items())),
    }


def expected_lists(states: Iterable[ListState]) -> dict[str, Rows]:
    """One row per list name; a list fed by several sources is up only when all of them are."""
    up: dict[str, bool] = {}
    errors: dict[str, int] = {}
    images: dict[str, set[str]] = {}
    for state in states:
        up[state.name] = up.get(state.name, True) and state.up
        errors[state.name] = errors.get(state.name, 0) + state.errors
        images.setdefault(state.name, set()).update(state.images or ())
    return {
        "kube_image_expected_list_up": tuple(((name,), 1.0 if ok else 0.0) for name, ok in sorted(up.items())),
        "kube_image_expected_list_images": tuple(((name,), float(len(images[name]))) for name in sorted(images)),
        "kube_image_expected_list_load_errors_total": tuple(((name,), float(n)) for name, n in sorted(errors.items())),
    }


def pull_secrets(clusters: Iterable[tuple[str, Mapping[tuple[str, str], str]]]) -> dict[str, Rows]:
    """From each cluster's unusable secrets {(namespace, secret): reason}."""
    rows = sorted((cluster, namespace, secret, reason)
                  for cluster, unusable in clusters for (namespace, secret), reason in unusable.items())
    return {"kube_image_pull_secret_unusable": tuple((row, 1.0) for row in rows)}


def release_errors(clusters: Iterable[tuple[str, Mapping[tuple[str, str], int]]]) -> dict[str, Rows]:
    """From each cluster's release decoding failures {(namespace, reason): count}."""
    rows = sorted(((cluster, namespace, reason), float(n))
                  for cluster, errors in clusters for (namespace, reason), n in errors.items())
    return {"kube_image_rollback_release_errors_total": tuple(rows)}
