"""Check results shared by a fleet of exporters through Redis or Valkey (`--cache-url`).

Exporters of many clusters use the same images: with one shared store the fleet sends one registry request
per (image, credential set) per lifetime instead of one per exporter, and a restarted exporter answers from
the store instead of checking everything again. The in-process cache stays first; this store is asked only
for what it misses, and Redis is an accelerator, never a dependency: every call has a short timeout, a
`Breaker` stops calling a failing Redis for a while, and meanwhile the exporter checks on its own.

One module per concern, each naming the keys it owns (all under `kie:1:`, so a shared Redis can hold other
things):
  `connection`  the client, its URL and password, the bounded call every store makes, the counts
  `breaker`     the circuit breaker in front of it
  `results`     `kie:1:r:<credentials>:<image>`: check results, and the credential scope that names them
  `locks`       `kie:1:l:<credentials>:<image>`: single-flight locks, their owner-checked semantics, the keeper
  `indexes`     `kie:1:m:<name@digest>`: what a manifest read by digest says (children, platforms)
  `firstseen`   `kie:1:f:<N>/<M>:<cluster>`: when each problem was first seen (the page's "missing since")
  `cache`       `SharedCache`: one connection and the four stores
  `flight`      a check round through the store: plan, wait for peers, check the rest, publish
Tokens never leave the process. Only this package imports `redis`.
"""

from exporter.sources.registry.shared.breaker import Breaker
from exporter.sources.registry.shared.cache import SharedCache
from exporter.sources.registry.shared.connection import PASSWORD_ENV, SharedCacheError, check_url, read_password
from exporter.sources.registry.shared.flight import check_through
from exporter.sources.registry.shared.results import credentials_key, decode, encode, scope

__all__ = ["PASSWORD_ENV", "Breaker", "SharedCache", "SharedCacheError", "check_url", "check_through",
           "credentials_key", "decode", "encode", "read_password", "scope"]
