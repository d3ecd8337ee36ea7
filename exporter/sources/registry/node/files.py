"""Node files read again when they change on disk, like expected lists: by mtime, size and inode.

`Reloading` keeps a loaded value and the signature of the paths it came from (a file, or a directory tree
two levels deep, as certs.d is). At most every `recheck` seconds it stats them again and reloads when the
signature moved: a steady node costs a few `stat` calls a minute, an edited hosts.toml counts within
seconds. A reload that fails keeps the last good value and says why once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def signature(paths: Iterable[Path], depth: int = 2) -> tuple:
    """What changes when any file under the paths is edited, added, removed or replaced."""
    out = []
    for path in paths:
        out.append((str(path), _stat(path)))
        if depth > 0 and path.is_dir():
            try:
                children = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            out.extend(signature([Path(entry.path) for entry in children], depth - 1))
    return tuple(out)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class Reloading(Generic[T]):
    """`get()` returns the value loaded from `paths`, loading again when they changed."""

    def __init__(self, paths: Callable[[], list[Path]], load: Callable[[], T], what: str,
                 recheck: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._paths = paths
        self._load = load
        self._what = what
        self._recheck = recheck
        self._clock = clock
        self._checked = float("-inf")
        self._signature: tuple | None = None
        self._value: T | None = None
        self._failed = ""
        self.loads = 0

    def get(self) -> T:
        now = self._clock()
        if self._value is None or now - self._checked >= self._recheck:
            self._checked = now
            current = signature(self._paths())
            if current != self._signature:
                try:
                    value = self._load()
                except ValueError as exc:
                    if self._value is None:
                        raise
                    if str(exc) != self._failed:
                        log.warning("%s: keeping the last good version: %s", self._what, exc)
                        self._failed = str(exc)
                else:
                    self._value, self._failed = value, ""
                    self.loads += 1
                self._signature = current
        assert self._value is not None
        return self._value
