"""The kubelet's image patterns: `matchImages` of a credential provider and the keys of its `auth` answer.

A pattern is a host with an optional port and path (`*.dkr.ecr.*.amazonaws.com`, `registry.io:5000/team`).
It matches an image (`host[:port]/path`, no tag) when both hosts have the same number of dot-separated
parts and each part matches as a glob, the ports are equal (both absent counts as equal), and the
pattern's path is a string prefix of the image's path — exactly the kubelet's `URLsMatch`, including its
plain string prefix (`registry.io/team` matches `registry.io/teams/app`, as on a node).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import NamedTuple


class PatternError(ValueError):
    """A pattern that is not `host[:port][/path]`."""


class Parsed(NamedTuple):
    host_parts: tuple[str, ...]
    port: str
    path: str


def parse(text: str) -> Parsed:
    """Host parts, port and path (with its leading `/`) of a pattern or an image name."""
    rest = text.strip()
    for scheme in ("https://", "http://"):
        if rest.startswith(scheme):
            rest = rest[len(scheme):]
            break
    host, slash, path = rest.partition("/")
    if not host:
        raise PatternError(f"{text!r}: no host")
    if host.startswith("["):  # an IPv6 literal: one part
        address, _, port = host.partition("]")
        parts, port = (address + "]",), port.removeprefix(":")
    else:
        name, _, port = host.partition(":")
        parts = tuple(name.lower().split("."))
    if port and not port.isdigit():
        raise PatternError(f"{text!r}: port {port!r} is not a number")
    if any(part == "" for part in parts):
        raise PatternError(f"{text!r}: empty host part")
    return Parsed(parts, port, slash + path if slash else "")


def matches(pattern: str | Parsed, image: str | Parsed) -> bool:
    """Does the image (`host[:port]/path`, no tag) fall under the pattern, by the kubelet's rules?"""
    glob = parse(pattern) if isinstance(pattern, str) else pattern
    target = parse(image) if isinstance(image, str) else image
    if glob.port != target.port or len(glob.host_parts) != len(target.host_parts):
        return False
    if not target.path.startswith(glob.path):
        return False
    return all(part == want if want.startswith("[") else fnmatchcase(part, want)  # an IPv6 literal is no glob
               for want, part in zip(glob.host_parts, target.host_parts))


def registry_of(image: str) -> str:
    """The `host[:port]` of an image name: the cache key of a `Registry` cache key type."""
    return image.split("/", 1)[0]
