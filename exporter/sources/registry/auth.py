"""Registry authentication: parsing `WWW-Authenticate` challenges and caching bearer tokens.

The token flow of the distribution spec: a 401 names a realm, a service and a scope; a GET of the
realm (anonymous, or with Basic credentials) returns a token valid for `expires_in` seconds (60 when
absent). Tokens are cached per (realm, service, scope, credential) until shortly before they expire,
so a round over many tags of one repository asks for one token.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from cachetools import TLRUCache

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class ChallengeError(ValueError):
    """A WWW-Authenticate header that cannot be followed."""


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "bearer" | "basic" | "none" (the registry answered /v2/ without asking)
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenge(header: str | None) -> Challenge:
    """The first usable challenge of a WWW-Authenticate header (Bearer preferred over Basic)."""
    if not header or not header.strip():
        raise ChallengeError("401 without a WWW-Authenticate header")
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        return Challenge("basic")
    if scheme != "bearer":
        raise ChallengeError(f"unsupported authentication scheme {scheme!r}")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise ChallengeError(f"Bearer challenge without a usable realm ({realm!r})")
    return Challenge("bearer", realm=realm, service=params.get("service", ""), scope=params.get("scope", ""))


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    lifetime: float  # seconds it is valid from when it was stored


class TokenCache:
    """Bearer tokens by (realm, service, scope, credential fingerprint), dropped 10 s before they expire.

    Bounded: past `maxsize` tokens the least recently used goes first (cachetools' TLRUCache, which also
    drops expired tokens as it goes). Not thread-safe: a round's event loop is its one user at a time.
    """

    MARGIN = 10.0  # a token this close to its expiry is not sent: it could expire on the way

    def __init__(self, clock=time.monotonic, maxsize: int = 10_000) -> None:
        self._tokens: TLRUCache = TLRUCache(maxsize=maxsize, ttu=self._expiry, timer=clock)

    def _expiry(self, key, token: Token, now: float) -> float:
        return now + token.lifetime - self.MARGIN

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, key: tuple[str, str, str, str]) -> str | None:
        token = self._tokens.get(key)
        return token.value if token is not None else None

    def put(self, key: tuple[str, str, str, str], value: str, expires_in: float) -> None:
        self._tokens[key] = Token(value, max(0.0, expires_in))


def token_from_response(payload: object) -> tuple[str, float]:
    """(token, expires_in) from a token endpoint's JSON; ChallengeError when there is no token."""
    if not isinstance(payload, dict):
        raise ChallengeError("token endpoint answered something other than a JSON object")
    token = payload.get("token") or payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise ChallengeError("token endpoint answered without a token")
    expires_in = payload.get("expires_in", 60)
    try:
        expires_in = float(expires_in)
    except (TypeError, ValueError):
        expires_in = 60.0
    return token, expires_in if expires_in > 0 else 60.0
