"""`report`: the Sylva-compatible image reference report of a cluster or of a kubectl JSON file.

Takes the arguments of Sylva's `get_image_refs.py` (`--kubeconfig`, `--output`, `--workload-cluster-name`),
so a CI job switches by changing only the command name. `--check-registry` adds `registry_status` (image ->
status) checked as `check` checks, with the same registry options; then the exit is 1 when an image is not
available.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.commands import options
from exporter.commands.errors import CommandError, UsageError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the Sylva image reference report",
        description="Write the Sylva-compatible image reference report (images, units, ownership chains).",
    )
    parser.add_argument("--from-file", metavar="FILE",
                        help="read `kubectl get ... -A -o json` output instead of a cluster (a regular file of at "
                             "most 1 GiB, JSON nested at most 100 deep)")
    options.add_cluster(parser, "kubeconfig context (one)")
    parser.add_argument("--workload-cluster-name", metavar="NAME", help="report on this Cluster API workload cluster")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--check-registry", action="store_true",
                        help="add each image's registry status (registry_status); exit 1 when one is not available")
    options.add_registry(parser)
    options.add_global(parser, argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args) -> int:
    settings = options.settings(args, ("kubeconfig", "contexts", "unit_sources", *options.REGISTRY_KEYS))
    registry = options.registry(settings) if args.check_registry else None
    from exporter.sources import inventory
    from exporter.sources.kube.owners import OwnerResolver, label_keys
    from exporter.views import report

    sources = settings.unit_sources
    keys = label_keys(sources)
    with _collector_paused():
        if args.from_file:
            if args.kubeconfig or args.contexts or args.workload_cluster_name:
                raise UsageError("--from-file reads a file: --kubeconfig, --context and --workload-cluster-name "
                                 "do not apply")
            index, lookup = _from_file(args.from_file, keys)
        else:
            index, lookup = _from_cluster(settings, args.workload_cluster_name, keys)

        from exporter.sources.kube.errors import ApiError

        try:
            chains, problems = inventory.chains(index.pods, OwnerResolver(lookup, sources))
        except ApiError as exc:
            raise CommandError(str(exc)) from None
        for problem in problems:
            log.warning("%s (left out of the report)", problem)
        result = report.build(chains)
    code = 0
    if registry is not None:
        from exporter.commands.check import check

        registry_settings, keyring = registry
        rows = check(result["images"], keyring, registry_settings)
        result["registry_status"] = {row.image: row.status for row in rows}
        code = 0 if all(row.status == "available" for row in rows) else 1
    _write(report.dumps(result), args.output)
    return code


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cycle collector paused while the report is built, what was built then kept out of its sight.

    Reading and resolving 50,000 pods allocates millions of dicts, records and tuples that all live until the
    command exits and hold no cycles; each collection would walk every one of them again (seconds of a run that
    otherwise takes about as long as parsing the file). Garbage with cycles made meanwhile waits for the next
    collection, after the build."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _from_file(path: str, keys):
    from exporter.sources.kube import listfile
    from exporter.sources.kube.objects import ReportFields

    try:
        index = listfile.load(path, keys, ReportFields)
    except listfile.ListFileError as exc:
        raise UsageError(str(exc)) from None
    if index.skipped:
        print(f"kube-image-exporter report: {len(index.skipped)} objects of {path} left out as unreadable "
              f"(first: {index.skipped[0]})", file=sys.stderr)
    return index, index.lookup


def _from_cluster(settings, workload_cluster_name: str | None, keys):
    from exporter.sources.kube import snapshot
    from exporter.sources.kube.api import ApiError
    from exporter.sources.kube.clusters import KubeConfigError, load_clusters, workload_cluster

    if len(settings.contexts) > 1:
        raise UsageError("report reads one cluster: give at most one --context")
    try:
        [client] = load_clusters(settings.kubeconfig, settings.contexts)
        if workload_cluster_name:
            client = workload_cluster(client, workload_cluster_name)
    except KubeConfigError as exc:
        raise UsageError(str(exc)) from None
    try:
        index = snapshot.read(client, keys)
    except ApiError as exc:
        raise CommandError(str(exc)) from None
    return index, index.lookup_or(snapshot.api_lookup(client, keys))


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with open(output, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
