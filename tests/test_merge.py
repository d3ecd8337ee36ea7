"""Merging reports into a release list, with Sylva's merge_image_refs.py arguments."""

import json

import pytest

from exporter.cli import main
from exporter.views.merge import MergeError, merge

A = {
    "images": ["b:1", "a:1"],
    "units_per_image": {"a:1": ["u1"]},
    "pod_images_dependencies": {
        "a:1": {"Kustomization/s/u1": {"Deployment/n/d": {"ReplicaSet/n/d-1": {"Pod/n/d-1-x": {"containers": ["c"]}}}}}
    },
}
B = {
    "images": ["c:1", "a:1"],
    "units_per_image": {"a:1": ["u2"], "c:1": ["u3"]},
    "pod_images_dependencies": {"a:1": {"Kustomization/s/u2": {"Pod/n/bare": {"containers": ["c"]}}}},
}


def test_lists_unioned_sorted_dicts_merged_pod_and_replicaset_keys_dropped():
    merged = merge([A, B])
    assert merged["images"] == ["a:1", "b:1", "c:1"]
    assert merged["units_per_image"] == {"a:1": ["u1", "u2"], "c:1": ["u3"]}
    assert merged["pod_images_dependencies"] == {"a:1": {"Kustomization/s/u1": {"Deployment/n/d": {}}, "Kustomization/s/u2": {}}}


def test_remove_keys_can_be_changed():
    merged = merge([A, B], remove_keys=["Deployment/"])
    assert "Deployment/n/d" not in json.dumps(merged)
    assert "Pod/n/bare" in json.dumps(merged)


def test_shape_conflict_is_a_clear_error():
    with pytest.raises(MergeError, match="at /images"):
        merge([{"images": ["a"]}, {"images": {"a": 1}}])


def test_cli_accepts_both_input_styles(tmp_path, capsys):
    paths = []
    for i, report in enumerate([A, B, {"images": ["d:1"]}]):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(report))
        paths.append(str(path))
    out = tmp_path / "merged.json"
    assert main(["merge", "-i", paths[0], paths[1], "-i", paths[2], "-o", str(out)]) == 0
    assert json.loads(out.read_text())["images"] == ["a:1", "b:1", "c:1", "d:1"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    good = tmp_path / "a.json"
    good.write_text("{}")
    assert main(["merge", "-i", str(good)]) == 2
    assert "two or more" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["merge", "-i", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1:2: not JSON" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"images": [1, "a"]}', "not an image reference report: images[0]: Input should be a valid string"),
        (b'{"images": [["a"]]}', "images[0]: Input should be a valid string"),
        (bytes(range(256)), "not text"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 100 levels"),
        (b'{"images": {"a": 1}}', "images: Input should be a valid list"),
        (b'{"images": ["a"], "units_per_image": {"a": "unit"}}', "units_per_image.a: Input should be a valid list"),
        (b'{"units_per_image": {}}', "JSON without an 'images' list"),
    ],
)
def test_unmergeable_input_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    good = tmp_path / "good.json"
    good.write_text('{"images": ["b"]}')
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["merge", "-i", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err and len(err.splitlines()) == 1, err


def test_what_merge_writes_check_reads(tmp_path, capsys):
    """One schema for both: the merged report is a list `check --file` accepts, units and all."""
    from exporter.sources.expected.formats import parse_list

    paths = []
    for i, report in enumerate([A, B]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(report))
    out = tmp_path / "merged.json"
    assert main(["merge", "-i", *map(str, paths), "-o", str(out)]) == 0
    parsed = parse_list(out.read_bytes(), str(out))
    assert parsed.problems == [] and parsed.images["docker.io/library/a:1"] == {"u1", "u2"}
