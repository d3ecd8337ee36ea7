"""Rollback readiness: the images of kept Helm revisions, each with the keyring its pods would pull with.

The deployed revision is left out (its images are the running ones). Images are normalized like any
other; one that does not parse is checked as written, and shows `invalid_reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from exporter.model.images import InvalidReference, normalize
from exporter.sources.kube.releases import Release
from exporter.sources.registry.credentials import Keyring


class RollbackImage(NamedTuple):
    """The labels of `kube_image_rollback_missing`, in its label order (reason aside)."""

    cluster: str
    namespace: str
    release: str
    revision: str
    image: str


KeyringFor = Callable[[str, tuple[str, ...], str], Keyring]  # (namespace, pull secrets, service account)


def images(cluster: str, releases: Iterable[Release | None], keyring_for: KeyringFor) -> list[tuple[RollbackImage, Keyring]]:
    """Every image of every kept revision but the deployed one (objects that did not decode are None)."""
    rows = []
    for release in releases:
        if not isinstance(release, Release) or release.status == "deployed":
            continue
        for pod in release.pods:
            keyring = keyring_for(release.namespace, pod.pull_secrets, pod.service_account)
            for image in pod.images:
                try:
                    image = normalize(image)
                except InvalidReference:
                    pass  # checked as written: `invalid_reference`
                rows.append((RollbackImage(cluster, release.namespace, release.name, str(release.revision), image),
                             keyring))
    return rows
