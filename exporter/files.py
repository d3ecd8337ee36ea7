"""Reading a user's YAML file (a config, a kubeconfig) into plain data, with every failure as one short line.

What and where: `kubeconfig /x/config:3:7: not valid YAML (found '-')`, not a parser's five-line report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 8 * 1024 * 1024  # a kubeconfig or config file is kilobytes; more is not one


class FileProblem(ValueError):
    """The file cannot be read as YAML; the message names the file and, for a syntax error, line and column."""


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document of `path` (None when empty); FileProblem naming `what` and `path` otherwise."""
    try:
        with open(path, "rb") as handle:
            content = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(content) > MAX_BYTES:
        raise FileProblem(f"{what} {path}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
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
