"""`report`: the Sylva-compatible image reference report of a cluster or of a kubectl JSON file.

Takes the arguments of Sylva's `get_image_refs.py` (`--kubeconfig`, `--output`, `--workload-cluster-name`),
so a CI job switches by changing only the command name.
"""

from __future__ import annotations

import logging
import sys

from exporter import inventory, report
from exporter.commands import CommandError, UsageError
from exporter.kube import listfile, snapshot
from exporter.kube.api import ApiError
from exporter.kube.clusters import KubeConfigError, load_clusters, workload_cluster
from exporter.kube.owners import OwnerResolver, label_keys

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the Sylva image reference report",
        description="Write the Sylva-compatible image reference report (images, units, ownership chains).",
    )
    parser.add_argument("--from-file", metavar="FILE", help="read `kubectl get ... -A -o json` output instead of a cluster")
    parser.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    parser.add_argument("--context", action="append", default=[], metavar="NAME", help="kubeconfig context")
    parser.add_argument("--workload-cluster-name", metavar="NAME", help="report on this Cluster API workload cluster")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument(
        "--unit-source", action="append", default=[], metavar="SOURCE",
        help="unit sources in order: flux (default), helm, argocd, label:KEY",
    )
    parser.add_argument("--check-registry", action="store_true", help="add each image's registry status")
    parser.set_defaults(func=run)


def run(args) -> int:
    sources = args.unit_source or ["flux"]
    for source in sources:
        if source not in ("flux", "helm", "argocd") and not (source.startswith("label:") and len(source) > 6):
            raise UsageError(f"unknown unit source {source!r} (flux, helm, argocd or label:KEY)")
    if args.check_registry:
        raise UsageError("--check-registry is not available yet")
    keys = label_keys(sources)
    if args.from_file:
        if args.kubeconfig or args.context or args.workload_cluster_name:
            raise UsageError("--from-file reads a file: --kubeconfig, --context and --workload-cluster-name do not apply")
        try:
            index = listfile.load(args.from_file, keys)
        except listfile.ListFileError as exc:
            raise CommandError(str(exc)) from None
        lookup = index.lookup
    else:
        if len(args.context) > 1:
            raise UsageError("report reads one cluster: give at most one --context")
        try:
            [client] = load_clusters(args.kubeconfig, args.context)
            if args.workload_cluster_name:
                client = workload_cluster(client, args.workload_cluster_name)
            index = snapshot.read(client, keys)
        except (KubeConfigError, ApiError) as exc:
            raise CommandError(str(exc)) from None
        lookup = index.lookup_or(snapshot.api_lookup(client, keys))

    try:
        found = inventory.build("", index.pods, (), OwnerResolver(lookup, sources))
    except ApiError as exc:
        raise CommandError(str(exc)) from None
    for problem in found.problems:
        log.warning("%s (left out of the report)", problem)
    _write(report.dumps(report.build(found.chains)), args.output)
    return 0


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise CommandError(f"cannot write {output}: {exc.strerror}") from None
