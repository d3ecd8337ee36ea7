"""GitLab's container registry cleanup policy, read from GitLab's REST API and evaluated as GitLab's cleanup service
does (gitlab-org/gitlab `app/services/projects/container_repository/cleanup_tags_base_service.rb` and
`cleanup_tags_service.rb`; the docs' "How the cleanup policy works"; docs/retention-gitlab.md).

- A policy is a project's: `GET /api/v4/projects/{path}` → `container_expiration_policy` (`enabled`, `cadence`,
  `keep_n`, `older_than`, `name_regex` (or `name_regex_delete`), `name_regex_keep`, `next_run_at`). A registry
  repository `group/sub/project/app` belongs to the project whose path is its longest prefix that is a project
  (`resolve` asks the longest prefix first: a path that is a project has no projects under it).
- Per repository of the project, its tags: `latest` is never deleted; those matching `name_regex` are candidates,
  minus those matching `name_regex_keep`; the newest `keep_n` candidates by `created_at` and those created less
  than `older_than` before the run are spared; the rest are deleted. GitLab's patterns are RE2, anchored as GitLab
  anchors them (`\\A` + pattern + `\\z`, no group around it); read with Python's `re`, a pattern it cannot read is
  refused. A disabled policy deletes nothing; the next run is `next_run_at`.
- Tags that share a `created_at` (tags of one image) are ordered arbitrarily by GitLab (gitlab#351538): where
  such a tie straddles the `keep_n` boundary, each tied tag is forecast as one that *may* be deleted.
- GitLab deletes tags, not manifests: a digest is forecast deleted only when every tag of it in the repository is
  (untagged, the registry's garbage collection removes it).
Tags come from `GET …/registry/repositories` and `…/repositories/{id}/tags` (100 a page, `X-Next-Page`); the list
lacks `created_at`, so each tag of a repository in use is read once more (`…/tags/{name}`): one call per tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from exporter.model.retention import DAY, Artifact, Forecast, deletions
from exporter.sources.registry.retention import common
from exporter.sources.registry.retention.common import PolicyError, get, get_json, timestamp
from exporter.sources.registry.rounds import tls_verification

OPTIONS = {"api", "token_file"}
_OLDER_THAN = re.compile(r"(\d+)d")  # every value GitLab offers (7d, 14d, 30d, 60d, 90d) is in days
_API = "/api/v4"


def validate(spec) -> None:
    """`gitlab=REGISTRY_HOST,api=URL,token_file=PATH`; ValueError naming what is missing or unknown."""
    unknown = sorted({key for key, _ in spec.options} - OPTIONS)
    if unknown:
        raise ValueError(f"{spec.name}: unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})")
    if not spec.option("token_file"):
        raise ValueError(f"{spec.name}: needs token_file=PATH (a GitLab access token with read_api)")
    api = spec.option("api")
    if api and (urlsplit(api).scheme not in ("http", "https") or not urlsplit(api).netloc):
        raise ValueError(f"{spec.name}: api={api!r} is not an http(s) URL")


@dataclass(frozen=True, slots=True)
class Policy:
    enabled: bool
    keep_n: int | None
    older_than: float | None  # seconds
    delete: re.Pattern | None  # None: no pattern, nothing is a candidate
    keep: re.Pattern | None
    next_run: float | None
    text: str  # how the rule is named: `keep_n 10, older_than 14d`


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    digest: str
    created: float | None


def _pattern(field: str, value: Any) -> re.Pattern | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PolicyError(f"cleanup policy: {field} {value!r} is not a pattern")
    try:
        return re.compile(rf"\A{value}\Z")  # as GitLab anchors it: no group, so a top-level `a|b` is `\Aa` or `b\z`
    except re.error as exc:
        raise PolicyError(f"cleanup policy: {field} {value[:80]!r} cannot be read here ({exc}); "
                          "no forecast rather than a wrong one") from None


def parse_policy(raw: Any) -> Policy:
    """A project's `container_expiration_policy`; PolicyError naming a field that is not GitLab's."""
    if not isinstance(raw, dict):
        raise PolicyError("cleanup policy: not an object")
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise PolicyError(f"cleanup policy: enabled {enabled!r} is not true or false")
    keep_n = raw.get("keep_n")
    if keep_n is not None and (isinstance(keep_n, bool) or not isinstance(keep_n, int) or keep_n < 1):
        raise PolicyError(f"cleanup policy: keep_n {keep_n!r} is not a number of tags")
    older_than = raw.get("older_than")
    if older_than is not None:
        found = _OLDER_THAN.fullmatch(older_than) if isinstance(older_than, str) else None
        if not found:
            raise PolicyError(f"cleanup policy: older_than {older_than!r} is not one of GitLab's (7d, 14d, 30d, 90d)")
    delete = raw.get("name_regex_delete") or raw.get("name_regex")
    text = ", ".join(part for part in (f"keep_n {keep_n}" if keep_n else "",
                                       f"older_than {older_than}" if older_than else "") if part)
    return Policy(enabled, keep_n, int(found[1]) * DAY if older_than else None,
                  _pattern("name_regex", delete), _pattern("name_regex_keep", raw.get("name_regex_keep")),
                  timestamp(raw.get("next_run_at")), text or "name_regex")


def evaluate(policy: Policy, tags: Iterable[Tag], when: float) -> dict[str, str]:
    """Tag name → the rule deleting it at the run at `when`, for one repository's tags."""
    if not policy.enabled or policy.delete is None:
        return {}
    candidates = [t for t in tags if t.name != "latest" and policy.delete.search(t.name)
                  and not (policy.keep is not None and policy.keep.search(t.name))]
    rule = f"cleanup policy: {policy.text}"
    ranked = [when if t.created is None else t.created for t in candidates]  # GitLab ranks a tag without a date as now
    decided = {}
    for tag, created in zip(candidates, ranked):
        if policy.older_than is not None and (tag.created is None or tag.created >= when - policy.older_than):
            continue  # created less than older_than before the run, or no date: GitLab spares it
        reason = "not among those kept"
        if policy.keep_n is not None:
            newer = sum(1 for other in ranked if other > created)
            tied = sum(1 for other in ranked if other == created)  # itself included
            if newer + tied <= policy.keep_n:
                continue  # among the newest keep_n
            if newer < policy.keep_n:  # a tie across the boundary: GitLab keeps some of them, which is not known
                reason = f"may be deleted: {tied} tags share its created_at at the keep_n boundary, gitlab#351538"
        decided[tag.name] = f"{rule} ({reason})"
    return decided


def _paged(client: httpx.Client, path: str, params: dict | None = None) -> list:
    """Every item of a GitLab listing (`page`, `per_page` 100, the next page in `X-Next-Page`); PolicyError past
    MAX_PAGES."""
    items: list = []
    page: str = "1"
    for _ in range(common.MAX_PAGES):
        response = get(client, path, {**(params or {}), "page": page, "per_page": 100})
        found = common.body(response, path)
        if not isinstance(found, list):
            raise PolicyError(f"GET {path}: not a list")
        items.extend(found)
        page = response.headers.get("X-Next-Page", "").strip()
        if not page:
            return items
    raise PolicyError(f"GET {path}: still more after {common.MAX_PAGES} pages of 100: not read", "invalid")


def _project_path(path: str) -> str:
    return f"{_API}/projects/{quote(path, safe='')}"


def scopes(repositories: Iterable[str]) -> dict[str, set[str]]:
    """The repositories in use by their likely project when GitLab cannot be asked (`group/project/image` and
    `group/project`); `resolve` asks GitLab."""
    out: dict[str, set[str]] = {}
    for repository in repositories:
        parts = repository.split("/")
        out.setdefault("/".join(parts[:-1]) if len(parts) > 2 else repository, set()).add(repository)
    return out


def resolve(client: httpx.Client, host: str, repositories: Iterable[str]) -> dict[str, set[str]]:
    """The repositories in use by GitLab project, found by asking each path's longest prefix first (a project
    answers, anything else is a 404); a repository under no project the token sees keeps its own path as scope,
    whose reading then says so."""
    projects: set[str] = set()
    not_projects: set[str] = set()
    out: dict[str, set[str]] = {}
    for repository in sorted(set(repositories)):
        parts = repository.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(len(parts), 1, -1)]
        found = next((p for p in prefixes if p in projects), None)
        for prefix in prefixes if found is None else ():
            if prefix in not_projects:
                continue
            if get(client, _project_path(prefix), missing_ok=True) is not None:
                projects.add(prefix)
                found = prefix
                break
            not_projects.add(prefix)
        out.setdefault(found or repository, set()).add(repository)
    return out


class _Token(httpx.Auth):
    """GitLab's `PRIVATE-TOKEN` header; kept out of reprs and messages."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_Token(…)"

    def auth_flow(self, request):
        request.headers["PRIVATE-TOKEN"] = self._token
        yield request


def api_host(spec) -> str:
    """The host of `api=` (the registry's own by default): the pauses that hold for the reader are that host's."""
    return urlsplit(spec.option("api") or f"https://{spec.host}").netloc


def connect(spec, settings, keyring) -> httpx.Client:
    """GitLab's REST API at `api=` (default: the registry host), with the token read from `token_file=`."""
    path = spec.option("token_file")
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise PolicyError(f"token_file {path}: {exc.strerror or exc}", "forbidden") from None
    if not token:
        raise PolicyError(f"token_file {path}: empty", "forbidden")
    api = (spec.option("api") or f"https://{spec.host}").rstrip("/")
    return httpx.Client(base_url=api, auth=_Token(token), verify=tls_verification(settings, urlsplit(api).netloc),
                        timeout=settings.timeout, headers={"Accept": "application/json"})


def _tag(repository: str, raw: Any) -> Tag:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise PolicyError(f"{repository}: a tag without a name")
    return Tag(raw["name"], raw.get("digest") if isinstance(raw.get("digest"), str) else "",
               timestamp(raw.get("created_at")))


def read(client: httpx.Client, host: str, project: str, repositories: Iterable[str], now: float) -> Forecast:
    """The forecast of `project`'s cleanup policy for its registry repositories in use (full paths)."""
    policy_name = f"gitlab:{project}"
    found = get_json(client, _project_path(project), missing_ok=True)
    if found is None:
        raise PolicyError(f"{project}: no GitLab project at this path or a prefix of it that the token can see "
                          "(404)", "forbidden")
    if not isinstance(found, dict):
        raise PolicyError(f"GET {_project_path(project)}: not a project")
    raw = found.get("container_expiration_policy")
    if raw is None:
        if "container_registry_access_level" not in found and "container_registry_enabled" not in found:
            raise PolicyError(f"{project}: the token sees only the project's public details (a member with at "
                              "least the Reporter role reads its cleanup policy)", "forbidden")
        return Forecast(policy_name, host)  # no policy: nothing is deleted
    policy = parse_policy(raw)
    if not policy.enabled or policy.delete is None:
        return Forecast(policy_name, host, {}, policy.next_run if policy.enabled else None)
    when = max(now, policy.next_run or now)  # an overdue run happens as soon as GitLab's worker gets to it
    wanted = set(repositories)
    base = f"{_project_path(project)}/registry/repositories"
    listed = {r.get("path"): r.get("id") for r in _paged(client, base) if isinstance(r, dict)}
    deletes: dict[str, str] = {}
    for repository in sorted(wanted & set(listed)):
        tags_path = f"{base}/{listed[repository]}/tags"
        names = [t.get("name") for t in _paged(client, tags_path) if isinstance(t, dict)]
        tags = []
        for name in names:
            if not isinstance(name, str):
                raise PolicyError(f"GET {tags_path}: a tag without a name")
            details = get_json(client, f"{tags_path}/{quote(name, safe='')}", missing_ok=True)
            if details is not None:  # deleted since it was listed: GitLab skips a tag without a manifest too
                tags.append(_tag(repository, details))
        decided = evaluate(policy, tags, when)
        by_digest: dict[str, list[Tag]] = {}
        for tag in tags:
            if tag.digest:
                by_digest.setdefault(tag.digest, []).append(tag)
        untagged = [Artifact(repository, digest, tuple(t.name for t in same))
                    for digest, same in by_digest.items()
                    if all(t.name in decided and "may be deleted" not in decided[t.name] for t in same)]
        deletes.update(deletions(untagged, {f"{repository}@{a.digest}": decided[a.tags[0]] for a in untagged}))
        deletes.update((f"{repository}:{name}", rule) for name, rule in decided.items())
    return Forecast(policy_name, host, deletes, policy.next_run)
