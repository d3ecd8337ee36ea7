"""Redaction of URLs: the one function every log line, metric label, error message and report goes through.

A URL may carry a password (`https://user:pw@host/...`, even with a raw `@` in it) or a token in its query
(`?access_token=...`). Redacted, it keeps what tells the source apart (scheme, host, port, path, the query's
keys) and drops the user info and every query value. Without a scheme, `user:pass@host` loses its user info
too; an image reference pinned by digest (`app:1.2@sha256:...`) is not user info and stays whole. Closing
punctuation after a URL in prose (`(see https://h/x?a=b).`) stays outside it. A kubeconfig exec plugin's stderr,
which the kubernetes client puts in its error, is dropped.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

REDACTED = "REDACTED"
# a URL inside free text: scheme://, then anything up to white space or a quote
_URL_IN_TEXT = re.compile(r"""\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+""")
_QUERY_VALUE = re.compile(r"=[^&#]*")
# user:pass@host with no scheme; not name:tag@algorithm:hex (an image reference pinned by digest)
_BARE_USERINFO = re.compile(r"""(?<![\w/@:.%+-])[\w.%+-]+:[^\s@/'"<>]+@(?![a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32})"""
                            r"""(?=[A-Za-z0-9\[])""")
_TRAILING = ".,;:!?)]}"
# The kubernetes client's message for a failed kubeconfig exec plugin ends with the plugin's stderr, which may hold
# a token or an account's details (a cloud CLI's error): kept to the exit code, as credential provider plugins are.
_EXEC_STDERR = re.compile(r"(exec: process returned -?\d+)\. .*", re.S)


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


def _url_in_prose(match: re.Match) -> str:
    """A URL found in free text, redacted, with closing punctuation that belongs to the prose kept after it."""
    url, tail = match.group(0), ""
    while url and url[-1] in _TRAILING and (url[-1] != ")" or url.count("(") < url.count(")")):
        url, tail = url[:-1], url[-1] + tail
    return redact_url(url) + tail


def redact(text: str) -> str:
    """Free text (a log message, an error, a label) with every URL and bare `user:pass@host` in it redacted."""
    if "exec: process returned" in text:
        text = _EXEC_STDERR.sub(r"\1 (its stderr is not shown: it may hold credentials)", text)
    if "://" in text:
        text = _URL_IN_TEXT.sub(_url_in_prose, text)
    if "@" in text:
        text = _BARE_USERINFO.sub("", text)
    return text


def redact_image(text: str) -> str:
    """An image reference as written, its user info replaced by `REDACTED@`: no valid reference holds user info
    or a query, so a valid one is returned unchanged, and one that held a password stays invalid (it is checked,
    counted and shown as `invalid_reference`, never as the image it would name without its user info)."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(_url_in_prose, text)
    elif "?" in text:  # `host/app:1?token=...`: a query with no scheme, its values dropped as a URL's
        path, _, query = text.partition("?")
        text = f"{path}?{_QUERY_VALUE.sub('=' + REDACTED, query)}"
    if "@" in text:
        text = _BARE_USERINFO.sub(REDACTED + "@", text)
    return text


class RedactFilter(logging.Filter):
    """Redacts every URL of a log record: its message, its traceback and its stack (installed on the log handler
    and on the HTTP clients' loggers, whose request lines carry full URLs).

    The traceback is rendered here, redacted, into `exc_text`, and `exc_info` dropped: formatters (text and
    JSON alike) then write the redacted text instead of rendering the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(record.exc_text or _FORMATTER.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
