"""Kubelet image event messages: `Pulled` durations and sizes, `Failed` reasons, `BackOff` images.

Every format of REFERENCE.md §4 (kubelet 1.18 to 1.30+) is read; a message that matches none gives
None, never an exception. Only the first few kilobytes of a message are looked at: an event message can
be made arbitrarily large, and the image name and durations are at its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exporter.common.durations import GO_DURATION, parse_go_duration

MAX_SCAN = 4096

_PULLED = re.compile(
    r'Successfully pulled image "(?P<image>[^"]+)"'
    rf"(?: in (?P<pull>{GO_DURATION})(?: \((?P<total>{GO_DURATION}) including waiting\))?)?"
    r"(?:\.? Image size: (?P<size>\d+) bytes)?"
)
_FAILED = re.compile(r'Failed to pull image "(?P<image>[^"]+)": (?P<error>.*)', re.DOTALL)
_BACKOFF = re.compile(r'Back-off pulling image "(?P<image>[^"]+)"')


@dataclass(frozen=True, slots=True)
class Pulled:
    image: str  # as written in the container spec
    pull_seconds: float | None  # the CRI pull; None before kubelet 1.19
    total_seconds: float | None  # including waiting in the kubelet's queue (1.23+)
    size_bytes: int | None  # 1.30+


def parse_pulled(message: str) -> Pulled | None:
    match = _PULLED.search(message[:MAX_SCAN])
    if match is None:
        return None
    pull = parse_go_duration(match["pull"]) if match["pull"] else None
    total = parse_go_duration(match["total"]) if match["total"] else None
    return Pulled(match["image"], pull, total, int(match["size"]) if match["size"] else None)


# failure reasons: a small fixed set, so the label stays bounded
_REASONS = (
    ("not_found", ("not found", "manifest unknown", "name unknown", "404")),
    ("unauthorized", ("unauthorized", "authentication required", "401", "denied", "403", "forbidden")),
    ("rate_limited", ("toomanyrequests", "too many requests", "429", "rate limit")),
    ("tls", ("x509", "certificate", "tls:")),
    ("timeout", ("timeout", "deadline exceeded", "i/o timeout")),
    ("unreachable", ("connection refused", "no such host", "no route to host", "dial tcp")),
)


def failure_reason(error: str) -> str:
    lowered = error[:MAX_SCAN].lower()
    for reason, needles in _REASONS:
        if any(n in lowered for n in needles):
            return reason
    return "other"


@dataclass(frozen=True, slots=True)
class Failed:
    image: str | None  # None for the bare `Error: ErrImagePull` form
    reason: str


def parse_failed(message: str) -> Failed | None:
    head = message[:MAX_SCAN]
    match = _FAILED.search(head)
    if match is not None:
        return Failed(match["image"], failure_reason(match["error"]))
    stripped = head.strip()
    if stripped in ("Error: ErrImagePull", "Error: ImagePullBackOff"):
        return Failed(None, "back_off" if stripped.endswith("BackOff") else "err_image_pull")
    return None


def parse_backoff(message: str) -> str | None:
    match = _BACKOFF.search(message[:MAX_SCAN])
    return match["image"] if match else None
