"""Reading a user's file (a config, a kubeconfig, a list, a report, a docker config, a node's registry config,
a password, a CA bundle): the one bounded read, and the one bounded parse of JSON, YAML and TOML.

What and where: `kubeconfig /x/config:3:7: not valid YAML (found '-')`, not a parser's five-line report. Every
file is opened without blocking and read only when `fstat` says it is a regular file: a FIFO (which would block
a command, or the serve loop, forever), a device (`/dev/zero` never ends) or a socket is refused unread. A file
larger than its kind ever is is refused before it is read into memory, and a document nested deeper than
`MAX_DEPTH` is refused before a parser (or the code walking its result) recurses that deep.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.common.redact import redact

MAX_BYTES = 8 * 1024 * 1024  # a kubeconfig or config file is kilobytes; more is not one
MAX_LIST_BYTES = 16 * 1024 * 1024  # an expected list: 100,000 references are about 8 MiB
MAX_SECRET_BYTES = 64 * 1024  # a password file
# Kubernetes objects (managedFields included), reports, kubeconfigs and configs nest 20 levels at most; a document
# nested deeper is not one of them (and 100,000 levels would exhaust a recursive parser's stack).
MAX_DEPTH = 100
_CHUNK = 1024 * 1024


class ReadError(ValueError):
    """A file that is not read or parsed: not there, unreadable, not a regular file, too large, not text, not of
    its format, too deep; the message says which (without the path: the caller names the file as its user knows
    it)."""


class TooLarge(ReadError):
    """A file holding more than its bound."""


class Malformed(ReadError):
    """A file read, but whose content is not of its kind: binary, not JSON, YAML or TOML, nested too deep."""


class TooDeep(Malformed):
    """A document nested deeper than its bound."""


class Marked(Malformed):
    """A syntax error with its (line, column)."""

    def __init__(self, message: str, mark: tuple[int, int]) -> None:
        super().__init__(message)
        self.mark = mark


class FileProblem(ValueError):
    """The file cannot be used; the message names what it is and its path, and, for a syntax error, line and
    column."""


def read_file(path: str | Path, limit: int) -> tuple[os.stat_result, bytes]:
    """(the file's stat, its content) when it is a regular file of at most `limit` bytes; ReadError otherwise.

    Opened with O_NONBLOCK and checked with fstat before the first read: a FIFO, device or socket never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ReadError("a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ReadError("not a regular file (FIFOs, devices and sockets are never read)")
        if info.st_size > limit:
            raise TooLarge(f"larger than {_size(limit)}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # a file that grows while it is read
                raise TooLarge(f"larger than {_size(limit)}")
        return info, b"".join(chunks)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_text(path: str | Path, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a file, bounded as `read_file`; ReadError otherwise, `not text` for binary content."""
    return decode(read_file(path, limit)[1])


def read_certificates(path: str | Path, limit: int = MAX_BYTES) -> str:
    """The PEM certificates of a CA file read the bounded way; `no PEM certificate in it` (Malformed) for an empty
    or foreign file, which the TLS library would otherwise refuse with a traceback at the first request."""
    text = read_text(path, limit)
    try:
        ssl.create_default_context().load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise Malformed("no PEM certificate in it") from None
    return text


def decode(content: bytes) -> str:
    """UTF-8 text; ReadError `not text (binary content)` otherwise (a NUL byte counts as binary)."""
    try:
        text = content.decode()
    except UnicodeDecodeError:
        raise Malformed("not text (binary content)") from None
    if "\0" in text:
        raise Malformed("not text (binary content)")
    return text


# -- depth --

_KEEP = frozenset(b'"[]{}')
_NOT_KEPT = bytes(b for b in range(256) if b not in _KEEP)
_LEAF_PAIR = re.compile(rb"\[\]|\{\}")


def check_json_depth(content: bytes | str, limit: int = MAX_DEPTH) -> None:
    """TooDeep when the JSON text nests more than `limit` arrays and objects; checked without parsing or recursing.

    Escaped quotes and backslashes are dropped, then every byte but quotes and brackets, then what is between
    quotes (strings). What is left is emptied by removing its innermost bracket pairs: a pass of `bytes.replace`
    (`[]` then `{}`) removes one or two levels, so a text emptied within `limit // 2` passes is no deeper than the
    limit (a 50 MB pod list: 8 passes, 0.02 s; the whole check 0.1 s, a quarter of what parsing it takes). A text
    left after those passes is measured exactly, one level a regex pass. Text that is not balanced JSON is left for
    the parser to reject with its line and column."""
    data = content.encode() if isinstance(content, str) else content
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # two quotes side by side end a string and start the next (or are an empty string): dropping them leaves every
    # bracket as inside or outside a string as it was, and leaves only the rare strings that hold brackets to split
    kept = data.translate(None, _NOT_KEPT).replace(b'""', b"")
    brackets = b"".join(kept.split(b'"')[::2]) if b'"' in kept else kept
    left = brackets
    for _ in range(limit // 2):
        if not left:
            return
        inner = left.replace(b"[]", b"").replace(b"{}", b"")
        if len(inner) == len(left):
            return  # unbalanced: not JSON, as the parser will say
        left = inner
    for _ in range(limit):
        if not brackets:
            return
        brackets, removed = _LEAF_PAIR.subn(b"", brackets)
        if not removed:
            return  # unbalanced: not JSON, as the parser will say
    if _LEAF_PAIR.search(brackets):
        raise TooDeep(f"nested deeper than {limit} levels")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """TooDeep when a parsed value nests more than `limit` lists and mappings (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            raise TooDeep(f"nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


# -- parsing --

def parse_json(content: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """The JSON document of `content`; Malformed when it is not JSON (its `mark` is the line and column) or nests
    deeper than `limit`."""
    import orjson

    check_json_depth(content, limit)
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        if isinstance(content, bytes):
            decode(content)  # binary content says so, not `surrogates not allowed at column 1`
        raise Marked(f"not JSON ({exc.msg})", (exc.lineno, exc.colno)) from None


def parse_yaml(text: str, limit: int = MAX_DEPTH) -> Any:
    """The YAML document of `text` (None when empty); Malformed when it is not YAML (with the line and column
    of a syntax error), TooDeep as soon as the composer goes deeper than `limit` (before it recurses further)."""
    import yaml  # here: a command that reads no YAML file (`check` of a plain list) does not load it

    try:
        loader = _bounded_loader(limit)(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark, problem = exc.problem_mark, f"not valid YAML ({exc.problem or exc.context})"
        raise (Marked(problem, (mark.line + 1, mark.column + 1)) if mark else Malformed(problem)) from None
    except yaml.YAMLError as exc:
        raise Malformed(f"not valid YAML ({' '.join(str(exc).split())})") from None


def parse_toml(text: str, limit: int = MAX_DEPTH) -> dict[str, Any]:
    """The TOML document of `text`; Malformed when it is not TOML or nests more than `limit` levels."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Malformed(f"not TOML ({exc})") from None
    except RecursionError:  # inline arrays nested thousands deep: tomllib recurses on them
        raise TooDeep(f"nested deeper than {limit} levels") from None
    check_depth(data, limit)
    return data


_LOADERS: dict[int, type] = {}


def _bounded_loader(limit: int) -> type:
    """yaml.SafeLoader whose composer refuses a collection nested deeper than `limit`, and an alias to a collection
    that holds it (a cycle, which any code walking the result would follow forever)."""
    if limit not in _LOADERS:
        import yaml

        class Bounded(yaml.SafeLoader):
            _depth = 0
            _open: frozenset = frozenset()

            def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
                event = self.peek_event()
                if isinstance(event, yaml.AliasEvent) and event.anchor in self._open:
                    raise Malformed(f"the alias *{event.anchor} refers to a collection that holds it")
                collection = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
                if collection and self._depth >= limit:
                    raise TooDeep(f"nested deeper than {limit} levels")
                opened = self._open
                if collection:
                    self._depth += 1
                    if event.anchor:
                        self._open = opened | {event.anchor}
                try:
                    return super().compose_node(parent, index)
                finally:
                    self._depth -= collection
                    self._open = opened

        _LOADERS[limit] = Bounded
    return _LOADERS[limit]


# -- a named file, read and parsed: FileProblem naming it --

def read_bounded(path: str | Path, what: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of `path`, at most `limit` of them; FileProblem naming `what` and `path` otherwise."""
    try:
        return read_file(path, limit)[1]
    except ReadError as exc:
        raise _problem(path, what, exc) from None


def read_json(path: str | Path, what: str, limit: int = MAX_BYTES) -> Any:
    """The JSON document of `path`; FileProblem naming `what` and `path` otherwise."""
    return _read(path, what, limit, lambda content: parse_json(content))


def read_yaml(path: str | Path, what: str, limit: int = MAX_BYTES) -> Any:
    """The YAML (or JSON) document of `path` (None when empty); FileProblem naming `what` and `path` otherwise,
    with `PATH:LINE:COLUMN` for a syntax error."""
    return _read(path, what, limit, lambda content: parse_yaml(decode(content)))


def read_toml(path: str | Path, what: str, limit: int = MAX_BYTES) -> dict[str, Any]:
    """The TOML document of `path`; FileProblem naming `what` and `path` otherwise."""
    return _read(path, what, limit, lambda content: parse_toml(decode(content)))


def _read(path: str | Path, what: str, limit: int, parse: Callable[[bytes], Any]) -> Any:
    try:
        return parse(read_file(path, limit)[1])
    except ReadError as exc:
        raise _problem(path, what, exc) from None


def _problem(path: str | Path, what: str, exc: ReadError) -> FileProblem:
    """One line naming the file; a path typed as a URL with credentials (`ftp://u:pw@h/x`) is named redacted."""
    path = redact(str(path))
    if isinstance(exc, TooLarge):
        return FileProblem(f"{what} {path}: {exc}, the most it may hold")
    if isinstance(exc, Marked):
        return FileProblem(f"{what} {path}:{exc.mark[0]}:{exc.mark[1]}: {exc}")
    if isinstance(exc, Malformed):
        return FileProblem(f"{what} {path}: {exc}")
    return FileProblem(f"cannot read {what} {path}: {exc}")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB" if n >= 1024 else f"{n} bytes"
