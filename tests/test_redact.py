"""No credential in any output: the one redaction, the log records' tracebacks, and mirrors carrying credentials."""

import json
import logging
import subprocess
import sys

import pytest

from exporter.common import logs
from exporter.common.redact import redact, redact_image
from exporter.model.images import InvalidReference, normalize
from exporter.sources.registry.settings import from_options, parse_mirror

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("(https://u:canary@h/x)", "(https://h/x)"),  # the closing parenthesis stays the prose's
    ("see (https://h/x?token=canary).", "see (https://h/x?token=REDACTED)."),
    ("https://h/wiki/Thing_(x)?a=canary", "https://h/wiki/Thing_(x)?a=REDACTED"),  # a balanced one is the URL's
    ("mirror user:canary@host:5000/x failed", "mirror host:5000/x failed"),  # no scheme
    ("ftp://u:canary@h/x, then", "ftp://h/x, then"),
    (f"app:1.2@{DIGEST}", f"app:1.2@{DIGEST}"),  # an image pinned by digest is not user info
    (f"registry:5000/team/app:1.2@{DIGEST}", f"registry:5000/team/app:1.2@{DIGEST}"),
    ("git@github.com:org/repo", "git@github.com:org/repo"),  # no password: nothing to hide
])
def test_every_form_of_credential_is_redacted_and_nothing_else(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(("image", "expected"), [
    ("user:canary@registry.example/app:1", "REDACTED@registry.example/app:1"),
    ("https://u:canary@registry.example/app:1", "https://registry.example/app:1"),
    ("registry.example/app:1?token=canary", "registry.example/app:1?token=REDACTED"),
])
def test_an_image_holding_credentials_keeps_them_out_and_stays_invalid(image, expected):
    assert redact_image(image) == expected
    with pytest.raises(InvalidReference) as caught:
        normalize(image)
    assert "canary" not in str(caught.value)
    with pytest.raises(InvalidReference):
        normalize(redact_image(image))  # never taken for the image it would name without its user info


@pytest.mark.parametrize("image", ["busybox", "registry:5000/team/app:1.2", f"app:1.2@{DIGEST}",
                                   f"registry:5000/team/app@{DIGEST}", "a.example/b/c:v1-rc.2"])
def test_a_valid_image_is_left_as_written(image):
    assert redact_image(image) == image


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_traceback_carrying_a_url_with_a_password_is_redacted(fmt):
    """`log.exception` renders the exception's text, where a client library may have put the whole URL."""
    code = f"""
import logging
from exporter.common import logs
logs.configure("info", {fmt!r})
log = logging.getLogger("exporter.test")
try:
    raise ConnectionError("cannot reach https://user:canary-tb@registry.example/v2/ (token=x)")
except ConnectionError:
    log.exception("check failed")
log.warning("stack", stack_info=True, extra={{}})
try:
    raise ValueError("bare user:canary-bare@mirror.example")
except ValueError as exc:
    log.error("failed", exc_info=exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "canary" not in done.stderr
    assert "ConnectionError: cannot reach https://registry.example/v2/ (token=x)" in done.stderr.replace('\\n', '\n')
    assert "Traceback" in done.stderr
    if fmt == "json":
        records = [json.loads(line) for line in done.stderr.splitlines()]
        assert [r["message"] for r in records] == ["check failed", "stack", "failed"]
        assert "ValueError: bare mirror.example" in records[2]["exc_info"]


def test_a_record_seen_by_two_handlers_is_redacted_for_both(caplog):
    logs.configure("info", "text")
    caplog.handler.addFilter(logs.RedactFilter())
    try:
        raise OSError("https://u:canary-2@h/x")
    except OSError:
        logging.getLogger("exporter.test").exception("x")
    assert "canary-2" not in caplog.text and "https://h/x" in caplog.text


@pytest.mark.parametrize("mirror", ["docker.io=user:canary@mirror.example", "docker.io=https://u:canary@mirror.example",
                                    "docker.io=mirror.example/v2?token=canary"])
def test_a_mirror_carrying_credentials_is_refused_without_repeating_them(mirror):
    with pytest.raises(ValueError, match="docker config") as caught:
        parse_mirror(mirror)
    assert "canary" not in str(caught.value)
    with pytest.raises(ValueError):
        from_options(hosts={"docker.io": {"mirrors": [mirror.partition("=")[2]]}})


def test_a_mirror_on_the_command_line_with_credentials_exits_2_without_echoing_them():
    done = subprocess.run([sys.executable, "-m", "exporter", "check", "--registry-mirror",
                           "docker.io=user:canary@mirror.example", "busybox:1.36"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "canary" not in done.stderr + done.stdout
    assert "carries credentials" in done.stderr and len(done.stderr.strip().splitlines()) <= 2


def test_a_kubeconfig_exec_plugins_stderr_is_dropped_from_the_clients_error():
    """The kubernetes client ends its error with the plugin's stderr (a cloud CLI may print a token there)."""
    message = "exec: process returned 1. error: token CANARY-STDERR expired\nfor account CANARY-ACCOUNT"
    assert redact(message) == "exec: process returned 1 (its stderr is not shown: it may hold credentials)"
    assert redact("exec: process returned 1") == "exec: process returned 1"  # nothing on stderr: as it is


def test_a_python_warning_quoting_a_url_is_logged_redacted():
    """Libraries warn through `warnings` (urllib3 on unverified TLS), which writes to stderr past every handler."""
    code = """
import warnings
from exporter.common import logs
logs.configure("info", "text")
warnings.warn("cannot reach https://u:canary-warn@registry.example/v2/")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "canary-warn" not in done.stderr and "cannot reach https://registry.example/v2/" in done.stderr
