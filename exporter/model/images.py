"""Parse and normalize image references exactly as distribution/reference does.

Everything that compares images (inventory, expected lists, registry checks, the Sylva report) goes
through `parse`, so `nginx`, `docker.io/nginx` and `index.docker.io/library/nginx` are one image.
Parsing is delegated to docker-image-py, a port of distribution/reference — the parser Sylva's
report tool normalizes with — so our normalized strings match theirs byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from docker_image import reference as _distribution

from exporter.common.redact import redact_image

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where Docker Hub's registry API answers

_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")


class InvalidReference(ValueError):
    """A string that is not a valid image reference; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed reference: `registry/repository[:tag][@digest]`, Docker Hub defaults applied."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The normalized name without tag or digest: `docker.io/library/nginx`."""
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_reference(self) -> str:
        """What a registry check asks for: the digest if pinned, else the tag (`latest` as the kubelet adds)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        """The normalized named form Sylva reports: no tag is added, tag and digest both kept."""
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@lru_cache(maxsize=65536)
def parse(text: str) -> ImageRef:
    """Parse a reference as written in a pod spec; raise InvalidReference with a specific message.

    Cached: a cluster of 50,000 pods names a few thousand distinct strings.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference("empty image reference")
    if len(text) > 4096:
        raise InvalidReference(f"image reference too long ({len(text)} characters)")
    if text != text.strip():
        raise InvalidReference(f"image reference {redact_image(text.strip())[:200]!r} has surrounding whitespace")
    return _plain(text) or _parsed(text)


def _parsed(text: str) -> ImageRef:
    """The library's parse (distribution/reference's ParseNormalizedNamed)."""
    try:
        parsed = _distribution.Reference.parse_normalized_named(text)
    except Exception as exc:  # the library raises a family of its own error classes
        raise InvalidReference(f"invalid image reference {redact_image(text)[:200]!r}: {exc}") from None
    registry, repository = parsed.split_hostname()
    return ImageRef(registry=registry, repository=repository, tag=parsed["tag"], digest=parsed["digest"])


# The common shape of a pod's image, `host.name[:port]/path/name[:tag]` all lowercase, with a dot in the host and the
# host not Docker Hub's, is its own normalized form: matched here in a microsecond where the library takes thirty
# (4,662 distinct images of a 50,000-pod cluster: 0.14 s of its report). Anything else (familiar names, Docker Hub,
# digests, uppercase, IPv6) goes to the library; tests/images holds the two equal wherever this one matches.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"  # distribution/reference's path component
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"  # a domain name component, lowercase
_PLAIN = re.compile(rf"(?P<registry>{_LABEL}(?:\.{_LABEL})+(?::[0-9]+)?)/(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
                    rf"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}))?")
_DOCKER_HUB_HOSTS = frozenset({DOCKER_HUB, "index.docker.io"})  # the library rewrites these
MAX_PATH = 255  # distribution/reference: a repository path longer than this is refused


def _plain(text: str) -> ImageRef | None:
    """The reference, when it has the common shape the library would return unchanged; None otherwise."""
    plain = _PLAIN.fullmatch(text)
    if plain is None or plain["registry"] in _DOCKER_HUB_HOSTS or len(plain["repository"]) > MAX_PATH:
        return None
    return ImageRef(registry=plain["registry"], repository=plain["repository"], tag=plain["tag"])


def api_host(registry: str) -> str:
    """The host a registry's API answers on: the registry itself, but Docker Hub's `docker.io` is served at
    `registry-1.docker.io` (what a node and `docker pull` contact)."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def normalize(text: str) -> str:
    """The normalized string of a reference (`busybox` -> `docker.io/library/busybox`)."""
    return str(parse(text))


def digest_of_image_id(image_id: str | None) -> str | None:
    """The digest in a container status `imageID` (`docker-pullable://repo@sha256:…`, `repo@sha256:…`).

    Returns None when the runtime recorded no repo digest (a bare `sha256:` image id is a config
    digest, which no registry serves, so it is not returned).
    """
    if not image_id or "@" not in image_id:
        return None
    digest = image_id.rsplit("@", 1)[1]
    return digest if _DIGEST.fullmatch(digest) else None
