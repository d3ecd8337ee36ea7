"""Real registries for the registry tests: one per auth setup, shared by the module's tests."""

import pytest

from exporter.sources.registry.checker import Checker
from exporter.sources.registry.settings import from_options
from tests.support import registry as real

pytestmark = pytest.mark.skipif(not real.available(), reason="docker-registry not installed (scripts/setup installs it)")


@pytest.fixture(scope="session", params=["none", "basic", "token"])
def loaded_registry(request, tmp_path_factory):
    """A registry with: team/app:1.0 (OCI), team/app:docker (Docker v2), public/multi:1 (index)."""
    if not real.available():
        pytest.skip("docker-registry not installed")
    reg = real.Registry(tmp_path_factory.mktemp(f"registry-{request.param}"), request.param)
    reg.digests = {
        "oci": reg.push_image("team/app", "1.0"),
        "docker": reg.push_image("team/app", "docker", real.DOCKER_MANIFEST),
        "index": reg.push_index("public/multi", "1")[0],
    }
    yield reg
    reg.stop()


def checker_for(reg, **options):
    return Checker(from_options(insecure=[reg.host], **options))
