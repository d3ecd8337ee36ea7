"""The load a retention reading puts on a registry's API is what the docs say: calls counted where the emulators
receive them, at small fixtures, equal the docs' formulas (tests/support/retention_load.py), for the first reading
and the next; and each doc's worked example prints its formula's figure."""

import pytest

from exporter.sources.registry.retention import ecr
from tests.support.retention_load import (
    DOC_EXAMPLES, ECR_IMAGES_PAGE, ECR_PREVIEW_PAGE, GITLAB_PAGE, HARBOR_PAGE, ecr_calls, figure_stated, gitlab_calls,
    harbor_calls, measure_ecr, measure_gitlab, measure_harbor,
)


@pytest.mark.parametrize("projects, repositories, artifacts", [
    (1, 1, 0),
    (2, 2, 99),  # one page, short: the listing ends there
    (2, 2, 100),  # one full page, then an empty one to know it is the last
    (1, 2, 101),
])
def test_harbor_calls_per_reading_are_the_docs(projects, repositories, artifacts):
    measured = measure_harbor(projects, repositories, artifacts)
    assert measured.forecasts == projects
    assert measured.calls == (measured.expected, measured.expected)


def test_a_full_harbor_page_costs_one_more_request_per_repository():
    assert harbor_calls(20, 10, 100) - harbor_calls(20, 10, 99) == 20 * 10
    assert harbor_calls(1, 1, 99) == 3 and harbor_calls(1, 1, 100) == 4 and HARBOR_PAGE == 100


@pytest.mark.parametrize("projects, repositories, tags", [
    (2, 2, 3),
    (1, 1, 100),  # GitLab says the last page in X-Next-Page: a full page costs nothing more
    (1, 1, 101),
])
def test_gitlab_calls_per_reading_are_the_docs(projects, repositories, tags):
    measured = measure_gitlab(projects, repositories, tags)
    assert measured.forecasts == projects
    assert measured.calls == (measured.expected, measured.expected)
    assert gitlab_calls(1, 1, 101) - gitlab_calls(1, 1, 100) == 2 and GITLAB_PAGE == 100  # one more tag, one more page


def test_ecr_calls_per_reading_are_the_docs():
    measured = measure_ecr(2, 3)
    assert measured.forecasts == 2
    assert measured.calls == (measured.expected, measured.expected) == (6, 6)


def test_ecr_listings_cost_one_call_a_page(monkeypatch):
    """DescribeImages at a page of 2 (the paging, not its size, is what is measured here: 1,000 is the API's
    ceiling the source asks for) and a preview of 150 results, 100 a page."""
    assert ecr.PAGE == ECR_IMAGES_PAGE == 1000 and ECR_PREVIEW_PAGE == 100
    monkeypatch.setattr(ecr, "PAGE", 2)
    measured = measure_ecr(2, 5, previews=150)
    per_repository = 1 + 3 + 2  # the policy, 5 images 2 a page, 150 preview results 100 a page
    assert measured.calls == (2 * per_repository, 2 * per_repository)
    assert ecr_calls(2, 5, 150) == 2 * (1 + 1 + 2)  # and at the real page size, one page of images


@pytest.mark.parametrize("example", DOC_EXAMPLES, ids=lambda e: f"{e.source}-{'x'.join(map(str, e.sizes))}")
def test_each_docs_example_prints_its_formulas_figure(example):
    assert figure_stated(example), f"{example.doc} should say {example.figure!r}"
