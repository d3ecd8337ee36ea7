"""The kubelet's own docker config: `config.json`, else `.dockercfg`, in its root dir (/var/lib/kubelet).

Read with the same code as `--docker-config` files and pull secrets (`exporter.sources.registry.credentials`); the
source is named `node docker config PATH` in details, never the content.
"""

from __future__ import annotations

from pathlib import Path

from exporter.sources.registry.credentials import Credential, from_docker_config_file


def paths(root: Path) -> list[Path]:
    return [root / "config.json", root / ".dockercfg"]


def load(root: Path) -> tuple[Credential, ...]:
    """Credentials of the first file that exists (the kubelet reads `config.json` before `.dockercfg`)."""
    for path in paths(root):
        if path.exists():  # a FIFO or device by that name is refused when read, not skipped as absent
            return from_docker_config_file(path, f"node docker config {path}")
    return ()
