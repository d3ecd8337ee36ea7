"""`check IMAGE…`: are these images in their registries now? Exit 0 when all are available, 1 otherwise.

With `--file LIST` it checks a whole release list (plain text, Sylva report or merged report): the
pre-flight a CI job runs before rolling a release out to a site behind a mirror.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

from exporter.commands import CommandError, UsageError
from exporter.config import ConfigError
from exporter.config import load as load_config
from exporter.expected.formats import ListFormatError, parse_list
from exporter.model import Status
from exporter.registry.checker import Checker
from exporter.registry.credentials import CredentialError, Keyring, from_docker_config_file
from exporter.registry.settings import CHECK_CEILING, from_options

DEFAULT_TIMEOUT = "5m"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check images in their registries now",
        description="Check image references in their registries; exit 0 when all are available, 1 otherwise.",
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    parser.add_argument("-f", "--file", action="append", default=[], metavar="LIST",
                        help="an expected list to check (plain text, Sylva report or merged report); repeatable")
    parser.add_argument("--docker-config", action="append", default=[], metavar="PATH",
                        help="docker config.json with registry credentials; repeatable")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    parser.add_argument("--config", metavar="FILE", help="YAML config (its registry settings are used)")
    parser.add_argument("--insecure-registry", action="append", default=[], metavar="HOST", help="plain HTTP")
    parser.add_argument("--skip-verify", action="append", default=[], metavar="HOST", help="no TLS verification")
    parser.add_argument("--registry-mirror", action="append", default=[], metavar="FROM=TO",
                        help="check images of FROM on the mirror TO[/PATH] first")
    parser.add_argument("--ca-file", metavar="PATH", help="extra CA certificates for every registry")
    parser.add_argument("--concurrency", type=int, metavar="N",
                        help=f"cap on requests in flight per registry (default: adaptive, at most {CHECK_CEILING})")
    parser.add_argument("--rate", type=float, metavar="R",
                        help="cap on requests per second per registry (default: adaptive, Retry-After honoured)")
    parser.add_argument("--timeout", default=DEFAULT_TIMEOUT, metavar="DURATION",
                        help=f"for the whole run (default {DEFAULT_TIMEOUT}): a 429 or 503 is asked again until then")
    parser.set_defaults(func=run)


def _images(args) -> list[str]:
    images = list(args.images)
    for path in args.file:
        try:
            parsed = parse_list(Path(path).read_bytes(), path)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except ListFormatError as exc:
            raise CommandError(str(exc)) from None
        for problem in parsed.problems:
            print(f"kube-image-exporter check: {problem}", file=sys.stderr)
        images.extend(sorted(parsed.images))
    if not images:
        raise UsageError("nothing to check: give IMAGE arguments or --file LIST")
    return list(dict.fromkeys(images))


def duration(text: str) -> float:
    """Seconds from a Go duration (`90s`, `2m`, `1h30m`, `500ms`) or a bare number of seconds."""
    value = str(text).strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise UsageError(f"--timeout: expected a duration like 90s, 2m or 1h30m, got {text!r}") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds > 0:
        raise UsageError(f"--timeout: must be more than zero, got {text!r}")
    return seconds


def run(args) -> int:
    deadline = time.time() + duration(args.timeout)
    images = _images(args)
    hosts = {}
    docker_configs = list(args.docker_config)
    if args.config:
        try:
            settings = load_config(args.config)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        hosts = {h: o.model_dump(exclude_none=True) for h, o in settings.registries.items()}
        docker_configs += settings.docker_config
    try:
        registry_settings = from_options(
            insecure=args.insecure_registry, skip_verify=args.skip_verify, mirrors=args.registry_mirror,
            ca_file=args.ca_file, concurrency=args.concurrency, rate=args.rate, hosts=hosts,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    for ca in filter(None, [registry_settings.ca_file] + [o.ca_file for o in registry_settings.hosts.values()]):
        if not Path(ca).is_file():
            raise UsageError(f"CA file {ca} does not exist")
    try:
        keyring = Keyring.of(c for path in docker_configs for c in from_docker_config_file(path))
    except CredentialError as exc:
        raise CommandError(str(exc)) from None

    show_progress = sys.stderr.isatty() and len(images) > 20

    def progress(done: int, total: int) -> None:
        if show_progress:
            print(f"\rchecked {done}/{total}", end="", file=sys.stderr, flush=True)

    checker = Checker(dataclasses.replace(registry_settings, ceiling=CHECK_CEILING))
    results = checker.check_many(((image, keyring) for image in images), progress, deadline=deadline)
    if show_progress:
        print(file=sys.stderr)
    rows = [(image, results[(image, keyring.fingerprint)]) for image in images]
    if args.json:
        print(json.dumps([{"image": image, "status": r.status.value, "digest": r.digest, "endpoint": r.endpoint,
                           "detail": r.detail} for image, r in rows], indent=2))
    else:
        width = max(len(s.value) for s in Status)
        for image, r in rows:
            extra = r.digest if r.status == Status.AVAILABLE else r.detail
            print(f"{r.status.value:<{width}}  {image}  {extra or ''}".rstrip())
    counts = Counter(r.status.value for _, r in rows)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"{len(rows)} images: {summary}", file=sys.stderr)
    return 0 if all(r.status == Status.AVAILABLE for _, r in rows) else 1
