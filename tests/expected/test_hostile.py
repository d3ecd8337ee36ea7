"""Hostile and broken expected lists: each is marked down with its reason, keeps its last good content,
and never raises out of `refresh` (which would stop the serve cycle for every other source)."""

import logging
import os
import threading

import pytest
from werkzeug import Response

from exporter.common.files import MAX_LIST_BYTES, ReadError, read_file
from exporter.common.logs import configure
from exporter.sources.expected import sources
from exporter.sources.expected.formats import ListFormatError, parse_list
from exporter.sources.expected.sources import ExpectedLists

NGINX = "docker.io/library/nginx:1"


@pytest.mark.parametrize(("content", "where"), [
    ('{"images":["nginx:1"],"units_per_image":{"nginx:1":5}}', "units_per_image.nginx:1: Input should be a valid list"),
    ('{"images":["nginx:1"],"units_per_image":{"nginx:1":"myunit"}}', "units_per_image.nginx:1: Input should be a valid list"),
    ('{"images":[1,"nginx:1"]}', "images[0]: Input should be a valid string"),
    ('{"images":"nginx:1"}', "images: Input should be a valid list"),
    ('{"units_per_image":{}}', "JSON without an 'images' list"),
])
def test_report_of_the_wrong_shape_is_refused_naming_where(content, where):
    with pytest.raises(ListFormatError, match="not an image reference report") as caught:
        parse_list(content, "l.json")
    assert where in str(caught.value)


def test_json_nested_5000_deep_is_refused_not_a_recursion_error():
    with pytest.raises(ListFormatError, match="not JSON"):
        parse_list("{" + '"a":[' * 5000 + "]" * 5000 + "}", "deep.json")


def test_a_unit_is_never_split_into_characters():
    parsed = parse_list('{"images":["nginx:1"],"units_per_image":{"nginx:1":["myunit"]}}', "l.json")
    assert parsed.images == {NGINX: frozenset({"myunit"})}


def test_devices_and_fifos_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):
        with pytest.raises(ReadError, match="not a regular file"):
            read_file(path, MAX_LIST_BYTES)
    lists = ExpectedLists.of(["zero=/dev/zero", str(fifo)])
    lists.refresh()
    assert {s.name: (s.up, s.last_error) for s in lists.states.values()} == {
        "zero": (False, "not a regular file (FIFOs, devices and sockets are never read)"),
        "fifo": (False, "not a regular file (FIFOs, devices and sockets are never read)"),
    }


def test_file_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("nginx:1\n" * 200)
    with pytest.raises(ReadError, match="larger than 1000 bytes"):
        read_file(path, 1000)


def test_list_edited_into_a_bad_shape_keeps_its_last_good_content(tmp_path):
    path = tmp_path / "l.json"
    path.write_text('{"images":["nginx:1"],"units_per_image":{"nginx:1":5}}')
    lists = ExpectedLists.of([str(path)])
    lists.refresh()  # bad at start-up: down, no content, no exception
    [state] = lists.states.values()
    assert (lists.lists, state.up, state.errors) == ({}, False, 1)
    assert "units_per_image.nginx:1" in state.last_error

    path.write_text('{"images":["nginx:1"],"units_per_image":{"nginx:1":["web"]}}')
    lists.refresh()
    assert lists.lists == {"l": {NGINX: frozenset({"web"})}} and state.up and state.last_error == ""

    path.write_text('{"images":["nginx:1"],"units_per_image":{"nginx:1":5}}  ')
    lists.refresh()
    assert lists.lists == {"l": {NGINX: frozenset({"web"})}} and not state.up and state.errors == 2


def test_an_unforeseen_failure_of_one_source_is_contained(tmp_path, monkeypatch):
    good = tmp_path / "good.txt"
    good.write_text("nginx:1\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("redis:7\n")
    real = sources.parse_list

    def parse(content, origin):
        if origin.endswith("bad.txt"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(content, origin)

    monkeypatch.setattr(sources, "parse_list", parse)
    lists = ExpectedLists.of([str(bad), str(good)])
    lists.refresh()
    assert lists.lists == {"good": {NGINX: frozenset()}}
    assert lists.states[(str(bad), "bad")].last_error == "RecursionError: maximum recursion depth exceeded"


def test_url_read_under_a_deadline_in_all(httpserver):
    release = threading.Event()

    def drip():
        for _ in range(100):
            yield b"# still coming\n"
            release.wait(0.1)

    httpserver.expect_request("/slow.txt").respond_with_handler(lambda request: Response(drip()))
    lists = ExpectedLists.of([httpserver.url_for("/slow.txt")], timeout=1)
    lists.refresh()
    release.set()
    [state] = lists.states.values()
    assert not state.up and state.last_error == "not read within 1s"


CANARY = "S3cr3t@PW-canary"


def canary_lists(httpserver):
    """Lists whose URLs carry the canary as a password (with a raw `@`) and as query tokens; one found, one 404."""
    httpserver.expect_request("/at.txt").respond_with_data("nginx:1\n")
    httpserver.expect_request("/gone.txt").respond_with_data("", status=404)
    base = httpserver.url_for("/").rstrip("/")
    with_password = base.replace("://", f"://user:{CANARY}@")
    return ExpectedLists.of([f"{with_password}/at.txt", f"{with_password}/gone.txt",
                             f"{base}/at.txt?access_token={CANARY}", f"q={base}/gone.txt?access_token={CANARY}"]), base


def test_credentials_in_list_urls_never_reach_a_log_at_any_level(httpserver, caplog):
    configure("debug")  # what `serve --log-level debug` sets up: the HTTP client's request lines included
    caplog.set_level(logging.DEBUG)
    lists, _ = canary_lists(httpserver)
    for _ in range(2):
        lists.refresh()
    assert [request.authorization.password for request, _ in httpserver.log[:1]] == [CANARY]  # sent, as auth
    assert caplog.records and "not loaded" in caplog.text and "loaded from" in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")  # not the test server's
    assert "HTTP Request: GET" in ours and "access_token=REDACTED" in ours
    assert CANARY not in ours and "S3cr3t" not in ours
    for state in lists.states.values():
        assert "S3cr3t" not in state.source + state.last_error + state.name


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_the_canary_never_reaches_the_log_output(httpserver, capsys, level, fmt):
    """What the exporter's own log handler writes, at every level and in both formats."""
    configure(level, fmt)
    try:
        lists, base = canary_lists(httpserver)
        lists.refresh()
        logging.getLogger("exporter.test").error("failed for url %s", f"{base}/x?access_token={CANARY}")
        err = capsys.readouterr().err
        ours = "\n".join(line for line in err.splitlines() if "werkzeug" not in line)
        assert "not loaded" in ours and "failed for url" in ours
        assert "S3cr3t" not in ours
    finally:
        configure("info", "text")
