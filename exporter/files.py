"""Reading a user's file (a config, a kubeconfig, a list) with a size bound, every failure as one short line.

What and where: `kubeconfig /x/config:3:7: not valid YAML (found '-')`, not a parser's five-line report; and a
file far larger than its kind ever is (or a device that never ends) is refused, not read into memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_BYTES = 8 * 1024 * 1024  # a kubeconfig or config file is kilobytes; more is not one


class FileProblem(ValueError):
    """The file cannot be read as YAML; the message names the file and, for a syntax error, line and column."""


def read_bounded(path: str | Path, what: str, limit: int = MAX_BYTES) -> bytes:
    """The bytes of `path`, at most `limit` of them; FileProblem when it cannot be read or holds more."""
    try:
        with open(path, "rb") as handle:
            content = handle.read(limit + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(content) > limit:
        raise FileProblem(f"{what} {path}: larger than {limit // (1024 * 1024)} MiB, the most it may hold")
    return content


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
