"""Bad input to `report` gives one clear line and a non-zero exit, never a traceback."""

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
    assert main(["report", "--from-file", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_file(tmp_path, capsys):
    assert main(["report", "--from-file", str(tmp_path / "absent.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_unknown_unit_source_is_a_usage_error(capsys):
    assert main(["report", "--from-file", "examples/cluster.json", "--unit-source", "nope"]) == 2
    assert "unknown unit source 'nope'" in capsys.readouterr().err
