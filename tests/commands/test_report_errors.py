"""Bad input to `report` gives one clear line and a non-zero exit, never a traceback."""

import json

import pytest

from exporter.cli import main


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all", "is not JSON"),
        ("[1, 2]", "holds a int, not Kubernetes objects"),
        ('{"items": [1]}', "item 0 is a int"),
        ('{"foo": "bar"}', "neither a List with items nor a Kubernetes object"),
    ],
)
def test_malformed_list_files(tmp_path, capsys, content, message):
    path = tmp_path / "in.json"
    path.write_text(content)
    assert main(["report", "--from-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_pod_list_over_the_cap_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    from exporter.sources.kube import listfile

    monkeypatch.setattr(listfile, "MAX_BYTES", 1000)
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": f"p{i}"}}
                                                          for i in range(100)]}))
    assert main(["report", "--from-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the most a pod list may hold" in err and err.count("\n") == 1


def test_missing_file(tmp_path, capsys):
    assert main(["report", "--from-file", str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unknown_unit_source_is_a_usage_error(capsys):
    assert main(["report", "--from-file", "examples/cluster.json", "--unit-source", "nope"]) == 2
    assert "unknown unit source 'nope'" in capsys.readouterr().err


def test_unit_sources_are_validated_as_serve_validates_them(capsys):
    assert main(["report", "--from-file", "examples/cluster.json", "--unit-source", "label:"]) == 2
    assert "unknown unit source 'label:'" in capsys.readouterr().err
    assert main(["report", "--from-file", "examples/cluster.json", "--unit-source", "label:team"]) == 0


def test_malformed_objects_are_counted_in_one_line(tmp_path, capsys):
    pods = {"kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "bad", "namespace": "a"}, "spec": {"containers": "nginx"}},
        {"kind": "Pod", "metadata": {"name": "worse", "namespace": "a"}, "spec": {"containers": [{"image": 7}]}},
        {"kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}, "spec": {"template": "x"}},
        {"kind": "Pod", "metadata": {"name": "good", "namespace": "a"},
         "spec": {"containers": [{"name": "c", "image": "redis:7"}]}},
    ]}
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(pods))
    assert main(["report", "--from-file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["images"] == ["docker.io/library/redis:7"]
    assert err.count("\n") == 1
    assert f"3 objects of {path} left out as unreadable" in err
    assert "Pod a/bad: spec.containers is a str, not a list" in err
