"""Expected image lists, detected by content: plain text, a Sylva report, or a merged report.

Plain text holds one reference a line (`#` starts a comment). A report (single or merged) is JSON with
an `images` list of strings, and `units_per_image` maps an image to its list of unit names where present.
The JSON is checked against that shape (`ReportShape`) before anything is read from it: a value of
another type anywhere makes the whole list a `ListFormatError` naming where, never a crash or a unit
split into characters. `merge` checks its inputs and its output against the same shape, so what it writes
`check --file` reads. JSON nested deeper than `MAX_DEPTH` is refused before it is parsed.
Every image is normalized; a line that is not a reference is reported with its line number and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from exporter.common.files import ReadError, check_json_depth
from exporter.common.redact import redact_image
from exporter.model.images import InvalidReference, normalize


class ListFormatError(ValueError):
    """Content that is no expected list at all (JSON of another shape, binary data)."""


@dataclass(frozen=True)
class ParsedList:
    images: dict[str, frozenset[str]]  # normalized image -> units (empty when unknown)
    problems: list[str] = field(default_factory=list)
    format: str = "text"  # text | report
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (entry as written, its problem): `check` rows


def parse_list(content: str | bytes, origin: str) -> ParsedList:
    """Parse a list, whatever its format; ListFormatError when the content is none of them."""
    if isinstance(content, bytes):
        try:
            content = content.decode()
        except UnicodeDecodeError:
            raise ListFormatError(f"{origin}: not text") from None
    stripped = content.lstrip()
    if stripped.startswith("{"):
        return _report(content, origin)
    return _text(content, origin)


def _text(content: str, origin: str) -> ParsedList:
    images: dict[str, frozenset[str]] = {}
    problems: list[str] = []
    rejected: list[tuple[str, str]] = []
    for number, line in enumerate(content.splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            images[normalize(text)] = frozenset()
        except InvalidReference as exc:
            problems.append(f"{origin} line {number}: {exc}")
            rejected.append((redact_image(text), problems[-1]))
    if not images and not problems:
        problems.append(f"{origin}: the list is empty")
    return ParsedList(images, problems, "text", rejected)


class ReportShape(BaseModel):
    """The parts of an image reference report (single or merged) that a list is made of; other keys are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    images: list[str]
    units_per_image: dict[str, list[str]] = {}


def check_report(data: object, origin: str) -> ReportShape:
    """The report's shape when `data` (parsed JSON) is an image reference report; ListFormatError naming where it
    is not. The one schema of reports: what `check --file` and `serve --expected` read, what `merge` takes and
    writes."""
    if not isinstance(data, dict) or "images" not in data:
        raise ListFormatError(f"{origin}: JSON without an 'images' list (not an image reference report)")
    try:
        return ReportShape.model_validate(data)
    except ValidationError as exc:
        raise ListFormatError(f"{origin}: not an image reference report: {_first_error(exc)}") from None


def _report(content: str, origin: str) -> ParsedList:
    try:
        check_json_depth(content)
        data = orjson.loads(content)
    except ReadError as exc:
        raise ListFormatError(f"{origin}: not JSON ({exc})") from None
    except orjson.JSONDecodeError as exc:
        raise ListFormatError(f"{origin}: not JSON ({exc})") from None
    report = check_report(data, origin)
    images: dict[str, frozenset[str]] = {}
    problems: list[str] = []
    rejected: list[tuple[str, str]] = []
    for index, image in enumerate(report.images):
        try:
            key = normalize(image)
        except InvalidReference as exc:
            problems.append(f"{origin} images[{index}]: {exc}")
            rejected.append((redact_image(image), problems[-1]))
            continue
        images[key] = images.get(key, frozenset()) | frozenset(report.units_per_image.get(image, ()))
    return ParsedList(images, problems, "report", rejected)


def _first_error(exc: ValidationError) -> str:
    """pydantic's first complaint as `where: what`, and how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'the document'}: {first['msg']}{more}"
