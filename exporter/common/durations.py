"""Durations as Kubernetes and Prometheus tools write them: Go syntax (`500ms`, `30s`, `5m`, `1h30m`).

One definition for the kubelet's event messages (`pulled in 1m0.809s`), its own config files (a credential
provider's `defaultCacheDuration`, read as Go's `time.ParseDuration` reads it) and every duration setting (flags,
environment, config file, chart values), where a bare number still means seconds.
"""

from __future__ import annotations

import math
import re

_GO_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
GO_DURATION = r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+"
# A setting: a Go duration or a bare number of seconds (the chart's schema holds the same pattern).
SETTING_PATTERN = rf"^\s*(?:{GO_DURATION}|\d+(?:\.\d*)?|\.\d+)\s*$"


def parse_go_duration(text: str) -> float | None:
    """Seconds of a Go duration string (`1m0.809s`, `830ms`, `1h2m3s`, `4µs`); None when it is not one."""
    text = text.strip()
    if not text or not re.fullmatch(GO_DURATION, text):
        return None
    seconds = sum(float(number) * _GO_UNIT[unit] for number, unit in _GO_PART.findall(text))
    return round(seconds, 9)  # Go's precision is the nanosecond; `830ms` is 0.83, not 0.8300000000000001


def go_duration(text: object) -> float:
    """Seconds of a duration as Go's `time.ParseDuration` reads it: a sign and a bare `0` allowed (`6h`, `1m30s`,
    `-5s`, `0`); ValueError otherwise. What the kubelet's config files and plugins write."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration")
    value = text.strip()
    body = value[1:] if value.startswith(("+", "-")) else value
    seconds = 0.0 if body == "0" else parse_go_duration(body) if body == body.lstrip() else None
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration (like 6h, 1m30s, 0)")
    return -seconds if value.startswith("-") and seconds else seconds


def parse_setting(value: object) -> float:
    """Seconds of a duration setting: a Go duration string or a number of seconds; ValueError otherwise."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value)  # a bare number, signed or not: a negative one is refused for its value
        except ValueError:
            seconds = parse_go_duration(value)
    if seconds is None:
        raise ValueError(f"expected a duration like 500ms, 30s, 5m or 1h30m (a bare number is seconds), got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    return seconds
