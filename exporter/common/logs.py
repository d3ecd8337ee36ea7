"""Logging setup shared by every command: plain lines for people, JSON lines for log pipelines.

`--log-format json` writes one JSON object a line (`time`, `level`, `logger`, `message`), what Loki, Fluent
Bit and Elasticsearch ingest without parsing rules. httpx logs every request at INFO; it is kept at WARNING
unless the level is debug, or a check round would write thousands of lines. Every line goes through
`RedactFilter` (no password or token of a URL is written, at any level), and so do the request lines of
httpx and httpcore before any handler sees them.
"""

from __future__ import annotations

import logging
import sys

from exporter.common.redact import RedactFilter

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
_HANDLER = "kube-image-exporter"


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter  # here: `--help` and text logs need not load it

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.set_name(_HANDLER)
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # ours only: others may listen too
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("httpx", "httpcore"):
        client_log = logging.getLogger(name)
        client_log.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
        if not any(isinstance(f, RedactFilter) for f in client_log.filters):
            client_log.addFilter(RedactFilter())
