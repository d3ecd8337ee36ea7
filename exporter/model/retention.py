"""Retention forecasts: what a registry's cleanup policy will delete at its next run, as plain data.

A source (exporter.sources.registry.retention) reads a policy and the artifacts it governs and evaluates it the way
its registry does; what it hands over is a `Forecast`: the artifacts the next run deletes, each with the rule that
decides it, and when that run is. The join matches the images in use against forecasts (`at_risk`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Artifact:
    """One manifest of a repository as a registry's API lists it: its tags, and when it was pushed and last pulled
    (Unix times; None: never, or not recorded)."""

    repository: str  # as image references name it on the registry host (`library/nginx`)
    digest: str
    tags: tuple[str, ...] = ()
    pushed: float | None = None
    pulled: float | None = None


@dataclass(frozen=True, slots=True)
class Forecast:
    """What one policy's next run deletes, on `host`: `deletes` maps `repository@digest` and each of its
    `repository:tag` to the rule that decides it."""

    policy: str  # `harbor:library`, `gitlab:group/project`, `ecr:repository`
    host: str  # the registry host, as image references name it
    deletes: Mapping[str, str] = field(default_factory=dict)
    next_run: float | None = None  # Unix time, where the schedule is known


def deletions(artifacts: Iterable[Artifact], rules: Mapping[str, str]) -> dict[str, str]:
    """`deletes` of a Forecast: each deleted artifact (by `repository@digest`) with its rule, and each of its tags."""
    out = {}
    for artifact in artifacts:
        rule = rules.get(f"{artifact.repository}@{artifact.digest}")
        if rule is not None:
            out[f"{artifact.repository}@{artifact.digest}"] = rule
            out.update((f"{artifact.repository}:{tag}", rule) for tag in artifact.tags)
    return out


def at_risk(host: str, repository: str, tag: str | None, digests: Iterable[str],
            forecasts: Iterable[Forecast]) -> list[tuple[str, str]]:
    """(policy, rule) of each forecast whose next run deletes this image: its tag, or a digest it runs or pins."""
    found = []
    for forecast in forecasts:
        if forecast.host != host:
            continue
        keys = [f"{repository}:{tag}"] if tag else []
        keys += [f"{repository}@{digest}" for digest in digests if digest]
        for key in keys:
            if key in forecast.deletes:
                found.append((forecast.policy, forecast.deletes[key]))
                break
    return found
