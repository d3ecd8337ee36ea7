"""What reading the retention sources costs the registries' APIs: fixtures of a given size in the Harbor, GitLab and
ECR emulators, a measure of two readings counted where the emulator receives them, and the formulas the docs state.

Each formula is the sentence of its doc ("API calls" in docs/retention.md, docs/retention-gitlab.md,
docs/retention-ecr.md) written as a function; `DOC_EXAMPLES` are the worked examples those sentences end with, each
with the figure its doc prints. `tests/test_retention_calls.py` holds the formulas to the emulators at small sizes
and the examples to the docs' text; `scripts/bench_retention.py` measures them at a sizeable fixture.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pathlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from exporter.sources.registry.credentials import Credential, Keyring
from exporter.sources.registry.limits import HostPauses
from exporter.sources.registry.retention import Retention, parse_spec
from exporter.sources.registry.settings import from_options

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
HARBOR_PAGE = 100  # artifacts a page (Harbor's page_size maximum)
GITLAB_PAGE = 100  # repositories or tag names a page (GitLab's per_page maximum)
ECR_IMAGES_PAGE = 1000  # DescribeImages' maxResults maximum
ECR_PREVIEW_PAGE = 100  # GetLifecyclePolicyPreview's maxResults maximum
TOKEN = "glpat-bench-0123456789"


def _pages(items: int, size: int) -> int:
    """Pages of a listing that says when it has no more (GitLab's X-Next-Page, ECR's nextToken): one at least."""
    return max(1, -(-items // size))


def harbor_calls(projects: int, repositories: int, artifacts: int) -> int:
    """docs/retention.md: per project in use 2, plus one a page of 100 artifacts for each repository in use a rule
    selects; a full page is followed by one more request (the listing ends at a short page, an empty one included)."""
    return projects * (2 + repositories * (artifacts // HARBOR_PAGE + 1))


def gitlab_calls(projects: int, repositories: int, tags: int) -> int:
    """docs/retention-gitlab.md: per project in use 1 to resolve its path plus one 404 for the longer prefix
    (`group/project/app`), 1 for the policy, 1 a page of 100 repositories, and per repository in use 1 a page of
    100 tag names plus 1 per tag."""
    return projects * (2 + 1 + _pages(repositories, GITLAB_PAGE) + repositories * (_pages(tags, GITLAB_PAGE) + tags))


def ecr_calls(repositories: int, images: int, previews: int = 0) -> int:
    """docs/retention-ecr.md: per repository in use with a policy `GetLifecyclePolicy` (1), `DescribeImages`
    (1 a 1,000 images) and `GetLifecyclePolicyPreview` (1 a 100 preview results; 1 where there is none)."""
    return repositories * (1 + _pages(images, ECR_IMAGES_PAGE) + _pages(previews, ECR_PREVIEW_PAGE))


FORMULAS: dict[str, Callable[..., int]] = {"harbor": harbor_calls, "gitlab": gitlab_calls, "ecr": ecr_calls}
DOCS = {"harbor": "docs/retention.md", "gitlab": "docs/retention-gitlab.md", "ecr": "docs/retention-ecr.md"}


@dataclass(frozen=True)
class Example:
    """A doc's worked example: its sizes, and its words around the figure (`{calls}` where the figure is)."""

    source: str
    sizes: tuple[int, ...]
    words: str

    @property
    def doc(self) -> str:
        return DOCS[self.source]

    def calls(self) -> int:
        return FORMULAS[self.source](*self.sizes)

    @property
    def figure(self) -> str:
        """The words with the formula's figure: what the doc must print."""
        return self.words.format(calls=f"{self.calls():,}")


DOC_EXAMPLES = (
    Example("harbor", (20, 10, 99),
            "20 projects of 10 repositories of fewer than 100 artifacts: {calls} calls an hour"),
    Example("harbor", (20, 10, 100), "of exactly 100 artifacts: {calls}"),
    Example("gitlab", (20, 2, 50), "20 × (2 + 1 + 1 + 2 × 51) = {calls} calls an hour"),
    Example("ecr", (50, 50),
            "50 repositories in use with a policy and fewer than 1,000 images each: {calls} calls an hour"),
)


def doc_text(name: str) -> str:
    """A doc's text with its line breaks and runs of spaces made single spaces, as a figure is searched in it."""
    return " ".join((ROOT / name).read_text().split())


def figure_stated(example: Example) -> bool:
    """Whether the doc prints the example with the formula's figure."""
    return example.figure in doc_text(example.doc)


@dataclass(frozen=True)
class Measure:
    source: str
    sizes: tuple[int, ...]
    calls: tuple[int, int]  # first reading, next reading
    seconds: tuple[float, float]
    forecasts: int

    @property
    def expected(self) -> int:
        return FORMULAS[self.source](*self.sizes)


def _two_readings(source: str, sizes: tuple[int, ...], retention: Retention, in_use: dict,
                  received: Callable[[], int]) -> Measure:
    calls, seconds, forecasts = [], [], 0
    for _ in range(2):
        before, started = received(), time.perf_counter()
        forecasts = len(retention.read_all(in_use))
        seconds.append(time.perf_counter() - started)
        calls.append(received() - before)
    return Measure(source, sizes, (calls[0], calls[1]), (seconds[0], seconds[1]), forecasts)


def _rfc3339(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def measure_harbor(projects: int, repositories: int, artifacts: int) -> Measure:
    """Every project with a policy whose rule selects every repository (`latestPushedK 10`), every repository in use."""
    from tests.support.harbor import Harbor, artifact, policy, rule

    harbor = Harbor()
    try:
        in_use = []
        for p in range(projects):
            harbor.project(f"team{p:03d}", policy(rule("latestPushedK", 10)))
            for r in range(repositories):
                harbor.artifacts[(f"team{p:03d}", f"app{r}")] = [
                    artifact(f"sha256:{p:021x}{r:021x}{a:022x}", (f"1.{a}",), pushed=_rfc3339(NOW - a * 3600))
                    for a in range(artifacts)]
                in_use.append(f"team{p:03d}/app{r}")
        keyring = Keyring.of([Credential(harbor.host, "robot$exporter", "s3cret", source="bench")])
        retention = Retention([parse_spec(f"harbor={harbor.host}")], from_options(insecure=[harbor.host]), keyring,
                              HostPauses(1, 10), clock=lambda: NOW)
        return _two_readings("harbor", (projects, repositories, artifacts), retention, {harbor.host: in_use},
                             lambda: sum(harbor.requests.values()))
    finally:
        harbor.stop()


def measure_gitlab(projects: int, repositories: int, tags: int) -> Measure:
    """Projects `groupN/project` with a cleanup policy (`keep_n 10, older_than 7d`), their repositories
    `groupN/project/appR` in use."""
    from tests.support.gitlab import GitLab, expiration

    gitlab = GitLab(TOKEN)
    try:
        in_use = []
        for p in range(projects):
            project = f"group{p:03d}/project"
            gitlab.project(project, expiration(keep_n=10, older_than="7d"))
            for r in range(repositories):
                in_use.append(gitlab.repository(project, f"app{r}", {
                    f"1.{t}": (f"sha256:{p:021x}{r:021x}{t:022x}", _rfc3339(NOW - t * 86400)) for t in range(tags)}))
        with tempfile.TemporaryDirectory() as workdir:
            token = pathlib.Path(workdir) / "token"
            token.write_text(TOKEN + "\n")
            spec = parse_spec(f"gitlab={gitlab.host},api={gitlab.api},token_file={token}")
            retention = Retention([spec], from_options(), Keyring.of([]), HostPauses(1, 10), clock=lambda: NOW)
            return _two_readings("gitlab", (projects, repositories, tags), retention, {gitlab.host: in_use},
                                 lambda: sum(gitlab.requests.values()))
    finally:
        gitlab.stop()


@contextlib.contextmanager
def _aws_environment() -> Iterator[None]:
    from tests.support.ecr import CREDENTIALS

    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def measure_ecr(repositories: int, images: int, previews: int = 0) -> Measure:
    """Repositories `team/appNN`, each with a policy (`imageCountMoreThan 10`), all in use; with `previews`, a
    finished preview of that policy with as many results, else none started."""
    from exporter.sources.registry.retention import ecr as source
    from tests.support.ecr import ECR, HOST, policy_text, rule

    with _aws_environment():
        aws = ECR()
        source._client.cache_clear()
        try:
            in_use = []
            text = policy_text(rule(1, "imageCountMoreThan", 10))
            for r in range(repositories):
                name = f"team/app{r:03d}"
                aws.repository(name, text)
                for i in range(images):
                    aws.push(name, f"1.{i}", pushed=NOW - i * 3600)
                if previews:
                    aws.previews[name] = {"status": "COMPLETE", "lifecyclePolicyText": text, "previewResults": [
                        {"imageDigest": f"sha256:{n:064x}", "imageTags": [f"0.{n}"], "action": {"type": "EXPIRE"},
                         "appliedRulePriority": 1} for n in range(previews)]}
                in_use.append(name)
            retention = Retention([parse_spec(f"ecr={HOST},endpoint={aws.endpoint}")], from_options(), Keyring.of([]),
                                  HostPauses(1, 10), clock=lambda: NOW)
            sizes = (repositories, images, previews) if previews else (repositories, images)
            return _two_readings("ecr", sizes, retention, {HOST: in_use},
                                 lambda: sum(aws.requests.values()))
        finally:
            aws.stop()
            source._client.cache_clear()


MEASURES: dict[str, Callable[..., Measure]] = {"harbor": measure_harbor, "gitlab": measure_gitlab, "ecr": measure_ecr}
