"""Expected image lists, detected by content: plain text, a Sylva report, or a merged report.

Plain text holds one reference a line (`#` starts a comment). A report (single or merged) is JSON with
an `images` list, and `units_per_image` gives each image's units where present. Every image is
normalized; a line that is not a reference is reported with its line number and skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from exporter.images import InvalidReference, normalize


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
            rejected.append((text, problems[-1]))
    if not images and not problems:
        problems.append(f"{origin}: the list is empty")
    return ParsedList(images, problems, "text", rejected)


def _report(content: str, origin: str) -> ParsedList:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ListFormatError(f"{origin}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ListFormatError(f"{origin}: JSON without an 'images' list (not an image reference report)")
    units_per_image = data.get("units_per_image")
    units_per_image = units_per_image if isinstance(units_per_image, dict) else {}
    images: dict[str, frozenset[str]] = {}
    problems: list[str] = []
    rejected: list[tuple[str, str]] = []
    for index, image in enumerate(data["images"]):
        if not isinstance(image, str):
            problems.append(f"{origin} images[{index}]: not a string")
            rejected.append((json.dumps(image)[:100], problems[-1]))
            continue
        try:
            key = normalize(image)
        except InvalidReference as exc:
            problems.append(f"{origin} images[{index}]: {exc}")
            rejected.append((image, problems[-1]))
            continue
        units = units_per_image.get(image) or []
        images[key] = images.get(key, frozenset()) | frozenset(u for u in units if isinstance(u, str))
    return ParsedList(images, problems, "report", rejected)
