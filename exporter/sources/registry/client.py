"""One manifest check against one registry endpoint: auth flow, HEAD (GET where HEAD is refused), status.

httpx stays in this package: every transport failure is classified here into a `Status` with a
detail line, so callers never see an httpx exception. Credentials are sent, never logged or echoed:
details name the registry and the credential's source (a secret's name), not its content.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from exporter.common.redact import redact_url
from exporter.model.manifests import Manifest, read_document
from exporter.model.records import Status
from exporter.sources.registry.auth import Challenge, ChallengeError, TokenCache, parse_challenge, token_from_response
from exporter.sources.registry.credentials import Credential, fingerprint
from exporter.sources.registry.limits import Gate, Outcome
from exporter.sources.registry.stats import RequestStats

log = logging.getLogger(__name__)

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
DOCKER_HUB_API = "registry-1.docker.io"
CLIENT_ID = "kube-image-exporter"  # the OAuth2 client_id the token spec asks of a refresh-token request


@dataclass(frozen=True, slots=True)
class Answer:
    """What one endpoint said of one manifest."""

    status: Status
    digest: str | None = None
    detail: str = ""
    retry_after: str | None = None  # raw header of a 429 or 503, interpreted by the caller
    pushback: bool = False  # a 429 or 503: the registry asks for less load, and the answer may change soon
    connection_failed: bool = False  # the host did not answer at all (refused, timeout, 5xx, TLS)
    media_type: str | None = None  # of the manifest found (an index tells a multi-arch image)
    manifest: Manifest | None = None  # what the manifest (or config blob) says, when it was fetched


@asynccontextmanager
async def _ungated():
    yield Outcome()


def _transport_failure(exc: Exception, host: str) -> Answer:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ssl.SSLError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc):
        reason = next((str(e) for e in chain if isinstance(e, ssl.SSLError)), str(exc))
        if any(word in reason for word in ("WRONG_VERSION_NUMBER", "record layer failure", "packet length too long")):
            # the answer was not TLS (the wording of OpenSSL 1.1, 3.x and LibreSSL)
            return Answer(Status.TLS_ERROR, connection_failed=True,
                          detail=f"{host}: answered plain HTTP, not TLS: if it serves HTTP only, check it with "
                                 f"--insecure-registry {host} (insecure_registries in the config file)")
        return Answer(Status.TLS_ERROR, detail=f"{host}: TLS failure: {reason}", connection_failed=True)
    if isinstance(exc, httpx.TimeoutException):
        return Answer(Status.UNREACHABLE, detail=f"{host}: timed out ({type(exc).__name__})", connection_failed=True)
    text = str(exc) or type(exc).__name__
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text.lower():
        return Answer(Status.UNREACHABLE, detail=f"{host}: DNS lookup failed", connection_failed=True)
    return Answer(Status.UNREACHABLE, detail=f"{host}: cannot connect ({text})", connection_failed=True)


class EndpointClient:
    """Checks manifests on registry endpoints through one httpx client (one TLS configuration)."""

    def __init__(
        self, http: httpx.AsyncClient, tokens: TokenCache, stats: RequestStats, challenges: dict[str, Challenge],
        gates: Callable[[str], Gate] | None = None,
    ) -> None:
        self._http = http
        self._gates = gates  # host -> its load control for this round; None: requests go unthrottled
        self._tokens = tokens
        self._stats = stats
        self._challenges = challenges  # base URL -> challenge seen; shared so it outlives a round
        self._token_locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}  # one token request per scope

    async def aclose(self) -> None:
        """Close the HTTP client (its connections) at the end of the round."""
        await self._http.aclose()

    async def _send(self, method: str, url: str, host: str, headers: dict[str, str]) -> httpx.Response:
        """One request through the host's gate (in flight, pace, pause), its outcome told back to it.

        Raises `limits.Paused` when the host is paused past the round's deadline (nothing is sent).
        """
        gate = self._gates(host) if self._gates is not None else None
        async with (gate.request() if gate is not None else _ungated()) as outcome:
            started = time.perf_counter()
            try:
                response = await self._http.request(method, url, headers=headers)
            except httpx.HTTPError as exc:
                outcome.timed_out = isinstance(exc, httpx.TimeoutException)
                self._stats.record(host, method, "error", time.perf_counter() - started)
                raise
            outcome.code = response.status_code
            self._stats.record(host, method, str(response.status_code), time.perf_counter() - started)
        return response

    async def ping(self, base: str, host: str) -> Answer | None:
        """Learn once whether `base` wants authentication (GET /v2/), so concurrent checks start authenticated.

        Returns an Answer when the registry cannot be reached, None otherwise.
        """
        if base in self._challenges:
            return None
        try:
            response = await self._send("GET", f"{base}/v2/", host, {})
        except httpx.HTTPError as exc:
            return _transport_failure(exc, host)
        if response.status_code == 401:
            try:
                self._challenges[base] = parse_challenge(response.headers.get("WWW-Authenticate"))
            except ChallengeError as exc:
                return Answer(Status.ERROR, detail=f"{host}: {exc}")
        elif response.status_code >= 500:
            return Answer(Status.UNREACHABLE, detail=f"{host}: registry answered {response.status_code}",
                          connection_failed=True)
        else:
            self._challenges[base] = Challenge("none")
        return None

    async def _authorization(
        self, base: str, host: str, repository: str, credential: Credential | None
    ) -> tuple[str | None, Answer | None]:
        """The Authorization header for this repository, fetching a token if the registry wants one."""
        challenge = self._challenges.get(base)
        if challenge is None or challenge.scheme == "none":
            return None, None
        if challenge.scheme == "basic":
            if credential is None or not credential.username:
                return None, None
            pair = f"{credential.username}:{credential.password}".encode()
            return "Basic " + base64.b64encode(pair).decode(), None
        scope = f"repository:{repository}:pull"
        fingerprint = credential_fingerprint(credential)
        key = (challenge.realm, challenge.service, scope, fingerprint)
        async with self._token_locks.setdefault(key, asyncio.Lock()):
            return await self._token(key, challenge, host, repository, scope, credential)

    async def prefetch_tokens(self, base: str, repositories: list[str], credential: Credential | None,
                              batch: int = 10) -> None:
        """Ask for the tokens a round will need, several scopes per request (the token spec allows it).

        Best effort: a batch that fails is left to the per-repository path, which reports the failure.
        """
        challenge = self._challenges.get(base)
        if challenge is None or challenge.scheme != "bearer":
            return
        fingerprint = credential_fingerprint(credential)
        wanted = [r for r in sorted(set(repositories))
                  if self._tokens.get((challenge.realm, challenge.service, f"repository:{r}:pull", fingerprint)) is None]
        if len(wanted) < 2:
            return
        for start in range(0, len(wanted), batch):
            scopes = [f"repository:{r}:pull" for r in wanted[start:start + batch]]
            realm_host = httpx.URL(challenge.realm).host
            started = time.perf_counter()
            try:
                response = await self._request_token(challenge, scopes, credential)
            except httpx.HTTPError:
                self._stats.record(realm_host, "TOKEN", "error", time.perf_counter() - started)
                return
            self._stats.record(realm_host, "TOKEN", str(response.status_code), time.perf_counter() - started)
            if response.status_code != 200:
                return
            try:
                token, expires_in = token_from_response(response.json())
            except (ValueError, ChallengeError):
                return
            for scope in scopes:
                self._tokens.put((challenge.realm, challenge.service, scope, fingerprint), token, expires_in)

    async def _request_token(self, challenge: Challenge, scopes: list[str],
                             credential: Credential | None) -> httpx.Response:
        """Ask the realm for a token: a refresh token (docker config `identitytoken`) in a POST form, as the
        token spec's OAuth2 flow has it (never in a URL, which servers and proxies log); otherwise a GET,
        with Basic credentials when there are some."""
        if credential is not None and credential.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                    "client_id": CLIENT_ID, "scope": " ".join(scopes)}
            if challenge.service:
                form["service"] = challenge.service
            return await self._http.post(challenge.realm, data=form)
        params = [("scope", scope) for scope in scopes]
        if challenge.service:
            params.append(("service", challenge.service))
        auth = httpx.BasicAuth(credential.username, credential.password) if credential and credential.username else None
        return await self._http.get(challenge.realm, params=params, auth=auth)

    async def _token(self, key, challenge: Challenge, host: str, repository: str, scope: str,
                     credential: Credential | None) -> tuple[str | None, Answer | None]:
        token = self._tokens.get(key)
        if token is None:
            realm_host = httpx.URL(challenge.realm).host
            started = time.perf_counter()
            try:
                response = await self._request_token(challenge, [scope], credential)
            except httpx.HTTPError as exc:
                self._stats.record(realm_host, "TOKEN", "error", time.perf_counter() - started)
                answer = _transport_failure(exc, realm_host)
                return None, Answer(answer.status, detail=f"token endpoint {answer.detail}",
                                    connection_failed=answer.connection_failed)
            self._stats.record(realm_host, "TOKEN", str(response.status_code), time.perf_counter() - started)
            refusal = _token_refusal(response, host, repository, credential)
            if refusal is not None:
                return None, refusal
            try:
                token, expires_in = token_from_response(response.json())
            except (ValueError, ChallengeError) as exc:
                return None, Answer(Status.ERROR, detail=f"{host}: {exc}")
            self._tokens.put(key, token, expires_in)
        return f"Bearer {token}", None

    async def check(
        self, base: str, host: str, repository: str, reference: str, credential: Credential | None,
        fetch: bool = False, path: str = "manifests",
    ) -> Answer:
        """Is `repository` at `reference` served by the registry at `base` (`https://host:port`)?

        With `fetch`, the manifest is read (GET) and what it says is returned in the answer; with `path="blobs"`,
        a blob (an image's config, by digest) is read instead.
        """
        url = f"{base}/v2/{repository}/{path}/{reference}"
        method = "GET" if fetch else "HEAD"
        for attempt in range(3):  # at most: unauthenticated 401 -> authenticated; HEAD refused -> GET
            authorization, failure = await self._authorization(base, host, repository, credential)
            if failure is not None:
                return failure
            headers = {"Accept": ACCEPT}
            if authorization:
                headers["Authorization"] = authorization
            try:
                response = await self._send(method, url, host, headers)
            except httpx.HTTPError as exc:
                return _transport_failure(exc, host)
            code = response.status_code
            if code == 401 and authorization is not None and attempt < 2 and self._relearn(base, response):
                continue  # the registry sends its clients to another token realm now: follow it
            if code == 401 and authorization is None and attempt == 0:
                try:  # the registry wants authentication after all (or for this repository only)
                    self._challenges[base] = parse_challenge(response.headers.get("WWW-Authenticate"))
                except ChallengeError as exc:
                    return Answer(Status.ERROR, detail=f"{host}: {exc}")
                if self._challenges[base].scheme == "basic" and (credential is None or not credential.username):
                    return Answer(Status.UNAUTHORIZED, detail=f"{host}: requires credentials")
                continue
            if method == "HEAD" and code in (400, 405, 501):
                method = "GET"  # a registry that refuses HEAD for manifests
                continue
            return self._classify(response, host, repository, reference, authorization is not None, credential)
        return Answer(Status.ERROR, detail=f"{host}: authentication did not settle for {repository}")

    def _relearn(self, base: str, response: httpx.Response) -> bool:
        """Whether a 401 to an authenticated request names another realm, service or scheme than the one
        learned for `base`; if so that challenge replaces it (a moved token server is followed, not
        reported as `unauthorized` until the exporter restarts)."""
        try:
            fresh = parse_challenge(response.headers.get("WWW-Authenticate"))
        except ChallengeError:
            return False
        known = self._challenges.get(base)
        if known is not None and (fresh.scheme, fresh.realm, fresh.service) == (known.scheme, known.realm,
                                                                                 known.service):
            return False
        log.info("%s: authentication challenge changed (%s %s), following it", base, fresh.scheme,
                 redact_url(fresh.realm))
        self._challenges[base] = fresh
        return True

    def _classify(
        self, response: httpx.Response, host: str, repository: str, reference: str, authenticated: bool,
        credential: Credential | None,
    ) -> Answer:
        code = response.status_code
        where = f"{host}/{repository}:{reference}" if not reference.startswith("sha256:") else f"{host}/{repository}@{reference}"
        if code == 200:
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip() or None
            manifest = _read(response) if response.request.method == "GET" else None
            return Answer(Status.AVAILABLE, digest=response.headers.get("Docker-Content-Digest"),
                          media_type=media_type, manifest=manifest)
        if code == 404:
            return Answer(Status.ABSENT, detail=f"{where}: not found")
        if code == 401:
            if host == DOCKER_HUB_API and authenticated and credential is None:
                # Docker Hub answers 401, not 404, for a repository that does not exist, even with a
                # valid anonymous token for its scope.
                return Answer(Status.ABSENT, detail=f"{where}: not found (Docker Hub answers 401)")
            source = f" with {credential.source}" if credential is not None and credential.source else ""
            return Answer(Status.UNAUTHORIZED, detail=f"{where}: unauthorized{source}")
        if code == 403:
            return Answer(Status.FORBIDDEN, detail=f"{where}: forbidden")
        if code == 429:
            return Answer(Status.RATE_LIMITED, detail=f"{where}: rate limited", retry_after=response.headers.get("Retry-After"),
                          pushback=True)
        if code >= 500:
            return Answer(Status.UNREACHABLE, detail=f"{where}: registry answered {code}", connection_failed=True,
                          retry_after=response.headers.get("Retry-After") if code == 503 else None,
                          pushback=code == 503)
        return Answer(Status.ERROR, detail=f"{where}: unexpected answer {code}")


def _token_refusal(response: httpx.Response, host: str, repository: str, credential: Credential | None) -> Answer | None:
    """What a token endpoint's answer other than 200 means for the check; None for a 200."""
    code = response.status_code
    if code in (401, 403):
        source = f" ({credential.source})" if credential is not None and credential.source else ""
        return Answer(Status.UNAUTHORIZED, detail=f"{host}: token refused for {repository}{source}")
    if code == 429:
        return Answer(Status.RATE_LIMITED, detail=f"{host}: token endpoint rate limited",
                      retry_after=response.headers.get("Retry-After"), pushback=True)
    if code >= 500:
        return Answer(Status.UNREACHABLE, detail=f"{host}: token endpoint answered {code}", connection_failed=True)
    if code != 200:
        return Answer(Status.ERROR, detail=f"{host}: token endpoint answered {code}")
    return None


INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                         "application/vnd.docker.distribution.manifest.list.v2+json"})
MAX_MANIFEST = 4 * 1024 * 1024  # distribution's own limit for a manifest


def _read(response: httpx.Response) -> Manifest | None:
    """What a fetched manifest or config blob says; None when the body is neither (or too large to be one)."""
    if len(response.content) > MAX_MANIFEST:
        return None
    try:
        return read_document(json.loads(response.content))
    except ValueError:
        return None


def credential_fingerprint(credential: Credential | None) -> str:
    return fingerprint([credential])
