"""The kubelet's own docker config: `config.json`, else `.dockercfg`, in its root dir (/var/lib/kubelet).

Parsed with the same code as pull secrets (`exporter.registry.credentials`); the source is named
`node docker config PATH` in details, never the content.
"""

from __future__ import annotations

import json
from pathlib import Path

from exporter.registry.credentials import Credential, CredentialError, from_docker_config, parse_auths


def paths(root: Path) -> list[Path]:
    return [root / "config.json", root / ".dockercfg"]


def load(root: Path) -> tuple[Credential, ...]:
    """Credentials of the first file that exists (the kubelet reads `config.json` before `.dockercfg`)."""
    for path in paths(root):
        if not path.is_file():
            continue
        source = f"node docker config {path}"
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise CredentialError(f"{source}: {exc.strerror}") from None
        except (ValueError, UnicodeDecodeError):
            raise CredentialError(f"{source}: not JSON") from None
        if path.name == ".dockercfg":
            return parse_auths(data, source)
        return from_docker_config(data, source)
    return ()
