"""A real browser for the tests: Debian's headless chromium (installed by scripts/setup), one fresh profile a run.

`dump_dom` gives the DOM after the page loaded and ran whatever it would run; `screenshot` a PNG of what a
person sees; `Text` reads a page or a DOM as a person does (text only, cells apart). Nothing leaves the
machine: background networking, updates, sync and QUIC are off.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def _run(*args: str, timeout: float = 60.0) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        command = [CHROMIUM if Path(CHROMIUM).exists() else "chromium", "--headless", "--no-sandbox",
                   "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str) -> str:
    """The serialized DOM of `url` once loaded (scripts, had any run, would have changed it)."""
    return _run("--dump-dom", url)


def screenshot(url: str, path: Path, width: int = 1280, height: int = 2000) -> tuple[int, int]:
    """Save a PNG of `url` at `path`; its (width, height) as the PNG header says."""
    _run(f"--screenshot={path}", f"--window-size={width},{height}", url)
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"{path} is not a PNG")
    return struct.unpack(">II", data[16:24])


BLOCKS = {"td", "th", "tr", "h1", "h2", "h3", "h4", "p", "br", "section", "header", "footer", "nav", "a", "table"}


class Text(HTMLParser):
    """What a person reads: the page's text, tag-free, one string; and the tags it holds."""

    def __init__(self, body: bytes | str):
        super().__init__()
        self.parts, self.tags, self.attrs = [], [], []
        self.feed(body.decode() if isinstance(body, bytes) else body)
        self.text = re.sub(r"\s+", " ", "".join(self.parts)).strip()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag in BLOCKS:
            self.parts.append(" ")  # cells and headings read apart, as a browser lays them out

    def handle_data(self, data):
        if self.lasttag not in ("style", "title"):
            self.parts.append(data)
