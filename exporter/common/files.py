"""Reading a user's file (a config, a kubeconfig, a list, a report, a docker config, a node's registry config)
with a size bound: the one bounded read.

What and where: `kubeconfig /x/config:3:7: not valid YAML (found '-')`, not a parser's five-line report; and a
file far larger than its kind ever is (or a device that never ends) is refused, not read into memory. The serve
loop reads its expected lists with `regular_only`: a FIFO would block the cycle forever, so only regular files
are opened there, without blocking; a one-shot command may still read a pipe (`check --file <(...)`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

MAX_BYTES = 8 * 1024 * 1024  # a kubeconfig or config file is kilobytes; more is not one
MAX_LIST_BYTES = 16 * 1024 * 1024  # an expected list: 100,000 references are about 8 MiB
_CHUNK = 1024 * 1024


class ReadError(ValueError):
    """A file that is not read: not there, unreadable, not a regular file, or too large; the message says which
    (without the path: the caller names the file as its user knows it)."""


class TooLarge(ReadError):
    """A file holding more than its bound."""


class FileProblem(ValueError):
    """The file cannot be read (as YAML); the message names the file and, for a syntax error, line and column."""


def read_file(path: str | Path, limit: int, regular_only: bool = False) -> tuple[os.stat_result, bytes]:
    """(the file's stat, its content) when it holds at most `limit` bytes; ReadError otherwise.

    `regular_only` refuses FIFOs, devices and sockets, and opens without blocking."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if regular_only else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        regular = stat.S_ISREG(info.st_mode)
        if regular_only and not regular:
            raise ReadError("not a regular file (FIFOs, devices and sockets are never read)")
        if regular and info.st_size > limit:
            raise TooLarge(f"larger than {_size(limit)}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # a file that grows while it is read, or a device that never ends
                raise TooLarge(f"larger than {_size(limit)}")
        return info, b"".join(chunks)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_text(path: str | Path, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a small file (a docker config, a node's registry config), bounded as `read_file`;
    ReadError otherwise, `not text` for binary content."""
    try:
        return read_file(path, limit)[1].decode()
    except UnicodeDecodeError:
        raise ReadError("not text (binary content)") from None


def read_bounded(path: str | Path, what: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of `path`, at most `limit` of them; FileProblem naming `what` and `path` otherwise."""
    try:
        return read_file(path, limit)[1]
    except TooLarge as exc:
        raise FileProblem(f"{what} {path}: {exc}, the most it may hold") from None
    except ReadError as exc:
        raise FileProblem(f"cannot read {what} {path}: {exc}") from None


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document of `path` (None when empty); FileProblem naming `what` and `path` otherwise."""
    import yaml  # here: a command that reads no YAML file (`check` of a plain list) does not load it

    content = read_bounded(path, what)
    try:
        text = content.decode()
    except UnicodeDecodeError:
        raise FileProblem(f"{what} {path}: not text (binary content)") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise FileProblem(f"{what} {where}: not valid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise FileProblem(f"{what} {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise FileProblem(f"{what} {path}: nested too deep") from None


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"
