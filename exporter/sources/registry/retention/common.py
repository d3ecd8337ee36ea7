"""What every retention source shares: one error type, JSON GETs with clear failures, bounded paging, timestamps
and cron schedules."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
from croniter import croniter

from exporter.sources.registry.credentials import Keyring
from exporter.sources.registry.rounds import tls_verification
from exporter.sources.registry.settings import RegistrySettings

MAX_PAGES = 500  # 50,000 artifacts of one repository: a listing longer than that is a server that never ends
NEVER = "0001-01-01"  # Harbor's and Go's zero time: never pulled, or not recorded


def registry_api(host: str, settings: RegistrySettings, keyring: Keyring) -> httpx.Client:
    """An HTTP client for an API on the registry's own host, with the credentials the exporter has for the registry
    (the first with a user name: a robot account) and its TLS settings (plain HTTP for an insecure registry)."""
    options = settings.host(host)
    auth = next(((c.username, c.password) for c in keyring.match(host, "") if c.username), None)
    return httpx.Client(base_url=f"{'http' if options.insecure else 'https'}://{host}", auth=auth,
                        verify=tls_verification(settings, host), timeout=settings.timeout,
                        headers={"Accept": "application/json"})


class PolicyError(Exception):
    """A source's policy or listing cannot be read or evaluated; the message says which and why (no credentials).
    `reason` is the error counter's label."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


def get_json(client: httpx.Client, path: str, params: dict | None = None, missing_ok: bool = False) -> Any:
    """The JSON of one GET; PolicyError for any failure (None for a 404 when `missing_ok`)."""
    response = get(client, path, params, missing_ok)
    return None if response is None else body(response, path)


def get(client: httpx.Client, path: str, params: dict | None = None,
        missing_ok: bool = False) -> httpx.Response | None:
    """One GET answered 200 (for the headers a paged API puts the next page in); PolicyError for any failure
    (None for a 404 when `missing_ok`)."""
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise PolicyError(f"GET {path}: {type(exc).__name__}: {str(exc)[:200]}", "unreachable") from None
    if response.status_code == 404 and missing_ok:
        return None
    if response.status_code in (401, 403):
        raise PolicyError(f"GET {path}: {response.status_code} (the credentials for this registry may not read "
                          "it: see the source's page in docs/retention.md for the permissions)", "forbidden")
    if response.status_code == 429:
        raise PolicyError(f"GET {path}: 429 rate limited", "rate_limited")
    if response.status_code != 200:
        raise PolicyError(f"GET {path}: answered {response.status_code}", "unreachable" if response.status_code >= 500
                          else "invalid")
    return response


def body(response: httpx.Response, path: str) -> Any:
    """The JSON of an answer; PolicyError when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise PolicyError(f"GET {path}: the answer is not JSON") from None


def pages(client: httpx.Client, path: str, params: dict, page_size: int = 100, missing_ok: bool = True) -> list:
    """Every item of a paged listing (`page`, `page_size`; stops at a short page or at `X-Total-Count`-free
    exhaustion); PolicyError past MAX_PAGES."""
    items: list = []
    for page in range(1, MAX_PAGES + 1):
        found = get_json(client, path, {**params, "page": page, "page_size": page_size}, missing_ok=missing_ok)
        if found is None:
            return items
        if not isinstance(found, list):
            raise PolicyError(f"GET {path}: not a list")
        items.extend(found)
        if len(found) < page_size:
            return items
    raise PolicyError(f"GET {path}: still more after {MAX_PAGES} pages of {page_size}: not read", "invalid")


def timestamp(value: Any) -> float | None:
    """Unix time of an RFC 3339 timestamp; None for none or the zero time; PolicyError for anything else."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PolicyError(f"timestamp {value!r} is not a string")
    if value.startswith(NEVER):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyError(f"timestamp {value[:40]!r} is not RFC 3339") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def cron_next(expression: str, now: float, seconds_first: bool = False) -> float:
    """The next time (Unix, UTC) a cron schedule fires after `now`; PolicyError for a schedule that is none."""
    start = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    try:
        return croniter(expression, start, second_at_beginning=seconds_first).get_next(float)
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(f"schedule {expression!r}: {exc}") from None
