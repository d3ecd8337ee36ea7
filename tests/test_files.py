"""The one bounded read of a user's file, and the one bounded parse of JSON, YAML and TOML."""

import json
import os

import pytest

from exporter.common.files import (
    FileProblem,
    ReadError,
    TooDeep,
    check_json_depth,
    parse_json,
    parse_toml,
    parse_yaml,
    read_bounded,
    read_file,
    read_json,
    read_yaml,
)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "list"
    os.mkfifo(fifo)
    with pytest.raises(FileProblem, match=f"cannot read list {fifo}: not a regular file"):
        read_bounded(fifo, "list")  # no writer: a blocking open would never return


def test_devices_are_refused_unread():
    for device in ("/dev/zero", "/dev/urandom"):
        with pytest.raises(ReadError, match="not a regular file"):
            read_file(device, 1000)


def test_a_regular_file_comes_with_its_stat_and_a_directory_is_refused(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("nginx:1\n")
    info, content = read_file(path, 100)
    assert (content, info.st_size) == (b"nginx:1\n", 8)
    with pytest.raises(FileProblem, match=f"list {path}: larger than 4 bytes, the most it may hold"):
        read_bounded(path, "list", 4)
    with pytest.raises(FileProblem, match=f"cannot read list {tmp_path}: a directory, not a file"):
        read_bounded(tmp_path, "list")


@pytest.mark.parametrize("depth, deep", [(1, False), (100, False), (101, True), (100_000, True)])
def test_json_depth_is_checked_without_recursion(depth, deep):
    document = '{"a": ' * (depth - 1) + '["x", "]]}}", "\\\\", "\\"["]' + "}" * (depth - 1)
    if deep:
        with pytest.raises(TooDeep, match="nested deeper than 100 levels"):
            parse_json(document)
    else:
        assert parse_json(document) == json.loads(document)


def test_brackets_in_strings_and_broken_json_are_left_to_the_parser():
    check_json_depth('["' + "[" * 500 + '"]')  # inside a string: no depth
    check_json_depth("[" * 500)  # unbalanced: not JSON, which the parser says with its place
    with pytest.raises(ReadError, match=r"not JSON") as caught:
        parse_json("[" * 500)
    assert caught.value.mark[0] == 1


@pytest.mark.parametrize("strings", ['"", ""', '"[", "]"', '"a[", "", "["', '"\\"[", "]\\""', '"]]]", "[[["'])
def test_strings_side_by_side_with_or_without_brackets_add_no_depth(strings):
    for depth, deep in ((100, False), (101, True)):
        document = "[" * (depth - 1) + f"[{strings}]" + "]" * (depth - 1)
        if deep:
            with pytest.raises(TooDeep):
                check_json_depth(document)
        else:
            check_json_depth(document)
            assert parse_json(document) == json.loads(document)


def test_yaml_depth_and_alias_cycles_are_refused_before_recursion():
    assert parse_yaml("- " * 100 + "x") is not None
    for text in ("- " * 101 + "x", "[" * 100_000, "a: " + "{b: " * 5000):
        with pytest.raises(TooDeep):
            parse_yaml(text)
    with pytest.raises(ReadError, match=r"the alias \*a refers to a collection that holds it"):
        parse_yaml("a: &a [1, *a]\n")
    assert parse_yaml("a: &a [1]\nb: *a\n") == {"a": [1], "b": [1]}  # anchors themselves are fine


def test_toml_depth_is_bounded():
    assert parse_toml("a = [[1]]") == {"a": [[1]]}
    for text in ("a = " + "[" * 100_000 + "]" * 100_000, "a = " + "[" * 101 + "]" * 101):
        with pytest.raises(TooDeep):
            parse_toml(text)


def test_named_files_say_what_where_and_line(tmp_path):
    broken = tmp_path / "c.yaml"
    broken.write_text("a: 1\nb: [\n")
    with pytest.raises(FileProblem, match=f"^config file {broken}:3:1: not valid YAML"):
        read_yaml(broken, "config file")
    binary = tmp_path / "b.json"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(FileProblem, match=f"^report {binary}: not text"):
        read_json(binary, "report")
    deep = tmp_path / "d.json"
    deep.write_text("[" * 1000 + "]" * 1000)
    with pytest.raises(FileProblem, match=f"^report {deep}: nested deeper than 100 levels$"):
        read_json(deep, "report")
