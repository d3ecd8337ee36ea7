"""Registry options: per-host transport (plain HTTP, CA file, skip-verify), mirrors and load limits.

Plain data built from flags or the config file. Load is adaptive by default (registry/limits.py): requests in
flight grow below `ceiling` while a registry keeps up and are cut when it pushes back; `concurrency` and `rate`,
when set, are caps never exceeded. Short timeouts, and cache lifetimes that are long for what rarely changes
(a digest) and short for what should be re-asked soon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.common.redact import redact
from exporter.model.records import Status

# Cache lifetime of a result, by status (seconds); each entry gets +-10% jitter so checks spread out.
DEFAULT_TTL = {
    Status.AVAILABLE: 30 * 60,  # a tag can be deleted or moved: re-ask every half hour
    Status.ABSENT: 10 * 60,
    Status.UNAUTHORIZED: 10 * 60,
    Status.FORBIDDEN: 10 * 60,
    Status.RATE_LIMITED: 5 * 60,  # or Retry-After when longer
    Status.UNREACHABLE: 2 * 60,
    Status.TLS_ERROR: 5 * 60,
    Status.INVALID_REFERENCE: 24 * 3600,  # the string will not change
    Status.ERROR: 2 * 60,
}
DIGEST_AVAILABLE_TTL = 6 * 3600  # a digest never points elsewhere; only deletion can change the answer
# Adaptive in-flight ceilings per registry host: `serve` runs beside production pulls all day and stays gentler
# than a one-shot `check`, whose user waits for it.
SERVE_CEILING = 16
CHECK_CEILING = 32


@dataclass(frozen=True)
class HostOptions:
    """Options of one registry host (`registries: {HOST: {...}}` in the config)."""

    insecure: bool = False  # plain HTTP
    skip_verify: bool = False
    ca_file: Path | None = None
    mirrors: tuple[str, ...] = ()  # HOST[/PATH] endpoints tried before the host itself
    concurrency: int | None = None
    rate: float | None = None


@dataclass(frozen=True)
class RegistrySettings:
    concurrency: int | None = None  # cap on requests in flight per registry host; None: adaptive below `ceiling`
    rate: float | None = None  # cap on requests per second per registry host; None: adaptive (429s teach it)
    ceiling: int = SERVE_CEILING  # in-flight ceiling of the adaptive control when no cap is set
    timeout: float = 15.0  # per request (connect, read)
    ca_file: Path | None = None  # added to the system CAs for every host
    hosts: dict[str, HostOptions] = field(default_factory=dict)
    ttl: dict[Status, float] = field(default_factory=lambda: dict(DEFAULT_TTL))
    digest_ttl: float = DIGEST_AVAILABLE_TTL
    backoff_initial: float = 5.0  # first pause for a host after consecutive connection failures
    backoff_max: float = 300.0
    retry_after_max: float = 3600.0  # a Retry-After longer than this is capped (a lying registry)
    cache_size: int = 100_000
    node: Any = None  # a NodeView (exporter.sources.registry.node): the node's mirrors, TLS and credentials

    def host(self, host: str) -> HostOptions:
        options = self.hosts.get(host)
        if options is None and self.node is not None:
            options = self.node.host_options(host)
        return options or HostOptions()


def parse_mirror(item: str) -> tuple[str, str]:
    """`FROM=TO[/PATH]` as (FROM, TO); ValueError naming the item when it is not that."""
    source, sep, target = item.partition("=")
    source, target = source.strip(), target.strip()
    if sep and target:
        check_mirror(target)
    if not sep or not source or not target or "=" in target:
        raise ValueError(f"expected FROM=TO, got {redact(item)!r}")
    return source, target


def check_mirror(target: str) -> None:
    """ValueError when a mirror carries credentials (user info or a query): they would become the `registry`
    label of every series it serves. The message never repeats them."""
    authority = target.split("://", 1)[-1].split("/", 1)[0]
    if "@" in authority or "?" in target:
        raise ValueError(f"mirror {redact(target.partition('?')[0])!r} carries credentials (user info or a query): give them in a "
                         "docker config file (--docker-config) for the mirror's host instead")


def from_options(
    insecure: list[str] | None = None,
    skip_verify: list[str] | None = None,
    mirrors: list[str] | None = None,
    ca_file: str | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    hosts: dict[str, dict] | None = None,
) -> RegistrySettings:
    """Settings from command-line style options (`--insecure-registry HOST`, `--registry-mirror FROM=TO`)."""
    table: dict[str, dict] = {host: dict(values) for host, values in (hosts or {}).items()}
    for host in insecure or []:
        table.setdefault(host, {})["insecure"] = True
    for host in skip_verify or []:
        table.setdefault(host, {})["skip_verify"] = True
    for item in mirrors or []:
        source, target = parse_mirror(item)
        entry = table.setdefault(source, {})
        entry["mirrors"] = tuple(entry.get("mirrors", ())) + (target,)
    built = {}
    for host, values in table.items():
        values = dict(values)
        if values.get("ca_file"):
            values["ca_file"] = Path(values["ca_file"])
        values["mirrors"] = tuple(values.get("mirrors") or ())
        for mirror in values["mirrors"]:  # the config file's `hosts` table too
            check_mirror(mirror)
        built[host] = HostOptions(**values)
    kwargs = {}
    if concurrency:
        kwargs["concurrency"] = concurrency
    if rate:
        kwargs["rate"] = rate
    return RegistrySettings(ca_file=Path(ca_file) if ca_file else None, hosts=built, **kwargs)
