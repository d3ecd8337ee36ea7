"""Harbor 2.x tag retention, read from Harbor's API and evaluated as Harbor evaluates it (goharbor/harbor
`src/pkg/retention`: policy, rule templates, doublestar selectors; `src/lib/selector`).

- A project's policy: `GET /api/v2.0/projects/{name}` → `metadata.retention_id` → `GET /api/v2.0/retentions/{id}`;
  its schedule is the trigger's cron (six fields, seconds first, UTC).
- Rules are ORed. Each enabled rule selects repositories (`repoMatches` / `repoExcludes`, doublestar, the name
  without the project) and, in them, artifacts by their tags (`matches`: any tag matches, `excludes`: any tag does
  not; untagged artifacts only with the `untagged` extra), then retains some by its template: `always`,
  `latestPushedK`, `latestPulledN`, `nDaysSinceLastPush`, `nDaysSinceLastPull`. In a repository some rule selects,
  every artifact no rule retains is deleted, all its tags with it; a repository no rule selects is untouched.
- An artifact's push and pull times are the latest of its own and its tags'. Pull times may be switched off
  server-side (all zero): `latestPulledN` then ranks ties, which Harbor orders arbitrarily, so only what would be
  deleted whatever the order is forecast.
- The forecast is evaluated at the next run's time: `nDaysSince…` ages until then.
Artifacts are read only for the repositories in use (`GET …/repositories/{r}/artifacts?with_tag=true`, 100 a
page); a ranking template needs them all, and they are all read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from wcmatch import glob

from exporter.model.retention import DAY, Artifact, Forecast, deletions
from exporter.sources.registry.retention.common import (
    PolicyError, cron_next, get_json, pages, registry_api, timestamp,
)

TEMPLATES = {"always", "latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull"}
_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTMATCH


def _match(pattern: str, value: str) -> bool:
    """bmatcuk/doublestar's matching, as Harbor's selectors use it: `*` within a path segment, `**` across."""
    return glob.globmatch(value, pattern, flags=_FLAGS)


@dataclass(frozen=True, slots=True)
class Rule:
    index: int  # 1-based, as Harbor's UI numbers them
    template: str
    param: float
    repositories: tuple[tuple[str, str], ...]  # (repoMatches | repoExcludes, pattern)
    tags: tuple[tuple[str, str, bool], ...]  # (matches | excludes, pattern, untagged too)

    @property
    def label(self) -> str:
        return f"rule {self.index}: {self.template}" + ("" if self.template == "always" else f" {self.param:g}")

    def selects_repository(self, name: str) -> bool:
        return all(_match(pattern, name) == (decoration == "repoMatches") for decoration, pattern in self.repositories)

    def selects(self, artifact: Artifact) -> bool:
        for decoration, pattern, untagged in self.tags:
            if not artifact.tags:
                if not untagged:
                    return False
                continue
            matched = [_match(pattern, tag) for tag in artifact.tags]
            if not (any(matched) if decoration == "matches" else not all(matched)):
                return False
        return True


def parse_policy(body: Any) -> tuple[list[Rule], str | None]:
    """(enabled rules, schedule cron or None) of `GET /retentions/{id}`; PolicyError naming what is not Harbor's."""
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        raise PolicyError("retention policy: not a Harbor policy (no rules)")
    if str(body.get("algorithm") or "or") != "or":
        raise PolicyError(f"retention policy: algorithm {body.get('algorithm')!r} is not Harbor's 'or'")
    rules = []
    for index, raw in enumerate(body["rules"], 1):
        if not isinstance(raw, dict):
            raise PolicyError(f"retention rule {index}: not an object")
        if raw.get("disabled"):
            continue
        template = raw.get("template")
        if template not in TEMPLATES:
            raise PolicyError(f"retention rule {index}: unknown template {template!r} (known: {', '.join(sorted(TEMPLATES))})")
        params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
        param = params.get(template, 0)
        if template != "always" and (isinstance(param, bool) or not isinstance(param, (int, float)) or param < 0):
            raise PolicyError(f"retention rule {index}: {template} needs a number, got {param!r}")
        scope = raw.get("scope_selectors") if isinstance(raw.get("scope_selectors"), dict) else {}
        repositories = tuple((s.get("decoration", "repoMatches"), str(s.get("pattern", "**")))
                             for s in scope.get("repository") or () if isinstance(s, dict))
        tags = []
        for selector in raw.get("tag_selectors") or ():
            if not isinstance(selector, dict):
                continue
            try:
                extras = json.loads(selector.get("extras") or "{}")
            except ValueError:
                extras = {}
            tags.append((selector.get("decoration", "matches"), str(selector.get("pattern", "**")),
                         bool(isinstance(extras, dict) and extras.get("untagged"))))
        rules.append(Rule(index, template, float(param or 0), repositories, tuple(tags)))
    trigger = body.get("trigger") if isinstance(body.get("trigger"), dict) else {}
    settings = trigger.get("settings") if isinstance(trigger.get("settings"), dict) else {}
    cron = settings.get("cron") if trigger.get("kind") == "Schedule" else None
    return rules, cron if isinstance(cron, str) and cron.strip() else None


def _latest(candidates: list[Artifact], count: float, key: Callable[[Artifact], float | None]) -> set[str]:
    """The digests a "latest N by time" template surely keeps or may keep: all but those at least N others are
    strictly later than (ties Harbor orders arbitrarily are kept: no deletion is forecast on a guess)."""
    times = [key(a) or 0.0 for a in candidates]
    return {a.digest for a, t in zip(candidates, times) if sum(1 for other in times if other > t) < count}


def _retained(rule: Rule, candidates: list[Artifact], when: float) -> set[str]:
    if rule.template == "always":
        return {a.digest for a in candidates}
    if rule.template == "latestPushedK":
        return _latest(candidates, rule.param, lambda a: a.pushed)
    if rule.template == "latestPulledN":
        return _latest(candidates, rule.param, lambda a: a.pulled)
    since = when - rule.param * DAY
    if rule.template == "nDaysSinceLastPush":
        return {a.digest for a in candidates if a.pushed is not None and a.pushed >= since}
    return {a.digest for a in candidates if a.pulled is not None and a.pulled >= since}


def evaluate(rules: list[Rule], repositories: Mapping[str, list[Artifact]], when: float) -> dict[str, str]:
    """`repository@digest` → the rule deciding its deletion, for what the run at `when` deletes. `repositories`
    maps a name without the project to its artifacts (whose `repository` is the full name)."""
    decided: dict[str, str] = {}
    for name, artifacts in repositories.items():
        governing = [rule for rule in rules if rule.selects_repository(name)]
        if not governing:
            continue  # no rule selects the repository: untouched
        kept: set[str] = set()
        selected_by: dict[str, Rule] = {}
        for rule in governing:
            candidates = [a for a in artifacts if rule.selects(a)]
            for artifact in candidates:
                selected_by.setdefault(artifact.digest, rule)
            kept |= _retained(rule, candidates, when)
        for artifact in artifacts:
            if artifact.digest not in kept:
                rule = selected_by.get(artifact.digest)
                decided[f"{artifact.repository}@{artifact.digest}"] = (
                    f"{rule.label} (not among those kept)" if rule else "no rule selects its tags")
    return decided


def _artifact(project: str, repository: str, raw: Any) -> Artifact:
    if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str):
        raise PolicyError(f"{project}/{repository}: an artifact without a digest")
    tags = [t for t in raw.get("tags") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
    pushed = [timestamp(raw.get("push_time")), *(timestamp(t.get("push_time")) for t in tags)]
    pulled = [timestamp(raw.get("pull_time")), *(timestamp(t.get("pull_time")) for t in tags)]
    return Artifact(f"{project}/{repository}", raw["digest"], tuple(t["name"] for t in tags),
                    max((t for t in pushed if t is not None), default=None),
                    max((t for t in pulled if t is not None), default=None))


def scopes(repositories: Iterable[str]) -> dict[str, set[str]]:
    """The repositories in use by Harbor project (their first path segment), named without the project."""
    out: dict[str, set[str]] = {}
    for repository in repositories:
        project, _, name = repository.partition("/")
        if name:
            out.setdefault(project, set()).add(name)
    return out


def api_host(spec) -> str:
    """Harbor's API is the registry host's: the checks' pauses of that host hold for it."""
    return spec.host


def connect(spec, settings, keyring):
    """Harbor's API on the registry host, with the registry's credentials (a robot account)."""
    return registry_api(spec.host, settings, keyring)


def read(client, host: str, project: str, repositories: Iterable[str], now: float) -> Forecast:
    """The forecast of `project`'s policy for the repositories in use (names without the project)."""
    policy = f"harbor:{project}"
    found = get_json(client, f"/api/v2.0/projects/{quote(project, safe='')}")
    metadata = found.get("metadata") if isinstance(found, dict) and isinstance(found.get("metadata"), dict) else {}
    retention = metadata.get("retention_id")
    if not retention:
        return Forecast(policy, host)  # no policy: nothing is deleted
    rules, cron = parse_policy(get_json(client, f"/api/v2.0/retentions/{quote(str(retention), safe='')}"))
    next_run = cron_next(cron, now, seconds_first=True) if cron else None
    names = {name for name in repositories if any(rule.selects_repository(name) for rule in rules)}
    artifacts = {}
    for name in sorted(names):
        path = (f"/api/v2.0/projects/{quote(project, safe='')}/repositories/"
                f"{quote(quote(name, safe=''), safe='')}/artifacts")  # a slash in a name is encoded twice
        artifacts[name] = [_artifact(project, name, raw)
                           for raw in pages(client, path, {"with_tag": "true"}, page_size=100)]
    decided = evaluate(rules, artifacts, next_run or now)
    return Forecast(policy, host, deletions((a for listed in artifacts.values() for a in listed), decided), next_run)
