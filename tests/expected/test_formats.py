"""Expected lists are detected by content and normalized; bad lines are named and skipped."""

import pytest

from exporter.sources.expected.formats import ListFormatError, parse_list


def test_plain_text_with_comments_and_bad_lines():
    parsed = parse_list("# release\nnginx:1.27  # web\n\nquay.io/a/b:1\nBad Ref\n", "r.txt")
    assert parsed.images == {"docker.io/library/nginx:1.27": frozenset(), "quay.io/a/b:1": frozenset()}
    [problem] = parsed.problems
    assert problem.startswith("r.txt line 5: invalid image reference 'Bad Ref'")


def test_sylva_report_keeps_units():
    content = '{"images": ["quay.io/a/b:1", "nginx"], "units_per_image": {"quay.io/a/b:1": ["u1", "u2"]}}'
    parsed = parse_list(content, "report.json")
    assert parsed.format == "report"
    assert parsed.images == {"quay.io/a/b:1": frozenset({"u1", "u2"}), "docker.io/library/nginx": frozenset()}


@pytest.mark.parametrize("content", ['{"foo": 1}', '{"images": "x"}', "{not json"])
def test_json_that_is_no_list_is_an_error(content):
    with pytest.raises(ListFormatError):
        parse_list(content, "x.json")


def test_empty_list_is_a_warning_not_an_error():
    parsed = parse_list("# nothing\n", "empty.txt")
    assert parsed.images == {} and "empty" in parsed.problems[0]
