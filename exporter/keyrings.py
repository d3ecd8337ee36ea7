"""The credentials each workload's pulls would use: its pull secrets, else its ServiceAccount's.

The kubelet takes a pod's `imagePullSecrets`, and when there are none those of its ServiceAccount, then
its own docker config (node credentials). This module reads those objects through injected getters
(a live cluster's or a test's) and turns them into registry Keyrings. A secret that is missing, forbidden
or garbage is reported once per cycle and left out, never fatal: the images it was for are then checked
with what remains, and show `unauthorized` if that is not enough.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from exporter.registry.credentials import ANONYMOUS, Credential, CredentialError, Keyring, from_secret

log = logging.getLogger(__name__)

Getter = Callable[[str, str], Mapping[str, Any] | None]  # (namespace, name) -> raw object or None


class KeyringSource:
    """Keyrings by (namespace, pull secrets, service account); call `new_cycle()` to re-read objects."""

    def __init__(self, get_secret: Getter, get_service_account: Getter, node_keyring: Keyring = ANONYMOUS) -> None:
        self._get_secret = get_secret
        self._get_service_account = get_service_account
        self._node = node_keyring
        self._secrets: dict[tuple[str, str], tuple[Credential, ...]] = {}
        self._accounts: dict[tuple[str, str], tuple[str, ...]] = {}
        self.problems: list[str] = []
        self.unusable: dict[tuple[str, str], str] = {}  # (namespace, secret) -> unreadable | invalid | api_error

    def new_cycle(self) -> None:
        self._secrets.clear()
        self._accounts.clear()
        self.problems = []
        self.unusable = {}

    def _problem(self, text: str, secret: tuple[str, str] | None = None, reason: str = "") -> None:
        if secret is not None:
            self.unusable[secret] = reason
        if text not in self.problems:
            self.problems.append(text)
            log.warning("%s", text)

    def _secret(self, namespace: str, name: str) -> tuple[Credential, ...]:
        key = (namespace, name)
        if key not in self._secrets:
            credentials: tuple[Credential, ...] = ()
            try:
                secret = self._get_secret(namespace, name)
            except Exception as exc:  # an API failure costs this secret only
                secret = None
                self._problem(f"pull secret {namespace}/{name}: cannot read ({exc})", key, "api_error")
            else:
                if secret is None:
                    self._problem(f"pull secret {namespace}/{name}: not found or not readable", key, "unreadable")
            if secret is not None:
                try:
                    credentials = from_secret(secret)
                except CredentialError as exc:
                    self._problem(f"pull secret unusable: {exc}", key, "invalid")
            self._secrets[key] = credentials
        return self._secrets[key]

    def _account_secrets(self, namespace: str, name: str) -> tuple[str, ...]:
        key = (namespace, name)
        if key not in self._accounts:
            names: tuple[str, ...] = ()
            try:
                account = self._get_service_account(namespace, name)
            except Exception as exc:
                account = None
                self._problem(f"service account {namespace}/{name}: cannot read ({exc})")
            if account is not None:
                names = tuple(
                    str(s["name"]) for s in account.get("imagePullSecrets") or [] if isinstance(s, dict) and s.get("name")
                )
            self._accounts[key] = names
        return self._accounts[key]

    def keyring(self, namespace: str, pull_secrets: tuple[str, ...], service_account: str = "default") -> Keyring:
        """The Keyring the kubelet would use for a pod of `namespace` with these pull secrets."""
        names = pull_secrets or self._account_secrets(namespace, service_account or "default")
        credentials = tuple(c for name in names for c in self._secret(namespace, name))
        return Keyring(credentials) + self._node
