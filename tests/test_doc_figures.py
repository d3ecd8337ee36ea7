"""The figures the docs state about registry load are the code's: a changed default fails here until every doc
that states it says the new one."""

import pathlib
import re

import pytest

from exporter.sources.registry.rounds import RATE_LIMIT_PAUSE
from exporter.sources.registry.settings import CHECK_CEILING, SERVE_CEILING, RegistrySettings

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = {name: " ".join((ROOT / name).read_text().split()) for name in ("README.md", "docs/runbook.md",
                                                                         "docs/scaling.md")}


@pytest.mark.parametrize("name", ["README.md", "docs/runbook.md"])
def test_the_pause_after_a_429_is_stated_as_the_code_pauses(name):
    match = re.search(r"for its Retry-After \((\d+) s without one, capped at (\d+) h\)", DOCS[name])
    assert match, f"{name} no longer states the pause after a 429"
    assert (float(match[1]), float(match[2]) * 3600) == (RATE_LIMIT_PAUSE, RegistrySettings().retry_after_max)


def test_the_in_flight_ceilings_are_stated_as_the_code_sets_them():
    assert f"The ceiling is {CHECK_CEILING} in flight for `check` and a gentler {SERVE_CEILING} for `serve`" \
        in DOCS["README.md"]
    match = re.search(r"default registry settings \(no cap: the load adapts below (\d+) requests in flight",
                      DOCS["docs/scaling.md"])
    assert match and int(match[1]) == SERVE_CEILING
