"""A pod's keyring followed by the node's credentials, in the order the kubelet tries them.

`NodeKeyring` is a `Keyring` whose `match` returns the pod's own credentials (pull secrets, else its
ServiceAccount's; the exporter's `--docker-config` files), then the node's: credential provider plugins
in config order, then the kubelet's docker config, then any provider failure (a `FailedCredential`).
Plugin credentials are asked for lazily, per image, through the node view's cache; `ready` says whether
they are at hand without running a plugin.

`Keyring(pod) + node_keyring` gives a NodeKeyring (Python tries a subclass's `__radd__` first), so the
code that builds per-pod keyrings needs no change. The fingerprint names the pod's credentials and the
node's configuration (provider config, node docker config), not the plugins' rotating answers: results
are cached per credential set, and an ECR token renewed every 12 h is the same node identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from exporter.sources.registry.credentials import Credential, Keyring, fingerprint, short_hash
from exporter.sources.registry.node.providers import ServiceAccount


class NodeCredentials(Protocol):
    fingerprint: str  # "" when the node adds no credentials
    uses_service_accounts: bool  # some provider answers per ServiceAccount (tokenAttributes)

    def credentials(self, registry: str, repository: str, account: ServiceAccount | None = None,
                    run: bool = True) -> list[Credential] | None: ...


@dataclass(frozen=True)
class NodeKeyring(Keyring):
    node: NodeCredentials | None = field(default=None, compare=False, repr=False)
    account: ServiceAccount | None = field(default=None, compare=False, repr=False)  # the pod's, for tokens

    @property
    def fingerprint(self) -> str:
        own = fingerprint(self.credentials)
        node = self.node.fingerprint if self.node is not None else ""
        if not node:
            return own
        if self.account is not None and self.node.uses_service_accounts:  # answers differ by ServiceAccount
            node += f"\0{self.account.namespace}/{self.account.name}"
        return short_hash(f"{own}\0{node}")

    def match(self, registry: str, repository: str) -> list[Credential]:
        own = Keyring.match(self, registry, repository)
        if self.node is None:
            return own
        return own + self.node.credentials(registry, repository, self.account)

    def ready(self, registry: str, repository: str) -> list[Credential] | None:
        """`match`'s answer when it needs no credential provider plugin to run, else None (the checker then
        runs `match` in a thread, off its event loop)."""
        own = Keyring.match(self, registry, repository)
        if self.node is None:
            return own
        node = self.node.credentials(registry, repository, self.account, run=False)
        return None if node is None else own + node

    def for_service_account(self, account: ServiceAccount) -> "NodeKeyring":
        """This keyring for a pod of that ServiceAccount (providers with tokenAttributes get its token)."""
        return NodeKeyring(self.credentials, self.node, account)

    def __add__(self, other: Keyring) -> "NodeKeyring":
        return NodeKeyring(self.credentials + other.credentials, self.node, self.account)

    def __radd__(self, other: Keyring) -> "NodeKeyring":
        return NodeKeyring(other.credentials + self.credentials, self.node, self.account)
