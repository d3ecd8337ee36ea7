"""Expected lists from files, directories, URLs and ConfigMaps: reloaded on change, last good content kept."""

import logging
import os

import pytest
from werkzeug import Response

from exporter.sources.expected import sources
from exporter.sources.expected.sources import ExpectedLists, SourceError, parse_spec

NGINX = "docker.io/library/nginx:1.27"
REDIS = "docker.io/library/redis:7"


@pytest.mark.parametrize(
    ("text", "kind", "location", "name", "key"),
    [
        ("lists/release.txt", "file", "lists/release.txt", "", ""),
        ("rel-1.4=lists/release.json", "file", "lists/release.json", "rel-1.4", ""),
        ("https://example.test/r.txt?a=b", "url", "https://example.test/r.txt?a=b", "", ""),
        ("r=http://example.test/x", "url", "http://example.test/x", "r", ""),
        ("HTTP://example.test/X.txt", "url", "http://example.test/X.txt", "", ""),  # schemes are case-insensitive
        ("r=Https://example.test/x", "url", "https://example.test/x", "r", ""),
        ("ConfigMap:flux/release", "configmap", "flux/release", "", ""),
        ("configmap:flux/release", "configmap", "flux/release", "", ""),
        ("x=configmap:flux/release/images.txt", "configmap", "flux/release", "x", "images.txt"),
    ],
)
def test_specs(text, kind, location, name, key):
    assert parse_spec(text) == sources.Spec(kind, location, name, key)


@pytest.mark.parametrize("text", ["configmap:onlyname", "configmap:a/b/c/d", "configmap:/b", "ftp://h/x", "FTP://h/x",
                                  "name="])
def test_bad_specs_are_named(text):
    with pytest.raises(SourceError, match="expected list"):
        parse_spec(text)


def test_url_credentials_never_shown():
    assert parse_spec("https://user:secret@example.test/r.txt").display == "https://example.test/r.txt"


def test_file_reloads_on_change_and_keeps_last_good_on_failure(tmp_path, caplog):
    path = tmp_path / "release.txt"
    path.write_text("nginx:1.27\n")
    lists = ExpectedLists.of([str(path)])
    lists.refresh()
    assert lists.lists == {"release": {NGINX: frozenset()}}

    path.write_text("nginx:1.27\nredis:7\n")
    lists.refresh()
    assert set(lists.lists["release"]) == {NGINX, REDIS}

    path.write_text('{"images": 3}')  # garbage: the last good content stays, an error is counted
    lists.refresh()
    [state] = lists.states.values()
    assert set(lists.lists["release"]) == {NGINX, REDIS}
    assert (state.up, state.errors) == (False, 1)
    assert "expected list release" in caplog.text and "keeping the last good content" in caplog.text

    path.write_text("")  # emptied (a truncated write, say): a failure too, never empty expectations
    lists.refresh()
    assert set(lists.lists["release"]) == {NGINX, REDIS} and state.errors == 2

    path.write_text("redis:7\n")
    lists.refresh()
    assert lists.lists == {"release": {REDIS: frozenset()}} and state.up


def test_unchanged_file_is_not_parsed_again(tmp_path, monkeypatch):
    path = tmp_path / "r.txt"
    path.write_text("nginx:1.27\n")
    lists = ExpectedLists.of([f"rel={path}"])
    lists.refresh()
    calls = []
    monkeypatch.setattr(sources, "parse_list", lambda *a: calls.append(a))
    lists.refresh()
    assert calls == [] and lists.lists == {"rel": {NGINX: frozenset()}}


def test_missing_file_is_an_error_with_no_list(tmp_path, caplog):
    lists = ExpectedLists.of([str(tmp_path / "absent.txt")])
    lists.refresh()
    [state] = lists.states.values()
    assert lists.lists == {} and (state.name, state.up, state.errors) == ("absent", False, 1)
    assert "No such file" in caplog.text


def test_directory_lists_follow_its_files(tmp_path):
    (tmp_path / "a.txt").write_text("nginx:1.27\n")
    (tmp_path / "b.json").write_text('{"images": ["redis:7"], "units_per_image": {"redis:7": ["cache"]}}')
    (tmp_path / ".hidden.txt").write_text("garbage here\n")
    (tmp_path / "notes.md").write_text("# not a list\n")
    lists = ExpectedLists.of([str(tmp_path)])
    lists.refresh()
    assert lists.lists == {"a": {NGINX: frozenset()}, "b": {REDIS: frozenset({"cache"})}}
    (tmp_path / "a.txt").unlink()
    (tmp_path / "c.list").write_text("nginx:1.27\n")
    lists.refresh()
    assert set(lists.lists) == {"b", "c"}


def test_url_conditional_get_and_failures(httpserver, caplog):
    caplog.set_level(logging.INFO)
    seen = []

    def handler(request):
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response("nginx:1.27\n", headers={"ETag": '"v1"'})

    httpserver.expect_request("/release.txt").respond_with_handler(handler)
    url = httpserver.url_for("/release.txt").replace("://", "://user:pw@")
    lists = ExpectedLists.of([url])
    lists.refresh()
    lists.refresh()
    assert seen == [None, '"v1"']
    assert lists.lists == {"release": {NGINX: frozenset()}}
    assert "pw" not in caplog.text

    httpserver.clear()
    httpserver.expect_request("/release.txt").respond_with_data("boom", status=500)
    lists.refresh()
    [state] = lists.states.values()
    assert lists.lists == {"release": {NGINX: frozenset()}} and not state.up and state.errors == 1
    assert "HTTP 500" in caplog.text


def test_url_larger_than_the_limit_is_refused(httpserver, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LIST_BYTES", 1000)
    httpserver.expect_request("/big").respond_with_data("nginx:1.27\n" * 1000)
    lists = ExpectedLists.of([httpserver.url_for("/big")])
    lists.refresh()
    [state] = lists.states.values()
    assert lists.lists == {} and state.errors == 1


def test_unreachable_url_is_an_error():
    lists = ExpectedLists.of(["http://127.0.0.1:9/r.txt"], timeout=2)
    lists.refresh()
    [state] = lists.states.values()
    assert (state.name, state.up, state.errors) == ("r", False, 1)


def configmap(version, data=None, binary=None):
    obj = {"metadata": {"name": "release", "namespace": "flux", "resourceVersion": version}}
    if data is not None:
        obj["data"] = data
    if binary is not None:
        obj["binaryData"] = binary
    return obj


def test_configmap_whole_or_one_key_reloaded_by_resource_version():
    store = {"flux/release": configmap("1", {"a.txt": "nginx:1.27\n", "b.txt": "redis:7\n"})}
    reads = []

    def read(namespace, name):
        reads.append(name)
        return store.get(f"{namespace}/{name}")

    lists = ExpectedLists.of(["configmap:flux/release", "only-b=configmap:flux/release/b.txt"], read_configmap=read)
    lists.refresh()
    assert lists.lists == {"release": {NGINX: frozenset(), REDIS: frozenset()}, "only-b": {REDIS: frozenset()}}

    store["flux/release"] = configmap("2", {"a.txt": "nginx:1.27\n"})
    lists.refresh()
    assert lists.lists["release"] == {NGINX: frozenset()}
    only_b = lists.states[("configmap:flux/release/b.txt", "only-b")]
    assert lists.lists["only-b"] == {REDIS: frozenset()} and not only_b.up  # key gone: last good kept

    del store["flux/release"]
    lists.refresh()
    assert set(lists.lists) == {"release", "only-b"} and all(not s.up for s in lists.states.values())
    assert len(reads) == 6


def test_configmap_binary_data_and_bad_base64():
    content = "bmdpbng6MS4yNwo="  # base64 of "nginx:1.27\n"
    lists = ExpectedLists.of(["configmap:flux/release"],
                             read_configmap=lambda ns, n: configmap("1", binary={"r.txt": content}))
    lists.refresh()
    assert lists.lists == {"release": {NGINX: frozenset()}}
    broken = ExpectedLists.of(["configmap:flux/release"],
                              read_configmap=lambda ns, n: configmap("1", binary={"r.txt": "%%%"}))
    broken.refresh()
    assert broken.lists == {} and next(iter(broken.states.values())).errors == 1


def test_configmap_without_a_cluster_is_an_error():
    lists = ExpectedLists.of(["configmap:flux/release"])
    lists.refresh()
    assert next(iter(lists.states.values())).errors == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable directories")
def test_unreadable_directory_keeps_its_lists(tmp_path):
    directory = tmp_path / "lists"
    directory.mkdir()
    (directory / "a.txt").write_text("nginx:1.27\n")
    lists = ExpectedLists.of([str(directory)])
    lists.refresh()
    directory.chmod(0)
    try:
        lists.refresh()
    finally:
        directory.chmod(0o755)
    assert lists.lists == {"a": {NGINX: frozenset()}}
    assert [(s.name, s.up) for s in lists.states.values()] == [("a", True), ("lists", False)]
