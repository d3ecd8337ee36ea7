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
import traceback

from exporter.common.redact import RedactFilter, redact

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
HANDLER_NAME = "kube-image-exporter"


def configure(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter  # here: `--help` and text logs need not load it

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:  # ours only: others may listen too
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # every library's records reach this handler and its filter: the Kubernetes client's own (an exec plugin's
    # failure quotes the plugin's stderr), urllib3's, and Python warnings, which would go to stderr unfiltered
    logging.captureWarnings(True)
    for name in ("httpx", "httpcore"):
        client_log = logging.getLogger(name)
        client_log.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
        if not any(isinstance(f, RedactFilter) for f in client_log.filters):
            client_log.addFilter(RedactFilter())


def describe(exc: BaseException) -> str:
    """One redacted line naming an exception (a URL in its message loses its credentials)."""
    return redact(f"{type(exc).__name__}: {exc}")[:500]


class FailureLog:
    """Logs a background thread's failures without flooding: a failure with its traceback, the same one again
    (same type and message) at debug only, and one line when the thread works again. Everything written is
    redacted here, whatever handler is installed."""

    def __init__(self, logger: logging.Logger, what: str, consequence: str) -> None:
        self._log, self._what, self._consequence = logger, what, consequence
        self._last = ""
        self.in_a_row = 0

    def failed(self, exc: BaseException) -> None:
        line = describe(exc)
        self.in_a_row += 1
        if line == self._last:
            self._log.debug("%s failed again (%d in a row): %s", self._what, self.in_a_row, line)
            return
        self._last = line
        trace = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
        self._log.error("%s failed: %s; %s\n%s", self._what, line, self._consequence, trace)

    def recovered(self) -> None:
        if self.in_a_row:
            self._log.info("%s works again after %d failures", self._what, self.in_a_row)
        self._last, self.in_a_row = "", 0
