"""The credentials each workload's pulls would use: its pull secrets, else its ServiceAccount's.

The kubelet takes a pod's `imagePullSecrets`, and when there are none those of its ServiceAccount, then
its own docker config (node credentials). This module reads those objects through injected getters
(a live cluster's or a test's) and turns them into registry Keyrings. A secret that is missing, forbidden
or garbage is reported when read and left out, never fatal: the images it was for are then checked
with what remains, and show `unauthorized` if that is not enough. Garbage of any shape (a `data` value that
is not a string, a `.dockerconfigjson` that decodes to a list) costs that one object, never the cluster's
inventory; its log line names the object and never its content.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from cachetools import LRUCache, TLRUCache

from exporter.sources.registry.credentials import ANONYMOUS, Credential, CredentialError, Keyring, from_secret
from exporter.sources.registry.node.keyring import NodeKeyring
from exporter.sources.registry.node.providers import ServiceAccount

log = logging.getLogger(__name__)

Getter = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name) -> raw object or None
RETRY = 30.0  # an object the API failed to give is asked for again this soon, not after the whole TTL
TokenGetter = Callable[[str, str, str], str]  # (namespace, service account, audience) -> token
IDENTITIES = 20_000  # ServiceAccounts whose token getters are kept (each for `ttl` seconds)


class KeyringSource:
    """Keyrings by (namespace, pull secrets, service account).

    Secrets and ServiceAccounts are read when first needed and again after `ttl` seconds (so a rotated
    credential counts within minutes, and a steady cluster costs no reads per cycle). A read the API fails
    is tried again after `retry` seconds, and meanwhile the object's last good content stands in for it: an
    API outage must not turn private images `unauthorized` for the length of a TTL. `new_cycle()` starts
    the per-cycle record of unusable secrets: those named by this cycle's workloads.
    """

    def __init__(self, get_secret: Getter, get_service_account: Getter, node_keyring: Keyring = ANONYMOUS,
                 ttl: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 get_token: TokenGetter | None = None, retry: float = RETRY) -> None:
        self._get_secret = get_secret
        self._get_token = get_token  # set when node credential providers may get ServiceAccount tokens (opt-in)
        self._identities: TLRUCache = TLRUCache(maxsize=IDENTITIES, ttu=lambda _key, _account, now: now + ttl, timer=clock)
        self._get_service_account = get_service_account
        self._node = node_keyring
        self._ttl, self._retry = ttl, min(retry, ttl)
        # (namespace, name) -> (credentials, why unusable or "", problem text, whether the read failed)
        self._secrets: TLRUCache = TLRUCache(maxsize=20_000, ttu=self._until, timer=clock)
        # (namespace, name) -> (names of its pull secrets, whether the read failed)
        self._accounts: TLRUCache = TLRUCache(maxsize=20_000, ttu=self._until, timer=clock)
        self._last_good: LRUCache = LRUCache(maxsize=40_000)  # ("secret"|"account", namespace, name) -> content
        self.problems: list[str] = []
        self.unusable: dict[tuple[str, str], str] = {}  # (namespace, secret) -> unreadable | invalid | api_error

    def _until(self, key, entry: tuple, now: float) -> float:
        return now + (self._retry if entry[-1] else self._ttl)  # entry[-1]: the API failed to give it

    def new_cycle(self) -> None:
        self.problems = []
        self.unusable = {}

    def _read_secret(self, namespace: str, name: str) -> tuple[tuple[Credential, ...], str, str]:
        """(credentials, reason, problem text) of one secret, read now."""
        try:
            secret = self._get_secret(namespace, name)
        except Exception as exc:  # an API failure costs this secret only
            return (), "api_error", f"pull secret {namespace}/{name}: cannot read ({exc})"
        if secret is None:
            return (), "unreadable", f"pull secret {namespace}/{name}: not found or not readable"
        try:
            return from_secret(secret), "", ""
        except CredentialError as exc:
            return (), "invalid", f"pull secret unusable: {exc}"
        except Exception as exc:  # noqa: BLE001 (garbage of a shape no check foresaw: this secret only)
            return (), "invalid", (f"pull secret unusable: secret {namespace}/{name}: its content is not a pull "
                                   f"secret's ({type(exc).__name__})")  # the message could quote the content

    def _secret(self, namespace: str, name: str) -> tuple[Credential, ...]:
        key = (namespace, name)
        entry = self._secrets.get(key)
        if entry is None:
            credentials, reason, problem = self._read_secret(namespace, name)
            failed = reason == "api_error"
            last = self._last_good.get(("secret", *key))
            if failed and last is not None:
                log.warning("%s; its last good content stands in until it is read again", problem)
                credentials, reason, problem = last, "", ""
            elif problem:
                log.warning("%s", problem)  # once per read, not once per cycle
            if not reason:
                self._last_good[("secret", *key)] = credentials
            elif not failed:  # the API says it is gone or garbage: nothing stands in for it any more
                self._last_good.pop(("secret", *key), None)
            entry = self._secrets[key] = (credentials, reason, problem, failed)
        credentials, reason, problem, _ = entry
        if reason:
            self.unusable[key] = reason
            if problem not in self.problems:
                self.problems.append(problem)
        return credentials

    def _account_secrets(self, namespace: str, name: str) -> tuple[str, ...]:
        key = (namespace, name)
        entry = self._accounts.get(key)
        if entry is None:
            names, failed = (), False
            try:
                account = self._get_service_account(namespace, name)
            except Exception as exc:
                account, failed = None, True
                names = self._last_good.get(("account", *key), ())
                log.warning("service account %s/%s: cannot read (%s)%s", namespace, name, exc,
                            "; its last good content stands in until it is read again" if names else "")
            if account is not None:
                names = _pull_secret_names(account)
                if names is None:
                    log.warning("service account %s/%s: imagePullSecrets is not a list of names; its pull secrets "
                                "are not used", namespace, name)
                    names = ()
            if not failed:
                self._last_good[("account", *key)] = names
            entry = self._accounts[key] = (names, failed)
        return entry[0]

    def keyring(self, namespace: str, pull_secrets: tuple[str, ...], service_account: str = "default") -> Keyring:
        """The Keyring the kubelet would use for a pod of `namespace` with these pull secrets."""
        names = pull_secrets or self._account_secrets(namespace, service_account or "default")
        credentials = tuple(c for name in names for c in self._secret(namespace, name))
        node = self._node
        if self._get_token is not None and isinstance(node, NodeKeyring):
            node = node.for_service_account(self._identity(namespace, service_account or "default"))
        return Keyring(credentials) + node

    def _identity(self, namespace: str, name: str) -> ServiceAccount:
        """A ServiceAccount whose token and annotations are read when a credential provider asks for them."""
        key = (namespace, name)
        identity = self._identities.get(key)
        if identity is None:
            get_token, get_account = self._get_token, self._get_service_account

            def annotations() -> Mapping[str, str]:
                account = get_account(namespace, name)
                if account is None:
                    raise ValueError(f"ServiceAccount {namespace}/{name} not found or not readable")
                return (account.get("metadata") or {}).get("annotations") or {}

            identity = self._identities[key] = ServiceAccount(
                namespace, name, lambda audience: get_token(namespace, name, audience), annotations)
        return identity


def _pull_secret_names(account: object) -> tuple[str, ...] | None:
    """The names of a ServiceAccount's `imagePullSecrets`, or None when the object is not shaped as one."""
    secrets = account.get("imagePullSecrets") if isinstance(account, Mapping) else None
    if secrets is None:
        return () if isinstance(account, Mapping) else None
    if not isinstance(secrets, list):
        return None
    return tuple(str(s["name"]) for s in secrets if isinstance(s, dict) and isinstance(s.get("name"), str) and s["name"])
