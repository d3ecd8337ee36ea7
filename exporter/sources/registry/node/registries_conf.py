"""CRI-O's (and podman's) registries.conf v2: where a node pulls an image from, and whether it may.

`[[registry]]` tables match images by `prefix` (default: `location`; `*.example.com` matches any host under
it), the longest prefix winning; the matched part of the name is replaced by `location`. `blocked`
refuses the pull; `insecure` allows plain HTTP (checked over plain HTTP here, like `--insecure-registry`).
`[[registry.mirror]]` entries are tried first, in order, filtered by `pull-from-mirror` (`all`,
`digest-only`, `tag-only`; the registry's older `mirror-by-digest-only = true` means digest-only for all).
Drop-ins (`registries.conf.d/*.conf`, by name) come after the main file; a table with the same prefix
replaces the earlier one.

Parsing and matching are pure (`parse`, `merge`, `find`, `locations`); `load` reads a file and its drop-ins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporter.common.files import ReadError, parse_toml, read_text

PULL_FROM_MIRROR = ("all", "digest-only", "tag-only")


class RegistriesConfError(ValueError):
    """A registries.conf the runtime would refuse; the message names the file."""


@dataclass(frozen=True, slots=True)
class Location:
    location: str  # host[:port][/path]
    insecure: bool = False
    pull_from_mirror: str = "all"


@dataclass(frozen=True, slots=True)
class Registry:
    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Location, ...] = ()
    source: str = ""


def _bool(table: dict, key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise RegistriesConfError(f"{where}: {key} must be true or false")
    return value


def parse(text: str, source: str) -> tuple[Registry, ...]:
    """The `[[registry]]` tables of one file, validated as containers/image validates them."""
    try:
        data = parse_toml(text)  # nesting bounded: inline arrays thousands deep are refused, not recursed into
    except ReadError as exc:
        raise RegistriesConfError(f"{source}: {exc}") from None
    if "registries" in data:
        raise RegistriesConfError(f"{source}: the v1 format ([registries.search] ...) is not supported; use v2 [[registry]]")
    tables = data.get("registry") or []
    if not isinstance(tables, list):
        raise RegistriesConfError(f"{source}: 'registry' must be an array of tables [[registry]]")
    out = []
    for i, table in enumerate(tables):
        where = f"{source}: registry[{i}]"
        if not isinstance(table, dict):
            raise RegistriesConfError(f"{where}: must be a table")
        location = str(table.get("location") or "").rstrip("/")
        prefix = str(table.get("prefix") or "").rstrip("/") or location
        if not prefix:
            raise RegistriesConfError(f"{where}: needs a prefix or a location")
        if prefix.startswith("*.") and location:
            raise RegistriesConfError(f"{where}: a wildcard prefix ({prefix}) cannot have a location")
        if "*" in prefix[1:] or (prefix.startswith("*") and not prefix.startswith("*.")):
            raise RegistriesConfError(f"{where}: prefix {prefix!r}: only a leading '*.' wildcard is allowed")
        digest_only = _bool(table, "mirror-by-digest-only", where)
        mirrors = []
        for j, mirror in enumerate(table.get("mirror") or []):
            mwhere = f"{where}.mirror[{j}]"
            if not isinstance(mirror, dict) or not mirror.get("location"):
                raise RegistriesConfError(f"{mwhere}: needs a location")
            mode = mirror.get("pull-from-mirror") or ("digest-only" if digest_only else "all")
            if mode not in PULL_FROM_MIRROR:
                raise RegistriesConfError(f"{mwhere}: pull-from-mirror must be all, digest-only or tag-only")
            if digest_only and mode != "digest-only":
                raise RegistriesConfError(f"{mwhere}: pull-from-mirror conflicts with mirror-by-digest-only")
            mirrors.append(Location(str(mirror["location"]).rstrip("/"), _bool(mirror, "insecure", mwhere), mode))
        out.append(Registry(prefix, location,
                            _bool(table, "insecure", where), _bool(table, "blocked", where), tuple(mirrors), source))
    return tuple(out)


def merge(*files: tuple[Registry, ...]) -> tuple[Registry, ...]:
    """Later files' tables replace earlier ones with the same prefix; the others add up, in order."""
    merged: dict[str, Registry] = {}
    for registries in files:
        for registry in registries:
            merged[registry.prefix] = registry
    return tuple(merged.values())


def _matches(prefix: str, name: str) -> bool:
    if prefix.startswith("*."):
        host = name.split("/", 1)[0].split(":", 1)[0]
        return host.endswith(prefix[1:])
    if not name.startswith(prefix):
        return False
    return len(name) == len(prefix) or name[len(prefix)] in "/:@"


def find(registries: tuple[Registry, ...], name: str) -> Registry | None:
    """The table for an image name (`host[:port]/path`, no tag): the longest matching prefix."""
    best = None
    for registry in registries:
        if _matches(registry.prefix, name):
            length = len(name.split("/", 1)[0]) if registry.prefix.startswith("*.") else len(registry.prefix)
            if best is None or length > best[0]:
                best = (length, registry)
    return best[1] if best else None


def locations(registry: Registry, name: str, by_digest: bool) -> list[tuple[str, bool]]:
    """(rewritten name, insecure) to try for `name`, mirrors first, as the runtime orders them."""
    # a wildcard prefix stands for the image's own host
    matched = name.split("/", 1)[0] if registry.prefix.startswith("*.") else registry.prefix
    rest = name[len(matched):]
    out = []
    for mirror in registry.mirrors:
        if mirror.pull_from_mirror == "digest-only" and not by_digest:
            continue
        if mirror.pull_from_mirror == "tag-only" and by_digest:
            continue
        out.append((mirror.location + rest, mirror.insecure))
    out.append(((registry.location or matched) + rest, registry.insecure))
    return out


def load(path: Path) -> tuple[tuple[Registry, ...], list[str]]:
    """The main file and its drop-ins (`PATH.d/*.conf`, by name); RegistriesConfError naming the file that cannot
    be read or parsed (containers/image refuses the whole configuration then, and so do checks)."""
    found: list[tuple[Registry, ...]] = []
    dropins = path.parent / f"{path.stem}.conf.d" if path.suffix == ".conf" else path.with_name(path.name + ".d")
    files = [path] + (sorted(dropins.glob("*.conf")) if dropins.is_dir() else [])
    for file in files:
        try:
            found.append(parse(read_text(file), str(file)))
        except ReadError as exc:
            raise RegistriesConfError(f"registries.conf {file}: {exc}") from None
    return merge(*found), []
