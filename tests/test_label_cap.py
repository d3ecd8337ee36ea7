"""Label values are capped at MAX_LABEL_VALUE characters; distinct long values stay distinct series."""

from prometheus_client.parser import text_string_to_metric_families

from exporter.views.exposition import MAX_LABEL_VALUE, cap, render
from tests.support import assert_promtool_clean


def test_a_10_kb_image_is_published_cut_and_distinct_from_its_neighbour():
    long_a, long_b = "r.example.com/" + "a" * 10_000, "r.example.com/" + "a" * 9_999 + "b"
    text = render({"kube_image_status": [(("prod", long_a, "r.example.com", "invalid_reference"), 1.0),
                                         (("prod", long_b, "r.example.com", "invalid_reference"), 1.0)]})
    [family] = [f for f in text_string_to_metric_families(text.decode()) if f.name == "kube_image_status"]
    images = [sample.labels["image"] for sample in family.samples]
    assert len(set(images)) == 2 and all(len(image) == MAX_LABEL_VALUE for image in images)
    assert images[0].startswith("r.example.com/aaa") and "...[truncated " in images[0]
    assert_promtool_clean(text)


def test_values_up_to_the_cap_are_kept_whole():
    longest_valid = "r.example.com/" + "n" * 241 + ":" + "t" * 128 + "@sha256:" + "0" * 64
    assert len(longest_valid) <= MAX_LABEL_VALUE and cap(longest_valid) == longest_valid
