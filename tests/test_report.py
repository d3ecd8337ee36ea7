"""The Sylva report of the example cluster, compared with a reviewed golden file."""

import json
import pathlib

from exporter.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_report_from_file_matches_golden(tmp_path, caplog):
    out = tmp_path / "report.json"
    assert main(["report", "--from-file", str(ROOT / "examples/cluster.json"), "--output", str(out)]) == 0
    assert out.read_text() == (ROOT / "tests/golden/report.json").read_text()
    # the pod whose image does not parse is named on stderr, and the rest is reported
    assert any("default/typo" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_report_has_exactly_sylvas_keys():
    report = json.loads((ROOT / "tests/golden/report.json").read_text())
    assert list(report) == [
        "images",
        "units_per_image",
        "images_per_unit",
        "images_with_unknown_unit",
        "pod_images_dependencies",
    ]


def test_report_to_stdout_is_indented_json(capsys):
    assert main(["report", "--from-file", str(ROOT / "examples/cluster.json")]) == 0
    text = capsys.readouterr().out
    assert text.startswith('{\n    "images": [\n')


def test_typed_list_items_without_kind_are_read(tmp_path, capsys):
    pods = {
        "apiVersion": "v1",
        "kind": "PodList",
        "items": [{"metadata": {"name": "p", "namespace": "a"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}],
    }
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods))
    assert main(["report", "--from-file", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == ["docker.io/library/nginx:1"]


def test_concatenated_documents_are_read(tmp_path, capsys):
    one = {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "x"}, "spec": {"containers": [{"name": "c", "image": "redis:7"}]}}]}
    path = tmp_path / "two.json"
    path.write_text(json.dumps(one, indent=2) + "\n" + json.dumps(one))
    assert main(["report", "--from-file", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == ["docker.io/library/redis:7"]


def test_image_reached_by_a_unit_and_by_a_bare_pod_has_a_unit():
    """Sylva's rule: images_with_unknown_unit is all images minus the keys of units_per_image."""
    report = json.loads((ROOT / "tests/golden/report.json").read_text())
    busybox = "docker.io/library/busybox:1.36"
    chains = report["pod_images_dependencies"][busybox]
    assert "Pod/default/scratch" in chains and "Kustomization/sylva-system/vault" in chains  # reached both ways
    assert report["units_per_image"][busybox] == ["vault"]
    assert busybox not in report["images_with_unknown_unit"]
    assert report["images_with_unknown_unit"] == sorted(set(report["images"]) - set(report["units_per_image"]))


def test_the_written_report_is_byte_for_byte_what_json_dumps_indent_4_writes():
    """Sylva's tool writes `json.dumps(report, indent=4)`; the faster writer must not differ by a byte, nested
    trees, empty ones, escapes and text outside ASCII included."""
    import json

    from exporter.views.report import dumps

    for report in ({}, {"images": [], "units_per_image": {}},
                   {"images": ["a", "b"], "pod_images_dependencies": {"a": {"Pod/x/y": {"containers": ["c"]}}}},
                   {"quote": 'say "hi"\n\tback\\slash', "deep": [[{}], {"k": [1, 2]}]},
                   {"unité": "ü"},
                   {"lead": "  two spaces\n  after a newline", "d": {"a": {"b": {"c": {"d": {"e": ["  x", [], {}]}}}}},
                    "after": [[[["    "]]]]}):
        assert dumps(report) == json.dumps(report, indent=4) + "\n"
