"""Nodes, read for their platforms and the images their kubelets hold: a pod pulls its node's platform from an
index, and when an image is gone from its registry, the copies left in nodes' image caches are the last ones,
and draining those nodes loses them.

A Node keeps, in `status.images`, the names of the images its runtime holds (each with its repo digests and tags);
the kubelet reports at most 50 of them by default (`--node-status-max-images`), the largest first, so a small image
on a busy node may not be listed. Names that do not parse are left out.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from exporter.model.images import InvalidReference, normalize
from exporter.model.platforms import of_node
from exporter.model.records import NodeImages


@lru_cache(maxsize=65_536)
def _normalized(name: str) -> str | None:
    """A node's image name normalized, once per distinct name: thousands of nodes list the same images, and each
    heartbeat that changes a node's status sends its whole list again."""
    try:
        return sys.intern(normalize(name))
    except InvalidReference:
        return None


def trim_node(obj: Mapping[str, Any]) -> NodeImages:
    """A Node as its name, its platform and the normalized names of the images it holds."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    images = status.get("images") if isinstance(status.get("images"), list) else []
    names = set()
    for entry in images:
        for name in (entry.get("names") if isinstance(entry, Mapping) and isinstance(entry.get("names"), list)
                     else ()):
            if isinstance(name, str) and (normalized := _normalized(name)) is not None:
                names.add(normalized)
    labels = metadata.get("labels") if isinstance(metadata.get("labels"), Mapping) else {}
    info = status.get("nodeInfo") if isinstance(status.get("nodeInfo"), Mapping) else {}
    return NodeImages(str(metadata.get("name", "")), tuple(sorted(names)), of_node(labels, info))
