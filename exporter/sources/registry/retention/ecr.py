"""AWS ECR lifecycle policies, read through the AWS SDK and evaluated as AWS documents them (Amazon ECR User Guide:
"Lifecycle policy properties" `lifecycle_policy_parameters.html`, "How lifecycle policies work" and "Examples of
lifecycle policies" `lifecycle_policy_examples.html`; API Reference `GetLifecyclePolicy`, `DescribeImages`,
`GetLifecyclePolicyPreview`).

- A scope is one ECR repository (its whole path); its policy is `GetLifecyclePolicy`'s JSON text, its images
  `DescribeImages` (paged by `nextToken`, 1,000 a page): `imageTags`, `imagePushedAt`, `lastRecordedPullTime`,
  `imageStatus` (every status asked for: archived images have the storage class `archive`).
- Rules run in `rulePriority` order, lowest first. A rule's images are those of its `tagStatus` (`tagged` with every
  entry of `tagPatternList` (`*` wildcards) or `tagPrefixList` matching some tag of the image, `untagged`, `any`) and
  `storageClass` (`standard` unless said); of those it selects by `countType`: `imageCountMoreThan` (newest N by
  push time kept), `sinceImagePushed`, `sinceImagePulled` (never pulled: its push time), `sinceImageTransitioned`.
  An image is expired by at most one rule; an image a higher-priority rule's tag selection matched cannot be
  expired by a lower one, though lower rules still count it; an `any` rule must come last. `expire` deletes;
  `transition` moves to archive, after which pulls fail: both are forecast.
- ECR acts within 24 hours of an image meeting a rule, at no fixed time: no next run is known, and the forecast is
  what is expired by this time tomorrow (rules evaluated a day ahead).
- Where a finished `GetLifecyclePolicyPreview` of the very policy in force exists, the images it expires that are
  still there are added (`(ECR's preview)`): AWS's own verdict, never a guess. None is started (that writes).
Credentials are the SDK's default chain (environment, IRSA web identity on EKS, instance role); the region comes
from the registry host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`), `endpoint=URL` points the SDK elsewhere (tests).
boto3 is the `aws` extra: without it, `--retention-source ecr=…` is a usage error.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from exporter.model.retention import DAY, Artifact, Forecast, deletions
from exporter.sources.registry.retention import common
from exporter.sources.registry.retention.common import PolicyError

HOST = re.compile(r"^(?P<account>\d{12})\.(?:dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
                  r"|dkr-ecr(?:-fips)?\.(?P<region2>[a-z0-9-]+)\.on\.aws)$")
TAG_STATUSES = {"tagged", "untagged", "any"}
COUNT_TYPES = {"imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"}
STORAGE_CLASSES = {"standard", "archive"}
RULE_FIELDS = {"rulePriority", "description", "selection", "action"}
SELECTION_FIELDS = {"tagStatus", "tagPatternList", "tagPrefixList", "storageClass", "countType", "countUnit",
                    "countNumber"}
ACTION_FIELDS = {"type", "targetStorageClass"}
PAGE = 1000  # DescribeImages' maxResults ceiling
FORBIDDEN = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
             "ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch"}
THROTTLED = {"ThrottlingException", "TooManyRequestsException", "LimitExceededException", "RequestLimitExceeded"}


def region_of(host: str) -> tuple[str, str]:
    """(account, region) of an ECR registry host; ValueError for a host that is not one."""
    found = HOST.match(host)
    if not found:
        raise ValueError(f"{host!r} is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)")
    return found["account"], found["region"] or found["region2"]


def validate(spec) -> None:
    """A usage error, before anything runs, for an ECR source that cannot work: no AWS SDK, or not an ECR host."""
    if importlib.util.find_spec("boto3") is None:
        raise ValueError(f"{spec.name!r}: the ecr source needs the AWS SDK: pip install 'kube-image-exporter[aws]'")
    region_of(spec.host)
    endpoint = spec.option("endpoint")
    if endpoint and not re.match(r"^https?://[^/\s]+", endpoint):
        raise ValueError(f"{spec.name!r}: endpoint={endpoint!r} is not an http(s) URL")
    unknown = sorted({key for key, _ in spec.options} - {"endpoint"})
    if unknown:
        raise ValueError(f"{spec.name!r}: unknown option {unknown[0]!r} (known: endpoint)")


@dataclass(frozen=True, slots=True)
class Rule:
    priority: int
    tag_status: str
    patterns: tuple[str, ...]  # tagPatternList, or tagPrefixList as `prefix*`
    storage: str
    count_type: str
    count: int
    action: str  # expire | transition

    @property
    def label(self) -> str:
        what = {"imageCountMoreThan": f"more than {self.count} images",
                "sinceImagePushed": f"pushed over {self.count} days ago",
                "sinceImagePulled": f"not pulled for {self.count} days",
                "sinceImageTransitioned": f"archived over {self.count} days ago"}[self.count_type]
        return f"rule {self.priority}: {self.action} {self.tag_status} {what}"

    def matches(self, image: Artifact, storage: str) -> bool:
        """The rule's tag status, tag filter and storage class: what shields an image from lower rules."""
        if storage != self.storage:
            return False
        if self.tag_status == "untagged":
            return not image.tags
        if self.tag_status == "any":
            return True
        return bool(image.tags) and all(any(_wildcard(p).fullmatch(t) for t in image.tags) for p in self.patterns)


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def _number(rule: int, selection: dict) -> int:
    value = selection.get("countNumber")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"lifecycle rule {rule}: countNumber {value!r} is not a positive integer")
    return value


def parse_policy(text: Any) -> list[Rule]:
    """The rules of a lifecycle policy's JSON text, in priority order; PolicyError naming what is not AWS's."""
    try:
        body = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        raise PolicyError("lifecycle policy: not JSON with a list of rules")
    rules = []
    for index, raw in enumerate(body["rules"], 1):
        if not isinstance(raw, dict):
            raise PolicyError(f"lifecycle rule #{index}: not an object")
        priority = raw.get("rulePriority")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise PolicyError(f"lifecycle rule #{index}: rulePriority {priority!r} is not an integer")
        selection, action = raw.get("selection"), raw.get("action")
        if not isinstance(selection, dict) or not isinstance(action, dict):
            raise PolicyError(f"lifecycle rule {priority}: no selection or action")
        for fields, known, where in ((raw, RULE_FIELDS, "rule"), (selection, SELECTION_FIELDS, "selection"),
                                     (action, ACTION_FIELDS, "action")):
            unknown = sorted(set(fields) - known)
            if unknown:
                raise PolicyError(f"lifecycle rule {priority}: unknown {where} field {unknown[0]!r} (not evaluated)")
        status, count_type = selection.get("tagStatus"), selection.get("countType")
        if status not in TAG_STATUSES:
            raise PolicyError(f"lifecycle rule {priority}: unknown tagStatus {status!r}")
        if count_type not in COUNT_TYPES:
            raise PolicyError(f"lifecycle rule {priority}: unknown countType {count_type!r} "
                              f"(known: {', '.join(sorted(COUNT_TYPES))})")
        if count_type != "imageCountMoreThan" and selection.get("countUnit") != "days":
            raise PolicyError(f"lifecycle rule {priority}: countUnit {selection.get('countUnit')!r} is not 'days'")
        patterns = selection.get("tagPatternList")
        prefixes = selection.get("tagPrefixList")
        if patterns is not None and prefixes is not None:
            raise PolicyError(f"lifecycle rule {priority}: both tagPatternList and tagPrefixList")
        listed = patterns if patterns is not None else prefixes
        if status == "tagged" and (not isinstance(listed, list) or not listed
                                   or not all(isinstance(p, str) and p for p in listed)):
            raise PolicyError(f"lifecycle rule {priority}: a tagged rule needs a list of tag patterns or prefixes")
        if status != "tagged" and listed is not None:
            raise PolicyError(f"lifecycle rule {priority}: tag patterns on a {status!r} rule")
        listed = tuple(listed or ())
        if prefixes is not None:  # a prefix is a pattern ending in `*` (tags have no `*` of their own)
            listed = tuple(p + "*" for p in listed)
        storage = selection.get("storageClass", "archive" if count_type == "sinceImageTransitioned" else "standard")
        if storage not in STORAGE_CLASSES:
            raise PolicyError(f"lifecycle rule {priority}: unknown storageClass {storage!r}")
        kind = action.get("type")
        if kind not in ("expire", "transition"):
            raise PolicyError(f"lifecycle rule {priority}: unknown action type {kind!r} (known: expire, transition)")
        if kind == "transition" and action.get("targetStorageClass", "archive") != "archive":
            raise PolicyError(f"lifecycle rule {priority}: transition to {action.get('targetStorageClass')!r}")
        rules.append(Rule(priority, status, listed, storage, count_type, _number(priority, selection), kind))
    rules.sort(key=lambda r: r.priority)
    if len({r.priority for r in rules}) != len(rules):
        raise PolicyError("lifecycle policy: two rules share a rulePriority")
    if any(r.tag_status == "any" for r in rules[:-1]):
        raise PolicyError("lifecycle policy: a tagStatus 'any' rule is not the last (AWS requires it last)")
    return rules


@dataclass(frozen=True, slots=True)
class Image:
    artifact: Artifact
    storage: str = "standard"
    archived: float | None = None  # lastArchivedAt


def _selected(rule: Rule, matched: list[Image], when: float) -> list[Image]:
    if rule.count_type == "imageCountMoreThan":  # ties in push time are kept: no deletion on a guess
        times = [m.artifact.pushed or 0.0 for m in matched]
        return [m for m, t in zip(matched, times) if sum(1 for other in times if other > t) >= rule.count]
    since = when - rule.count * DAY
    if rule.count_type == "sinceImagePushed":
        return [m for m in matched if m.artifact.pushed is not None and m.artifact.pushed < since]
    if rule.count_type == "sinceImagePulled":
        return [m for m in matched if (m.artifact.pulled or m.artifact.pushed or when) < since]
    return [m for m in matched if m.archived is not None and m.archived < since]


def evaluate(rules: list[Rule], images: list[Image], when: float) -> dict[str, str]:
    """`repository@digest` → the rule expiring (or archiving) it at `when`."""
    decided: dict[str, str] = {}
    shielded: set[str] = set()
    for rule in rules:
        matched = [image for image in images if rule.matches(image.artifact, image.storage)]
        for image in _selected(rule, matched, when):
            key = f"{image.artifact.repository}@{image.artifact.digest}"
            if key not in decided and image.artifact.digest not in shielded:
                decided[key] = rule.label
        shielded |= {image.artifact.digest for image in matched}
    return decided


def scopes(repositories: Iterable[str]) -> dict[str, set[str]]:
    """Each repository in use is its own scope: ECR's policies are per repository."""
    return {repository: {repository} for repository in repositories}


@functools.lru_cache(maxsize=16)
def _client(region: str, endpoint: str, timeout: float):
    """One SDK client per region and endpoint, kept: building one costs tens of milliseconds, and it refreshes
    its own credentials (IRSA tokens, instance roles)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ecr", region_name=region, endpoint_url=endpoint or None,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "max_attempts": 3},
                      user_agent_extra="kube-image-exporter"))


def api_host(spec) -> str:
    """ECR's API endpoint (`api.ecr.REGION.amazonaws.com`, or `endpoint=`), not the registry host: a pull host that
    is paused (unreachable behind a mirror, throttling pulls) says nothing of the API's load, and the reverse."""
    endpoint = spec.option("endpoint")
    return urlsplit(endpoint).netloc if endpoint else f"api.ecr.{region_of(spec.host)[1]}.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Api:
    client: Any
    account: str


@contextlib.contextmanager
def connect(spec, settings, keyring) -> Iterator[Api]:
    """ECR's API in the registry's region, with the SDK's default credential chain."""
    account, region = region_of(spec.host)
    yield Api(_client(region, spec.option("endpoint"), float(settings.timeout)), account)


def _call(api: Api, operation: str, missing: tuple[str, ...] = (), **params) -> dict | None:
    """One API call; None for an error code in `missing`, PolicyError naming the call for any other failure (the
    SDK's messages carry no secrets)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    name = "".join(word.title() for word in operation.split("_"))  # the API's own name: DescribeImages
    try:
        return getattr(api.client, operation)(registryId=api.account, **params)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))[:300]
        if code in missing:
            return None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        reason = ("forbidden" if code in FORBIDDEN or status in (401, 403) else
                  "rate_limited" if code in THROTTLED or status == 429 else
                  "unreachable" if status >= 500 or code in ("ServerException",) else "invalid")
        raise PolicyError(f"{name} {params.get('repositoryName')}: {code or status}: {message}", reason) from None
    except NoCredentialsError:
        raise PolicyError(f"{name}: no AWS credentials found (the SDK's default chain: environment, web "
                          "identity (IRSA), instance role)", "forbidden") from None
    except BotoCoreError as exc:
        raise PolicyError(f"{name}: {type(exc).__name__}: {str(exc)[:200]}", "unreachable") from None
    except ValueError as exc:  # a field the SDK cannot parse (a timestamp that is none)
        raise PolicyError(f"{name} {params.get('repositoryName')}: an answer the SDK cannot read: {str(exc)[:200]}") from None


def _time(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
    raise PolicyError(f"DescribeImages: {field} {str(value)[:40]!r} is not a timestamp")


def _images(api: Api, repository: str) -> list[Image]:
    images, token = [], None
    for _ in range(common.MAX_PAGES):
        page = _call(api, "describe_images", repositoryName=repository, maxResults=PAGE,
                     filter={"tagStatus": "ANY", "imageStatus": "ANY"}, **({"nextToken": token} if token else {}))
        for raw in page.get("imageDetails") or ():
            if not isinstance(raw.get("imageDigest"), str):
                raise PolicyError(f"DescribeImages {repository}: an image without a digest")
            artifact = Artifact(repository, raw["imageDigest"], tuple(raw.get("imageTags") or ()),
                                _time(raw.get("imagePushedAt"), "imagePushedAt"),
                                _time(raw.get("lastRecordedPullTime"), "lastRecordedPullTime"))
            status = raw.get("imageStatus", "ACTIVE")
            images.append(Image(artifact, "standard" if status == "ACTIVE" else "archive",
                                _time(raw.get("lastArchivedAt"), "lastArchivedAt")))
        token = page.get("nextToken")
        if not token:
            return images
    raise PolicyError(f"DescribeImages {repository}: still more after {common.MAX_PAGES} pages of {PAGE}: not read")


def _preview(api: Api, repository: str, text: str, rules: list[Rule]) -> dict[str, str]:
    """What a finished preview of the policy in force expires (`digest` → rule); nothing where there is none, it is
    of another policy text, or it may not be read (it only confirms)."""
    found: dict[str, str] = {}
    labels = {rule.priority: rule.label for rule in rules}
    token = None
    for _ in range(common.MAX_PAGES):
        try:
            page = _call(api, "get_lifecycle_policy_preview", repositoryName=repository, maxResults=100,
                         **({"nextToken": token} if token else {}))
        except PolicyError:
            return {}
        if page is None or page.get("status") != "COMPLETE" or page.get("lifecyclePolicyText") != text:
            return {}
        for result in page.get("previewResults") or ():
            priority = result.get("appliedRulePriority")
            if isinstance(result.get("imageDigest"), str) and priority in labels:
                found[result["imageDigest"]] = f"{labels[priority]} (ECR's preview)"
        token = page.get("nextToken")
        if not token:
            return found
    return {}


def read(api: Api, host: str, repository: str, names: Iterable[str], now: float) -> Forecast:
    """The forecast of `repository`'s lifecycle policy: what is expired or archived by this time tomorrow."""
    policy = f"ecr:{repository}"
    found = _call(api, "get_lifecycle_policy", ("LifecyclePolicyNotFoundException", "RepositoryNotFoundException"),
                  repositoryName=repository)
    if found is None:
        return Forecast(policy, host)  # no policy (or no repository: the checks say absent): nothing is expired
    text = found.get("lifecyclePolicyText")
    rules = parse_policy(text)
    images = _images(api, repository)
    decided = evaluate(rules, images, now + DAY)
    present = {image.artifact.digest for image in images}
    for digest, rule in _preview(api, repository, text, rules).items():
        if digest in present:
            decided.setdefault(f"{repository}@{digest}", rule)
    return Forecast(policy, host, deletions((image.artifact for image in images), decided))
