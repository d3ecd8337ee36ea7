"""`serve`: the exporter. Watches clusters, checks images, serves /metrics, /report, /healthz, /readyz."""

from __future__ import annotations

import argparse
import logging

from exporter.commands import options
from exporter.commands.errors import UsageError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the exporter",
                              description="Watch clusters, check images in registries, serve Prometheus metrics.")
    p.add_argument("--listen", metavar="HOST:PORT", help="default 0.0.0.0:9706")
    options.add_cluster(p, "repeatable: one cluster each")
    p.add_argument("--cluster-name", metavar="NAME", help="the cluster label (one context only)")
    p.add_argument("--expected", action="append", metavar="SOURCE",
                   help="expected list: [NAME=]PATH, a directory, an http(s) URL or configmap:NS/NAME[/KEY] "
                        "(a regular file of at most 16 MiB, JSON nested at most 100 deep)")
    p.add_argument("--interval", metavar="DURATION",
                   help="time between snapshots: 30s, 5m, 1h30m; 1s to 24h (default 60s)")
    p.add_argument("--namespace", dest="namespaces", action="append", metavar="NS", help="only these namespaces")
    p.add_argument("--exclude-namespace", dest="exclude_namespaces", action="append", metavar="NS",
                   help="leave out this namespace (after --namespace and --namespace-selector); repeatable")
    p.add_argument("--namespace-selector", metavar="SELECTOR", help="only namespaces with these labels (team=shop)")
    p.add_argument("--ignore", action="append", metavar="REGEX", help="images to leave out")
    p.add_argument("--rollback-images", dest="rollback_images", action="append", metavar="NAMESPACE",
                   help="check the images of kept Helm release revisions in this namespace (reads its Secrets)")
    p.add_argument("--require-signature", dest="require_signatures", action="append", metavar="GLOB",
                   help="images (Kyverno-style glob: * matches anything) that must carry a signature (cosign or "
                        "notation), for a verifier the cluster does not show (Ratify, a CI gate); repeatable")
    p.add_argument("--retention-source", dest="retention_sources", action="append", metavar="KIND=HOST",
                   help="read this registry's cleanup policy and say which images in use its next run deletes "
                        "(harbor=HOST, gitlab=HOST,api=URL,token_file=PATH; repeatable; docs/retention.md)")
    p.add_argument("--retention-interval", metavar="DURATION",
                   help="time between readings of the cleanup policies; 1m to 7 days (default 1h)")
    p.add_argument("--watch-down-threshold", metavar="DURATION",
                   help="not ready when a list/watch fails this long; 100ms to 24h (default 5m)")
    p.add_argument("--web-ui", nargs="?", const="true", metavar="true|false",
                   help="the HTML status page at / (default true; false: / lists the endpoints only)")
    options.add_cache(p)
    p.add_argument("--shard", metavar="N", help="this replica's shard (0-based), or a StatefulSet pod name")
    p.add_argument("--total-shards", metavar="M", help="replicas splitting the cluster (default 1)")
    options.add_registry(p)
    p.add_argument("--service-account-tokens", action="store_true", default=None,
                   help="request workloads' ServiceAccount tokens for credential providers with tokenAttributes")
    options.add_global(p, argparse.SUPPRESS)
    p.set_defaults(func=run)


FLAGS = ("listen", "kubeconfig", "contexts", "cluster_name", "expected", "interval", "namespaces",
         "exclude_namespaces", "namespace_selector", "ignore", "unit_sources", "watch_down_threshold",
         "rollback_images", "require_signatures", "retention_sources", "retention_interval", "web_ui", "service_account_tokens", "shard", "total_shards",
         *options.CACHE_KEYS, *options.REGISTRY_KEYS)


def run(args) -> int:
    """Check every input before the first request (usage errors exit 2), listen, serve until SIGTERM or SIGINT."""
    settings = options.settings(args, FLAGS)
    _check_expected(settings.expected)
    registry_settings, node_keyring = options.registry(settings)
    shared = options.shared_cache(settings)
    clusters = _clusters(settings)
    published, server = _listen(settings.listen)
    _collector_tuned()
    exporter = _exporter(settings, clusters, registry_settings, node_keyring, shared, published).start()
    log.info("serving on http://%s/metrics for %s%s%s", settings.listen, ", ".join(c.name for c in clusters),
             f" (shard {settings.shard} of {settings.total_shards})" if settings.total_shards > 1 else "",
             f", sharing results through {shared.url}" if shared else "")
    _until_signalled()
    log.info("shutting down")
    if shared is not None:
        shared.close()  # first: a cycle waiting for other exporters' results stops waiting
    exporter.stop()
    server.stop()
    return 0


# Python's default (700, 10, 10) runs the cycle collector every 700 new container objects; listing 50,000 pods makes
# millions, most of them kept (trimmed records), so every few seconds a full collection walked all of them again:
# 2.8 to 4.2 s of collection in a first inventory of a generated 50,000-pod cluster, 0.6 to 0.8 s with these
# (`scripts/profile_serve.py --gc-threshold 700,10,10` against `--gc-threshold 50000,20,10`). Young cycles are
# still collected, only less often; the full collections still run, 20 times less often at most.
COLLECTOR_THRESHOLDS = (50_000, 20, 10)


def _collector_tuned() -> None:
    """The cycle collector set for a process that keeps a cluster in memory: what the imports made is frozen
    (modules and classes live as long as the process; never walked again) and collections are less frequent."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _check_expected(sources: list[str]) -> None:
    from exporter.sources.expected.sources import SourceError, parse_spec

    for source in sources:
        try:
            parse_spec(source)
        except SourceError as exc:
            raise UsageError(str(exc)) from None


def _clusters(settings):
    from exporter.sources.kube.clusters import KubeConfigError, load_clusters

    try:
        return load_clusters(settings.kubeconfig, settings.contexts, settings.cluster_name)
    except KubeConfigError as exc:
        raise UsageError(str(exc)) from None


def _listen(listen: str):
    """(what the server publishes, the server listening): an address that cannot be used is a usage error."""
    import os

    from exporter.serve.endpoints import Published, Server

    host, _, port = listen.rpartition(":")
    published = Published()
    try:
        return published, Server(published, host.strip("[]"), int(port)).start()
    except OSError as exc:  # in use, not an address of this host, a privileged port: the setting is to change
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio adds the address again to strerror
        raise UsageError(f"cannot listen on {listen}: {why}") from None


def _exporter(settings, clusters, registry_settings, node_keyring, shared, published):
    import re

    from exporter.serve.loop import Exporter, Filters
    from exporter.sources.registry.checker import Checker
    from exporter.sources.shards import Shard

    filters = Filters(frozenset(settings.namespaces), frozenset(settings.exclude_namespaces),
                      tuple(re.compile(p) for p in settings.ignore), settings.namespace_selector,
                      Shard(settings.shard, settings.total_shards))
    checker = Checker(registry_settings, shared=shared)
    return Exporter(
        clusters, checker, published, expected=settings.expected,
        unit_sources=tuple(settings.unit_sources), filters=filters, node_keyring=node_keyring,
        interval=settings.interval, watch_down_threshold=settings.watch_down_threshold,
        rollback_namespaces=settings.rollback_images, web_ui=settings.web_ui,
        service_account_tokens=settings.service_account_tokens, require_signatures=settings.require_signatures,
        retention=_retention(settings, registry_settings, node_keyring, checker),
    )


def _retention(settings, registry_settings, node_keyring, checker):
    """The cleanup policies to read (`--retention-source`), with the registries' own credentials and pauses."""
    if not settings.retention_sources:
        return None
    from exporter.sources.registry.retention import Retention, parse_spec

    return Retention([parse_spec(s) for s in settings.retention_sources], registry_settings, node_keyring,
                     checker.hosts.pauses, settings.retention_interval)


def _until_signalled() -> None:
    import signal
    import threading

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
