"""`serve`: the exporter. Watches clusters, checks images, serves /metrics, /report, /healthz, /readyz."""

from __future__ import annotations

import logging
import re
import signal
import threading

from exporter import logs
from exporter.commands import CommandError, UsageError
from exporter.config import ConfigError, load
from exporter.endpoints import Published, Server
from exporter.expected.sources import SourceError, parse_spec
from exporter.kube.clusters import KubeConfigError, load_clusters
from exporter.registry.checker import Checker
from exporter.registry.credentials import CredentialError, Keyring, from_docker_config_file
from exporter.registry.settings import from_options
from exporter.registry.shared import SharedCache, SharedCacheError, read_password
from exporter.serve import Exporter, Filters
from exporter.shards import Shard

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="run the exporter",
                              description="Watch clusters, check images in registries, serve Prometheus metrics.")
    p.add_argument("--config", metavar="FILE", help="YAML settings (every flag has a key)")
    p.add_argument("--listen", metavar="HOST:PORT", help="default 0.0.0.0:9706")
    p.add_argument("--kubeconfig", metavar="PATH")
    p.add_argument("--context", dest="contexts", action="append", metavar="NAME", help="repeatable: one cluster each")
    p.add_argument("--cluster-name", metavar="NAME", help="the cluster label (one context only)")
    p.add_argument("--expected", action="append", metavar="SOURCE",
                   help="expected list: [NAME=]PATH, a directory, an http(s) URL or configmap:NS/NAME[/KEY]")
    p.add_argument("--interval", type=float, metavar="SECONDS", help="seconds between snapshots (default 60)")
    p.add_argument("--namespace", dest="namespaces", action="append", metavar="NS", help="only these namespaces")
    p.add_argument("--exclude-namespace", dest="exclude_namespaces", action="append", metavar="NS")
    p.add_argument("--namespace-selector", metavar="SELECTOR", help="only namespaces with these labels (team=shop)")
    p.add_argument("--ignore", action="append", metavar="REGEX", help="images to leave out")
    p.add_argument("--unit-source", dest="unit_sources", action="append", metavar="SOURCE",
                   help="flux (default), helm, argocd, label:KEY; in order")
    p.add_argument("--docker-config", action="append", metavar="PATH", help="node-level registry credentials")
    p.add_argument("--ca-file", metavar="PATH")
    p.add_argument("--insecure-registry", dest="insecure_registries", action="append", metavar="HOST")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append", metavar="FROM=TO")
    p.add_argument("--concurrency", type=int, metavar="N", help="requests in flight per registry (default 8)")
    p.add_argument("--rate", type=float, metavar="R", help="requests per second per registry (default 50)")
    p.add_argument("--rollback-images", dest="rollback_images", action="append", metavar="NAMESPACE",
                   help="check the images of kept Helm release revisions in this namespace (reads its Secrets)")
    p.add_argument("--cache-url", metavar="URL",
                   help="share check results with other exporters: redis://HOST:PORT/DB or rediss:// (Redis, Valkey)")
    p.add_argument("--cache-password-file", metavar="PATH",
                   help="the cache's password when the URL has none (else $KUBE_IMAGE_EXPORTER_CACHE_PASSWORD)")
    p.add_argument("--shard", metavar="N", help="this replica's shard (0-based), or a StatefulSet pod name")
    p.add_argument("--total-shards", type=int, metavar="M", help="replicas splitting the cluster (default 1)")
    p.add_argument("--watch-down-threshold", type=float, metavar="SECONDS",
                   help="not ready when a list/watch fails this long (default 300)")
    p.set_defaults(func=run)


FLAGS = ("listen", "kubeconfig", "contexts", "cluster_name", "expected", "interval", "namespaces",
         "exclude_namespaces", "namespace_selector", "ignore", "unit_sources", "docker_config", "ca_file",
         "insecure_registries", "registry_mirrors", "concurrency", "rate", "watch_down_threshold", "log_level",
         "log_format", "rollback_images", "cache_url", "cache_password_file", "shard", "total_shards")


def run(args) -> int:
    try:
        settings = load(args.config, {key: getattr(args, key) for key in FLAGS})
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    logs.configure(settings.log_level, settings.log_format)
    for source in settings.expected:
        try:
            parse_spec(source)
        except SourceError as exc:
            raise UsageError(str(exc)) from None
    shared = None
    if settings.cache_url:
        try:
            password = read_password(str(settings.cache_password_file) if settings.cache_password_file else None)
            shared = SharedCache(settings.cache_url, password=password)
        except SharedCacheError as exc:
            raise UsageError(str(exc)) from None
    try:
        clusters = load_clusters(settings.kubeconfig, settings.contexts, settings.cluster_name)
        node_keyring = Keyring.of(c for path in settings.docker_config for c in from_docker_config_file(path))
    except (KubeConfigError, CredentialError) as exc:
        raise CommandError(str(exc)) from None
    registry_settings = from_options(
        insecure=settings.insecure_registries, mirrors=settings.registry_mirrors,
        ca_file=str(settings.ca_file) if settings.ca_file else None, concurrency=settings.concurrency,
        rate=settings.rate, hosts={h: o.model_dump(exclude_none=True) for h, o in settings.registries.items()},
    )
    host, _, port = settings.listen.rpartition(":")
    published = Published()
    try:
        server = Server(published, host.strip("[]"), int(port)).start()
    except OSError as exc:
        raise CommandError(f"cannot listen on {settings.listen}: {exc.strerror}") from None
    exporter = Exporter(
        clusters, Checker(registry_settings, shared=shared), published, expected=settings.expected,
        unit_sources=tuple(settings.unit_sources),
        filters=Filters(frozenset(settings.namespaces), frozenset(settings.exclude_namespaces),
                        tuple(re.compile(p) for p in settings.ignore), settings.namespace_selector,
                        Shard(settings.shard, settings.total_shards)),
        node_keyring=node_keyring, interval=settings.interval, watch_down_threshold=settings.watch_down_threshold,
        rollback_namespaces=settings.rollback_images,
    ).start()
    log.info("serving on http://%s/metrics for %s%s%s", settings.listen, ", ".join(c.name for c in clusters),
             f" (shard {settings.shard} of {settings.total_shards})" if settings.total_shards > 1 else "",
             f", sharing results through {shared.url}" if shared else "")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("shutting down")
    if shared is not None:
        shared.close()  # first: a cycle waiting for other exporters' results stops waiting
    exporter.stop()
    server.stop()
    return 0
