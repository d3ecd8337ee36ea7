"""Registry credentials as the kubelet finds them: pull secrets and docker config files, matched by key.

A `Keyring` is the ordered set of docker config `auths` one pod would use (its pull secrets, else its
ServiceAccount's, plus mounted docker config files). `match` follows the kubelet's rules: keys may carry
a scheme and a path prefix; every key whose host matches and whose path is a prefix of the repository
applies, the most specific first; Docker Hub's aliases are one host. A Keyring's `fingerprint` names it
in caches without revealing any secret, so one namespace's valid secret never stands in for another's.
Nothing here logs or formats a secret: errors name the secret, never its content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.common.files import Marked, ReadError, parse_json, read_file

MAX_CONFIG_BYTES = 1024 * 1024  # a docker config with hundreds of registries is kilobytes
DOCKER_HUB_KEYS = {"index.docker.io", "docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class CredentialError(ValueError):
    """A pull secret or docker config that cannot be used; names the source, never its content."""


@dataclass(frozen=True, slots=True)
class Credential:
    """One entry of a docker config `auths` map. `repr` never shows secrets."""

    key: str
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = ""

    @property
    def host(self) -> str:
        return _parse_key(self.key)[0]


@dataclass(frozen=True, slots=True)
class FailedCredential(Credential):
    """A credential provider that gave no credentials: `source` says which and why (never the plugin's own
    output). Made by the node's providers; here so that a check knows it without loading them."""


def _parse_key(key: str) -> tuple[str, str]:
    """(host, path prefix) of an auths key such as `https://index.docker.io/v1/` or `registry.example.com/team`."""
    text = key.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    host, _, path = text.partition("/")
    host = host.lower()
    if host in DOCKER_HUB_KEYS:
        host = "docker.io"
        if path in ("v1", "v1/", "v2", "v2/"):
            path = ""
    return host, path.strip("/")


def parse_auths(auths: Any, source: str) -> tuple[Credential, ...]:
    """Credentials of a docker config `auths` map; CredentialError when its shape is wrong."""
    if not isinstance(auths, dict):
        raise CredentialError(f"{source}: 'auths' is not a mapping")
    out = []
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            raise CredentialError(f"{source}: entry for {key!r} is not a mapping")
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise CredentialError(f"{source}: 'auth' for {key!r} is not base64 of user:password") from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise CredentialError(f"{source}: 'auth' for {key!r} is not user:password")
        token = str(entry.get("identitytoken") or entry.get("registrytoken") or "")
        if not (username or password or token):
            continue  # e.g. a credsStore stub: nothing usable here
        out.append(Credential(str(key), username, password, token, source))
    return tuple(out)


def from_docker_config(data: Any, source: str) -> tuple[Credential, ...]:
    """Credentials of a docker `config.json` document (`{"auths": {...}}`)."""
    if not isinstance(data, dict):
        raise CredentialError(f"{source}: not a docker config (expected a JSON object)")
    return parse_auths(data.get("auths", {}), source)


def from_docker_config_file(path: str | Path, source: str = "") -> tuple[Credential, ...]:
    """Credentials of a docker config file: `config.json` (`{"auths": {...}}`) or the older `.dockercfg` (the
    `auths` map alone). `source` names it in errors and details (`docker config PATH` by default)."""
    path = Path(path)
    source = source or f"docker config {path}"
    try:
        data = parse_json(read_file(path, MAX_CONFIG_BYTES)[1])
    except Marked as exc:
        raise CredentialError(f"{source}:{exc.mark[0]}:{exc.mark[1]}: {exc}") from None
    except ReadError as exc:
        raise CredentialError(f"{source}: {exc}") from None
    if path.name == ".dockercfg":
        return parse_auths(data, source)
    return from_docker_config(data, source)


def from_secret(secret: Mapping[str, Any]) -> tuple[Credential, ...]:
    """Credentials of a `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` Secret (raw API dict)."""
    meta = secret.get("metadata") or {}
    source = f"secret {meta.get('namespace')}/{meta.get('name')}"
    kind = secret.get("type")
    data = secret.get("data") or {}
    if kind == "kubernetes.io/dockerconfigjson":
        key = ".dockerconfigjson"
    elif kind == "kubernetes.io/dockercfg":
        key = ".dockercfg"
    else:
        raise CredentialError(f"{source}: type {kind!r} is not a pull secret type")
    if key not in data:
        raise CredentialError(f"{source}: has no {key} key")
    try:
        document = parse_json(base64.b64decode(data[key], validate=True))
    except (binascii.Error, TypeError, ValueError):  # ReadError: not JSON, or nested too deep
        raise CredentialError(f"{source}: {key} is not base64 of JSON") from None
    if key == ".dockercfg":
        return parse_auths(document, source)
    return from_docker_config(document, source)


def fingerprint(credentials: Iterable[Credential | None]) -> str:
    """A stable name for a set of credentials (a hash: reveals nothing, fits in cache keys)."""
    present = [c for c in credentials if c is not None]
    if not present:
        return "anonymous"
    return short_hash("".join(part + "\0" for c in present
                              for part in (c.key, c.username, c.password, c.identity_token)))


def short_hash(text: str) -> str:
    """16 hex digits of the text's SHA-256: how every credential set and node configuration is named."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The credentials one pod's pulls would use, in the order the kubelet tries them."""

    credentials: tuple[Credential, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.credentials)

    def match(self, registry: str, repository: str) -> list[Credential]:
        """Credentials for an image, most specific key first (host, then longest path prefix)."""
        registry = "docker.io" if registry in DOCKER_HUB_KEYS else registry.lower()
        found = []
        for order, credential in enumerate(self.credentials):
            host, path = _parse_key(credential.key)
            if host != registry:
                continue
            if path and not (repository == path or repository.startswith(path + "/")):
                continue
            found.append((-len(path), order, credential))
        return [c for _, _, c in sorted(found, key=lambda item: (item[0], item[1]))]

    def __add__(self, other: "Keyring") -> "Keyring":
        return Keyring(self.credentials + other.credentials)

    @classmethod
    def of(cls, credentials: Iterable[Credential]) -> "Keyring":
        return cls(tuple(credentials))


ANONYMOUS = Keyring()
