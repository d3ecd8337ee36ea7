"""Bounded reads of list files: the one way a list file is read, by `serve` and by `check --file`.

A list is kilobytes. A path that names a FIFO would block a read forever, `/dev/zero` would fill memory,
and a 200 MB file would take minutes to parse: so only regular files are read, opened without blocking,
and at most `MAX_LIST_BYTES` of them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_LIST_BYTES = 16 * 1024 * 1024  # a release list of thousands of images is about 1 MiB
_CHUNK = 1024 * 1024


class ReadError(Exception):
    """A list file that is not read: not there, not a regular file, or too large. The message says which."""


def read_file(path: str | Path, max_bytes: int = MAX_LIST_BYTES) -> tuple[os.stat_result, bytes]:
    """(the file's stat, its content) of a regular file of at most `max_bytes`; ReadError otherwise."""
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReadError("not a regular file (FIFOs, devices and sockets are never read)")
        if info.st_size > max_bytes:
            raise ReadError(f"larger than {_size(max_bytes)}")
        chunks, total = [], 0
        while chunk := os.read(fd, _CHUNK):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # a file that grows while it is read
                raise ReadError(f"larger than {_size(max_bytes)}")
        return info, b"".join(chunks)
    except OSError as exc:
        raise ReadError(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_list_file(path: str | Path, max_bytes: int = MAX_LIST_BYTES) -> bytes:
    """The content of a list file, bounded as `read_file`; ReadError with the reason otherwise."""
    return read_file(path, max_bytes)[1]


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"
