"""`check IMAGE…`: are these images in their registries now? Exit 0 when all are available, 1 otherwise.

With `--platform linux/amd64,linux/arm64`, an image must also serve each platform (as containerd matches them):
one lacking one is `platform_missing`, as a node of that platform would fail to pull it. With `--require-signature
GLOB`, an image the glob matches must carry a signature (cosign's tag or referrers, notation): `signature_missing`.
With `--retention-source KIND=HOST`, each image the next run of that registry's cleanup policy deletes says so;
`--fail-on-retention` makes that (or a policy that cannot be read) exit 1.

With `--file LIST` it checks a whole release list (plain text, Sylva report or merged report): the
pre-flight a CI job runs before rolling a release out to a site behind a mirror. It is a gate: every entry of
a list gets a verdict, and an entry that is no image reference is an `invalid_reference` row that fails it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.commands import options
from exporter.commands.errors import UsageError
from exporter.common.redact import redact, redact_image
from exporter.model.records import Verdict, verdict

DEFAULT_TIMEOUT = "5m"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check images in their registries now",
        description="Check image references in their registries: exit 0 when all are available, 1 when any is "
                    "not (an unparsable list entry included), 2 on usage or input errors.",
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("-f", "--file", action="append", default=[], metavar="LIST",
                        help="an expected list to check (plain text, Sylva report or merged report; a regular file of "
                             "at most 16 MiB, JSON nested at most 100 deep); repeatable")
    parser.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[/VARIANT],...",
                        help="platforms every image must serve (e.g. linux/amd64,linux/arm64; repeatable): an image "
                             "lacking one is platform_missing (one GET of its manifest, and of its config blob for a "
                             "single-platform image)")
    parser.add_argument("--require-signature", action="append", default=[], metavar="GLOB",
                        help="images (Kyverno-style glob: * matches anything) that must carry a signature, cosign's "
                             "or notation's, as a verifier would find it; one lacking it is signature_missing "
                             "(repeatable)")
    parser.add_argument("--retention-source", action="append", default=[], metavar="KIND=HOST",
                        help="read this registry's cleanup policy and mark the images its next run deletes "
                             "(harbor=HOST, gitlab=HOST,api=URL,token_file=PATH; repeatable)")
    parser.add_argument("--fail-on-retention", action="store_true",
                        help="exit 1 when a cleanup policy's next run deletes an image checked, or cannot be read")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--timeout", default=DEFAULT_TIMEOUT, metavar="DURATION",
                        help=f"for the whole run, 100ms to 24h (default {DEFAULT_TIMEOUT}): a 429 or 503 is asked "
                             "again until then, what is still limited is rate_limited")
    options.add_registry(parser)
    options.add_cache(parser)
    options.add_global(parser, argparse.SUPPRESS)
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class Row:
    """One verdict: the image as checked (or the entry as written) and what the registry, or the parser, said."""

    image: str
    status: str
    digest: str | None
    endpoint: str | None  # the host that answered
    detail: str
    mirrored: bool = False  # the image's registry has mirrors: the line says which endpoint answered
    retention: tuple[str, ...] = ()  # `POLICY RULE (next run …)` of each cleanup policy whose next run deletes it


def read_lists(paths: list[str]) -> tuple[list[str], list[Row]]:
    """Images of the lists, and an `invalid_reference` row per entry that is no reference; UsageError when a
    file cannot be read or is no list at all."""
    from exporter.common.files import MAX_LIST_BYTES, FileProblem, read_bounded
    from exporter.sources.expected.formats import ListFormatError, parse_list

    images: list[str] = []
    invalid: list[Row] = []
    for path in paths:
        try:
            parsed = parse_list(read_bounded(path, "list", MAX_LIST_BYTES), path)
        except (FileProblem, ListFormatError) as exc:
            raise UsageError(str(exc)) from None
        if not parsed.images and not parsed.rejected:
            raise UsageError(f"{path}: the list is empty")
        invalid.extend(Row(text, "invalid_reference", None, None, problem) for text, problem in parsed.rejected)
        images.extend(sorted(parsed.images))
    return images, invalid


def timeout(text: str) -> float:
    """Seconds of `--timeout` (a Go duration or a bare number of seconds, in the settings model's range for
    `timeout`); UsageError when it is none."""
    from exporter.commands.config import duration_in

    try:
        return duration_in("timeout", text)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None


def wanted_platforms(values: list[str]) -> tuple[str, ...]:
    """The platforms of `--platform` (comma-separated, repeatable), normalized; UsageError naming a bad one."""
    from exporter.model.platforms import parse

    try:
        return tuple(dict.fromkeys(parse(v) for value in values for v in value.split(",") if v.strip()))
    except ValueError as exc:
        raise UsageError(f"--platform: {exc}") from None


def run(args) -> int:
    import time

    deadline = time.time() + timeout(args.timeout)
    platforms = wanted_platforms(args.platform)
    sources = retention_specs(args.retention_source)
    settings = options.settings(args, (*options.REGISTRY_KEYS, *options.CACHE_KEYS))
    from_lists, invalid = read_lists(args.file)
    images = list(dict.fromkeys([*map(redact_image, args.images), *from_lists]))  # user info is never printed
    if not images and not invalid:
        raise UsageError("nothing to check: give IMAGE arguments or --file LIST")
    registry_settings, keyring = options.registry(settings)
    # --cache-url: verdicts a fleet already has are used, and what is checked here is shared with it;
    # waiting for an exporter that checks an image now never outlasts --timeout
    shared = options.shared_cache(settings, wait=max(0.0, deadline - time.time()))
    try:
        rows = check(images, keyring, registry_settings, progress=sys.stderr.isatty() and len(images) > 20,
                     deadline=deadline, shared=shared, platforms=platforms, signed=tuple(args.require_signature))
    finally:
        if shared is not None:
            shared.close()
    rows += invalid
    unread: list[str] = []
    if sources:
        rows, unread = with_retention(rows, sources, registry_settings, keyring)
    print_rows(rows, args.json)
    for policy in unread:
        print(f"{policy}: the cleanup policy could not be read (its reason is logged above): not forecast",
              file=sys.stderr)
    failed = args.fail_on_retention and (unread or any(row.retention for row in rows))
    return 0 if all(row.status == "available" for row in rows) and not failed else 1


def retention_specs(values: list[str]):
    """The `--retention-source` specs; UsageError naming a bad one."""
    from exporter.sources.registry.retention import parse_spec

    try:
        return [parse_spec(value) for value in values]
    except ValueError as exc:
        raise UsageError(f"--retention-source: {exc}") from None


def with_retention(rows: list[Row], sources, registry_settings, keyring) -> tuple[list[Row], list[str]]:
    """Rows marked with the cleanup policies whose next run deletes them, and the policies that could not be read."""
    import dataclasses
    import time

    from exporter.model.health import PolicyHealth
    from exporter.snapshot.retention import at_risk, in_use
    from exporter.sources.registry.limits import HostPauses
    from exporter.sources.registry.retention import Retention

    retention = Retention(sources, registry_settings, keyring, HostPauses(1.0, 60.0))
    forecasts = {f.policy: f for f in retention.read_all(in_use(row.image for row in rows))}
    health: dict[str, PolicyHealth] = {h.policy: h for h in retention.health()}
    found: dict[str, list[str]] = {}
    for _, image, policy, rule in sorted(at_risk((), [("", row.image) for row in rows], forecasts.values())):
        run = forecasts[policy].next_run
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run)) if run else "within a day"
        found.setdefault(image, []).append(f"{policy} {rule} (next run {when})")
    marked = [dataclasses.replace(row, retention=tuple(found.get(row.image, ()))) for row in rows]
    return marked, [policy for policy, h in sorted(health.items()) if not h.up]


def check(images: list[str], keyring, registry_settings, progress: bool = False,
          deadline: float | None = None, shared=None, platforms: tuple[str, ...] = (),
          signed: tuple[str, ...] = ()) -> list[Row]:
    """A row per image, in the given order; a 429 or 503 is asked again while `deadline` allows. With `platforms`,
    an available image lacking one is `platform_missing`; with `signed` globs, a matching available image without a
    signature is `signature_missing`."""
    import dataclasses

    from exporter.model.images import InvalidReference, parse
    from exporter.sources.registry.checker import Checker
    from exporter.sources.registry.settings import CHECK_CEILING

    def show(done: int, total: int) -> None:
        if progress:
            print(f"\rchecked {done}/{total}", end="", file=sys.stderr, flush=True)

    checker = Checker(dataclasses.replace(registry_settings, ceiling=CHECK_CEILING),  # one-shot: a higher ceiling
                      shared=shared)
    results = checker.check_many(((image, keyring) for image in images), show, deadline=deadline)
    if progress:
        print(file=sys.stderr)
    rows = []
    for image in images:
        result = results[(image, keyring.fingerprint)]
        try:
            mirrored = bool(registry_settings.host(parse(image).registry).mirrors)
        except InvalidReference:
            mirrored = False
        rows.append(Row(image, result.status.value, result.digest, result.endpoint, result.detail, mirrored))
    rows = with_platforms(rows, checker, keyring, platforms) if platforms else rows
    return with_signatures(rows, checker, keyring, signed) if signed else rows


def with_platforms(rows: list[Row], checker, keyring, platforms: tuple[str, ...]) -> list[Row]:
    """Available rows judged by the platforms their manifest serves: lacking one is `platform_missing`; a manifest
    whose platforms could not be read is `error` (a gate does not pass on what it could not see)."""
    import dataclasses

    from exporter.model.platforms import lacking
    from exporter.snapshot.drift import pinned

    served = {row.image: pinned(row.image, row.digest) for row in rows if row.status == "available" and row.digest}
    manifests = checker.manifests([(image, keyring) for image in set(served.values())])
    judged = []
    for row in rows:
        if row.image not in served:
            judged.append(row)
            continue
        manifest = manifests.get(served[row.image])
        if manifest is None:
            row = dataclasses.replace(row, status="error", detail=f"{served[row.image]}: its platforms could not be "
                                                                  "read (manifest or config blob refused or gone)")
        elif manifest.platforms is not None and (missing := lacking(manifest.platforms, platforms)):
            offered = ", ".join(sorted(manifest.platforms)) or "none"
            row = dataclasses.replace(row, status="platform_missing",
                                      detail=f"lacks {', '.join(missing)} (serves {offered})")
        judged.append(row)
    return judged


def with_signatures(rows: list[Row], checker, keyring, globs: tuple[str, ...]) -> list[Row]:
    """Available rows a glob matches, judged by the signatures beside the digest they serve, read from the endpoint
    that answered: none found is `signature_missing`; what could not be read is `error`."""
    import dataclasses

    from exporter.model.admission import covers, flag_policy, unmet
    from exporter.snapshot.drift import pinned
    from exporter.sources.registry.signatures import Signatures, Wanted

    rules = {glob: flag_policy(glob).rules[0] for glob in globs}
    covered = {row.image: [rule for rule in rules.values() if covers(rule, row.image, "", "Pod", None)] for row in rows
               if row.status == "available" and row.digest}
    wanted = {row.image: Wanted(pinned(row.image, row.digest), keyring, row.endpoint or "", signature_tag=True)
              for row in rows if covered.get(row.image)}
    found = Signatures(checker).evidence(wanted.values())
    judged = []
    for row in rows:
        if row.image in wanted:
            evidence = found.get(wanted[row.image].image)
            if evidence is None:
                row = dataclasses.replace(row, status="error", detail=f"{wanted[row.image].image}: its signatures "
                                                                      "could not be read")
            elif any(unmet(rule, evidence) for rule in covered[row.image]):
                row = dataclasses.replace(row, status="signature_missing", detail=f"no signature at {row.endpoint} "
                                          "(cosign tag or referrer, notation referrer)")
        judged.append(row)
    return judged


def print_rows(rows: list[Row], as_json: bool) -> None:
    """The rows as a table or JSON. Images were redacted when read; a detail may quote what a registry or a parser
    was given, so it is redacted here."""
    import json

    rows = [Row(r.image, r.status, r.digest, r.endpoint, redact(r.detail), r.mirrored, r.retention) for r in rows]
    if as_json:
        print(json.dumps([{"image": r.image, "status": r.status, "digest": r.digest, "endpoint": r.endpoint,
                           "detail": r.detail, **({"retention_at_risk": list(r.retention)} if r.retention else {})}
                          for r in rows], indent=2))
    else:
        width = max(len("invalid_reference"), *(len(r.status) for r in rows))
        for r in rows:
            extra = r.digest if r.status == "available" else r.detail
            via = f"via {r.endpoint}" if r.mirrored else ""
            deleted = f"deleted by {'; '.join(r.retention)}" if r.retention else ""
            print(f"{r.status:<{width}}  {r.image}  {' '.join(filter(None, [via, extra, deleted]))}".rstrip())
    print(summary(r.status for r in rows), file=sys.stderr)


def summary(statuses: Iterable[str]) -> str:
    """The closing line: the classes every surface uses (missing, unverified, available), each with its statuses,
    e.g. `3 images: 1 missing (1 absent), 1 unverified (1 unauthorized), 1 available`."""
    counts = Counter(statuses)
    parts = []
    for cls in (Verdict.MISSING, Verdict.UNVERIFIED, Verdict.AVAILABLE):
        mine = sorted((-n, status) for status, n in counts.items() if verdict(status) == cls)  # most first
        if not mine:
            continue
        total = -sum(n for n, _ in mine)
        detail = "" if cls == Verdict.AVAILABLE else " (" + ", ".join(f"{-n} {status}" for n, status in mine) + ")"
        parts.append(f"{total} {cls.value}{detail}")
    return f"{sum(counts.values())} images: {', '.join(parts)}"
