"""Redaction of URLs: the one function every log line, metric label, error message and report goes through.

A URL may carry a password (`https://user:pw@host/...`, even with a raw `@` in it) or a token in its query
(`?access_token=...`). Redacted, it keeps what tells the source apart (scheme, host, port, path, the query's
keys) and drops the user info and every query value.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

REDACTED = "REDACTED"
# a URL inside free text: scheme://, then anything up to white space or a quote
_URL_IN_TEXT = re.compile(r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
_QUERY_VALUE = re.compile(r"=[^&#]*")


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user info, user, password): the user info ends at the authority's *last* `@`, so a
    password holding a raw `@` is taken whole rather than leaking its tail into the host or a log."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None, None
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url, None, None
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{tail}", unquote(user), unquote(password) if password else None


def redact_url(url: str) -> str:
    """The URL without user info and with every query value replaced by REDACTED."""
    bare = split_userinfo(url)[0]
    path, q, query = bare.partition("?")
    if not q:
        return bare
    query, hash_, fragment = query.partition("#")
    return f"{path}?{_QUERY_VALUE.sub('=' + REDACTED, query)}{hash_}{fragment and REDACTED}"


def redact(text: str) -> str:
    """Free text (a log message, an error) with every URL in it redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


class RedactFilter(logging.Filter):
    """Redacts every URL of a log record's message (installed on the log handler and on the HTTP clients'
    loggers, whose request lines carry full URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
