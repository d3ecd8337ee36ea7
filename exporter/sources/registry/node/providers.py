"""Credential provider plugins as the kubelet runs them: config, matching, answers and their cache.

The kubelet's `--image-credential-provider-config` file (`kind: CredentialProviderConfig`, apiVersion
`kubelet.config.k8s.io/v1`, `v1beta1` or `v1alpha1`) lists providers; an image goes to every provider whose
`matchImages` match it, in config order. A provider's answer (`CredentialProviderResponse`) holds `auth`
entries keyed by patterns and says how long to keep them (`cacheDuration`, else the provider's
`defaultCacheDuration`; `0` keeps nothing) and under which key (`Image`, `Registry` or `Global`).

`parse_config` and `parse_response` are pure; `CredentialProviders` holds the cache and calls the plugin
through an injected runner (`plugin.run` in production). A provider that fails gives a `FailedCredential`
naming it: the checker reports `error` with that detail when nothing else let the image through. A failure
is remembered for `failure_ttl` seconds, so a hanging plugin costs one timeout, not one per image. A run that
takes a second or more is logged; the checker runs plugins off its event loop, so other checks go on meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetools import TLRUCache

from exporter.common.durations import go_duration
from exporter.common.files import FileProblem, ReadError, TooDeep, parse_json, read_yaml
from exporter.sources.registry.credentials import Credential, FailedCredential  # noqa: F401 (FailedCredential: made here)
from exporter.sources.registry.node import patterns
from exporter.sources.registry.node.plugin import PluginError

log = logging.getLogger(__name__)

CONFIG_VERSIONS = {f"kubelet.config.k8s.io/{v}" for v in ("v1", "v1beta1", "v1alpha1")}
PLUGIN_VERSIONS = {f"credentialprovider.kubelet.k8s.io/{v}" for v in ("v1", "v1beta1", "v1alpha1")}
CACHE_KEY_TYPES = ("Image", "Registry", "Global")


class ProviderConfigError(ValueError):
    """A CredentialProviderConfig the kubelet would refuse; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class TokenAttributes:
    """A provider's request for the pod's ServiceAccount token (Kubernetes 1.33+)."""

    audience: str
    require_service_account: bool
    required_annotation_keys: tuple[str, ...] = ()
    optional_annotation_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One entry of `providers[]`; `env` never holds registry credentials, but `repr` hides it anyway."""

    name: str
    match_images: tuple[str, ...]
    default_cache_duration: float
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    token_attributes: TokenAttributes | None = None

    def matches(self, image: str) -> bool:
        return any(patterns.matches(pattern, image) for pattern in self.match_images)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProviderConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _provider(raw: Any, where: str, config_version: str) -> ProviderSpec:
    """One `providers[]` entry, validated as the kubelet validates it; ProviderConfigError naming the field."""
    if not isinstance(raw, dict):
        raise ProviderConfigError(f"{where}: expected a mapping")
    name = _plugin_name(raw.get("name"), where)
    where = f"{where} ({name})"
    return ProviderSpec(name, _match_images(raw.get("matchImages"), where),  # checked in the kubelet's order
                        _cache_duration(raw.get("defaultCacheDuration"), where), _api_version(raw, where),
                        _strings(raw.get("args"), f"{where}.args"), _env(raw.get("env"), where),
                        _token_attributes(raw.get("tokenAttributes"), where, config_version))


def _plugin_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ProviderConfigError(f"{where}.name: required")
    if "/" in name or name in (".", ".."):
        raise ProviderConfigError(f"{where}.name: {name!r} must be a file name in the bin dir, not a path")
    return name


def _api_version(raw: dict, where: str) -> str:
    api_version = raw.get("apiVersion")
    if api_version not in PLUGIN_VERSIONS:
        raise ProviderConfigError(
            f"{where}.apiVersion: {api_version!r} is not one of {', '.join(sorted(PLUGIN_VERSIONS))}")
    return api_version


def _match_images(value: Any, where: str) -> tuple[str, ...]:
    match_images = _strings(value, f"{where}.matchImages")
    if not match_images:
        raise ProviderConfigError(f"{where}.matchImages: at least one pattern is required")
    for pattern in match_images:
        try:
            patterns.parse(pattern)
        except patterns.PatternError as exc:
            raise ProviderConfigError(f"{where}.matchImages: {exc}") from None
    return match_images


def _cache_duration(value: Any, where: str) -> float:
    if value is None:
        raise ProviderConfigError(f"{where}.defaultCacheDuration: required")
    try:
        duration = go_duration(value)
    except ValueError as exc:
        raise ProviderConfigError(f"{where}.defaultCacheDuration: {exc}") from None
    if duration < 0:
        raise ProviderConfigError(f"{where}.defaultCacheDuration: must not be negative")
    return duration


def _env(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    env = []
    for i, item in enumerate(value or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item.get("name"):
            raise ProviderConfigError(f"{where}.env[{i}]: expected {{name, value}}")
        env.append((item["name"], str(item.get("value") or "")))
    return tuple(env)


def _token_attributes(attributes: Any, where: str, config_version: str) -> TokenAttributes | None:
    """`tokenAttributes` (kubelet.config.k8s.io/v1 only): the ServiceAccount token the plugin is given."""
    if attributes is None:
        return None
    if not config_version.endswith("/v1"):
        raise ProviderConfigError(f"{where}.tokenAttributes: only in kubelet.config.k8s.io/v1")
    if not isinstance(attributes, dict) or not attributes.get("serviceAccountTokenAudience"):
        raise ProviderConfigError(f"{where}.tokenAttributes.serviceAccountTokenAudience: required")
    if not isinstance(attributes.get("requireServiceAccount"), bool):
        raise ProviderConfigError(f"{where}.tokenAttributes.requireServiceAccount: required (true or false)")
    return TokenAttributes(
        str(attributes["serviceAccountTokenAudience"]), attributes["requireServiceAccount"],
        _strings(attributes.get("requiredServiceAccountAnnotationKeys"), f"{where}.tokenAttributes"),
        _strings(attributes.get("optionalServiceAccountAnnotationKeys"), f"{where}.tokenAttributes"))


def parse_config(data: Any, source: str) -> tuple[ProviderSpec, ...]:
    """Providers of a CredentialProviderConfig document, validated as the kubelet validates it."""
    if not isinstance(data, dict):
        raise ProviderConfigError(f"{source}: expected a CredentialProviderConfig mapping")
    if data.get("kind") != "CredentialProviderConfig":
        raise ProviderConfigError(f"{source}: kind is {data.get('kind')!r}, expected CredentialProviderConfig")
    version = data.get("apiVersion")
    if version not in CONFIG_VERSIONS:
        raise ProviderConfigError(f"{source}: apiVersion {version!r} is not one of {', '.join(sorted(CONFIG_VERSIONS))}")
    raw_providers = data.get("providers")
    if not isinstance(raw_providers, list) or not raw_providers:
        raise ProviderConfigError(f"{source}: providers: at least one provider is required")
    specs = tuple(_provider(raw, f"{source}: providers[{i}]", version) for i, raw in enumerate(raw_providers))
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProviderConfigError(f"{source}: provider names must be unique ({', '.join(duplicates)})")
    return specs


def load_config(path: str | Path) -> tuple[ProviderSpec, ...]:
    """Providers of a config file (YAML or JSON, as the kubelet reads it)."""
    path = Path(path)
    try:
        data = read_yaml(path, "credential provider config")  # YAML holds JSON: bounded in size and depth alike
    except FileProblem as exc:
        raise ProviderConfigError(str(exc)) from None
    return parse_config(data, f"credential provider config {path}")


@dataclass(frozen=True, slots=True)
class Answer:
    """A validated CredentialProviderResponse."""

    cache_key_type: str
    cache_duration: float | None
    auth: tuple[Credential, ...] = field(repr=False)


@dataclass(frozen=True)
class ServiceAccount:
    """The pod's ServiceAccount, for providers with `tokenAttributes`: its token and annotations on demand.

    `token(audience)` asks the TokenRequest API; `annotations()` reads the ServiceAccount. Both raise on failure
    with a message that holds no token.
    """

    namespace: str
    name: str
    token: Callable[[str], str] = field(compare=False, repr=False)
    annotations: Callable[[], Mapping[str, str]] = field(compare=False, repr=False)


def request_body(spec: ProviderSpec, image: str, token: str = "", annotations: Mapping[str, str] | None = None) -> bytes:
    """The CredentialProviderRequest the plugin reads on stdin (with the ServiceAccount's token when asked for)."""
    body: dict[str, Any] = {"apiVersion": spec.api_version, "kind": "CredentialProviderRequest", "image": image}
    if token:
        body["serviceAccountToken"] = token
        body["serviceAccountAnnotations"] = dict(annotations or {})
    return json.dumps(body).encode()


def service_account_annotations(attributes: TokenAttributes, annotations: Mapping[str, str],
                                account: str) -> dict[str, str]:
    """The annotations a provider gets: its required keys (ValueError naming one that is missing), its optional ones."""
    missing = [key for key in attributes.required_annotation_keys if key not in annotations]
    if missing:
        raise ValueError(f"ServiceAccount {account} lacks the required annotation {missing[0]}")
    wanted = attributes.required_annotation_keys + attributes.optional_annotation_keys
    return {key: str(annotations[key]) for key in wanted if key in annotations}


def parse_response(raw: bytes, spec: ProviderSpec) -> Answer:
    """The plugin's stdout as a response; PluginError (naming no content) when it is not a valid one."""
    try:
        data = parse_json(raw, limit=20)  # a response is 4 levels deep; 100,000 would be a RecursionError
    except TooDeep as exc:
        raise PluginError(f"answered JSON {exc}") from None
    except ReadError:
        raise PluginError("answered something that is not JSON") from None
    if not isinstance(data, dict) or data.get("kind") != "CredentialProviderResponse":
        raise PluginError("answered JSON that is not a CredentialProviderResponse")
    if data.get("apiVersion") != spec.api_version:
        raise PluginError(f"answered apiVersion {str(data.get('apiVersion'))[:80]!r}, expected {spec.api_version}")
    key_type = data.get("cacheKeyType")
    if key_type not in CACHE_KEY_TYPES:
        raise PluginError(f"answered cacheKeyType {str(key_type)[:40]!r}, expected Image, Registry or Global")
    duration = None
    if data.get("cacheDuration") not in (None, ""):
        try:
            duration = go_duration(data["cacheDuration"])
        except ValueError:
            raise PluginError("answered a cacheDuration that is not a duration") from None
        if duration < 0:
            raise PluginError("answered a negative cacheDuration")
    auth = data.get("auth") or {}
    if not isinstance(auth, dict):
        raise PluginError("answered an 'auth' that is not a mapping")
    credentials = []
    source = f"credential provider {spec.name}"
    for key, entry in auth.items():
        try:
            patterns.parse(key)
        except patterns.PatternError:
            raise PluginError("answered an auth key that is not host[:port][/path]") from None
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k, ""), str) for k in ("username", "password")):
            raise PluginError("answered an auth entry without string username and password")
        credentials.append(Credential(key, entry.get("username", ""), entry.get("password", ""), source=source))
    return Answer(key_type, duration, tuple(credentials))


def lookup(credentials: tuple[Credential, ...], image: str) -> list[Credential]:
    """Entries whose key matches the image, most specific first (the kubelet's reverse key order)."""
    target = patterns.parse(image)
    found = [c for c in credentials if patterns.matches(c.key, target)]
    return sorted(found, key=lambda c: c.key, reverse=True)


Runner = Callable[[ProviderSpec, bytes], bytes]  # (provider, request) -> stdout; raises PluginError
CACHE_SIZE = 10_000  # answers (and failures) kept: images or registries, times ServiceAccounts
SLOW_PLUGIN = 1.0  # seconds: a run at least this long is logged


class CredentialProviders:
    """The configured providers with the kubelet's cache; `credentials(image)` for `host[:port]/path` names.

    Safe across threads, and made to be called off an event loop: a run blocks its caller for as long as the
    plugin takes. Runs are single-flight: while one runs for a cache key, other asks for that key wait for
    its answer instead of starting another (the key is the one the provider's last answer was cached under,
    its registry's until it answered once), and different keys run side by side. The lock guards the caches
    only, never a run.
    """

    def __init__(self, specs: tuple[ProviderSpec, ...], run: Runner, clock: Callable[[], float] = time.monotonic,
                 failure_ttl: float = 60.0, maxsize: int = CACHE_SIZE) -> None:
        self.specs = specs
        self._run = run
        self._failure_ttl = failure_ttl
        # (provider, scope + cache key) -> (seconds to keep, credentials)
        self._cache: TLRUCache = TLRUCache(maxsize=maxsize, ttu=lambda _, entry, now: now + entry[0], timer=clock)
        # provider + scope -> why it failed, kept `failure_ttl` seconds
        self._failures: TLRUCache = TLRUCache(maxsize=maxsize, ttu=lambda _key, _why, now: now + failure_ttl,
                                             timer=clock)
        self._key_types: dict[str, str] = {}  # provider -> the cacheKeyType of its last answer
        self._flights: dict[tuple[str, str], threading.Event] = {}  # runs under way, by cache key
        self._lock = threading.Lock()
        self.calls = 0  # plugin executions, for tests and the benchmark

    @property
    def uses_service_accounts(self) -> bool:
        return any(spec.token_attributes is not None for spec in self.specs)

    def credentials(self, image: str, account: ServiceAccount | None = None,
                    run: bool = True) -> list[Credential] | None:
        """Credentials for the image from every matching provider in config order; failures last.

        `account` is the pod's ServiceAccount, for providers that ask for its token. With `run` False nothing
        is run: None when some provider would have to run (an event loop asks so, and runs it in a thread).
        """
        found: list[Credential] = []
        failed: list[Credential] = []
        seen: set[str] = set()
        for spec in self.specs:
            if not spec.matches(image):
                continue
            given = account if spec.token_attributes is not None else None
            known = self._provide(spec, image, given) if run else self._known(spec, image, _scope(given))
            if known is None:
                return None
            entries, failure = known
            if failure:
                failed.append(FailedCredential(key=patterns.registry_of(image), source=f"credential provider {spec.name}: {failure}"))
                continue
            for credential in lookup(entries, image):
                if credential.key not in seen:  # an earlier provider's entry for the same key wins
                    seen.add(credential.key)
                    found.append(credential)
        return found + failed

    def _known(self, spec: ProviderSpec, image: str, scope: str) -> tuple[tuple[Credential, ...], str] | None:
        """What the cache or a remembered failure answers without a run; None when the plugin must run."""
        with self._lock:
            for key in (f"image:{image}", f"registry:{patterns.registry_of(image)}", "global"):
                hit = self._cache.get((spec.name, scope + key))
                if hit is not None:
                    return hit[1], ""
            failure = self._failures.get(spec.name + scope)
            return ((), failure) if failure is not None else None

    def _provide(self, spec: ProviderSpec, image: str,
                 account: ServiceAccount | None) -> tuple[tuple[Credential, ...], str]:
        """The provider's answer for the image: from its cache, from the run under way for its key, else run."""
        scope = _scope(account)  # a provider that takes ServiceAccount tokens answers per ServiceAccount
        flight = (spec.name, scope + _cache_key(self._key_types.get(spec.name, "Registry"), image))
        while True:
            known = self._known(spec, image, scope)
            if known is not None:
                return known
            with self._lock:
                running = self._flights.get(flight)
                if running is None:
                    running = self._flights[flight] = threading.Event()
                    break
            running.wait()  # that run's answer is in the cache (or its failure remembered) when it ends
        try:
            return self._ask(spec, image, account, scope)
        finally:
            with self._lock:
                del self._flights[flight]
            running.set()

    def _ask(self, spec: ProviderSpec, image: str, account: ServiceAccount | None,
             scope: str) -> tuple[tuple[Credential, ...], str]:
        """Run the plugin once and remember its answer (or its failure) under the key it names."""
        try:
            request = self._request(spec, image, account)
        except ValueError as exc:
            return (), str(exc)
        with self._lock:
            self.calls += 1
        started = time.monotonic()
        try:
            answer = parse_response(self._run(spec, request), spec)
        except PluginError as exc:
            log.warning("credential provider %s: %s", spec.name, exc)
            with self._lock:
                self._failures[spec.name + scope] = str(exc)
            return (), str(exc)
        finally:
            took = time.monotonic() - started
            if took >= SLOW_PLUGIN:
                log.info("credential provider %s took %.1fs for %s (checks that do not need it went on)",
                         spec.name, took, image)
        duration = answer.cache_duration if answer.cache_duration is not None else spec.default_cache_duration
        with self._lock:
            self._failures.pop(spec.name + scope, None)
            self._key_types[spec.name] = answer.cache_key_type
            if duration > 0:
                self._cache[(spec.name, scope + _cache_key(answer.cache_key_type, image))] = (duration, answer.auth)
        return answer.auth, ""

    def _request(self, spec: ProviderSpec, image: str, account: ServiceAccount | None) -> bytes:
        """The request for one run; ValueError (safe to show) when the ServiceAccount's part cannot be had."""
        attributes = spec.token_attributes
        if attributes is None:
            return request_body(spec, image)
        if account is None:
            if attributes.require_service_account:
                raise ValueError("requires the pod's ServiceAccount token (tokenAttributes); "
                                 "enable service_account_tokens to request one")
            return request_body(spec, image)
        where = f"{account.namespace}/{account.name}"
        try:
            annotations = service_account_annotations(attributes, account.annotations(), where)
            token = account.token(attributes.audience)
        except ValueError:
            raise
        except Exception as exc:  # the API's failure costs this provider for this ServiceAccount only
            raise ValueError(f"cannot get a token for ServiceAccount {where}: {exc}") from None
        return request_body(spec, image, token, annotations)


def _scope(account: ServiceAccount | None) -> str:
    return f"sa:{account.namespace}/{account.name}:" if account is not None else ""


def _cache_key(key_type: str, image: str) -> str:
    """Where an answer of `key_type` (the response's cacheKeyType) is kept for an image."""
    return {"Image": f"image:{image}", "Registry": f"registry:{patterns.registry_of(image)}",
            "Global": "global"}[key_type]


def environment(spec: ProviderSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The plugin's environment: the process's own, then the provider's `env` (as the kubelet merges them)."""
    return {**base, **dict(spec.env)}
