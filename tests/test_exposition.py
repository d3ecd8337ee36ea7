"""The rendered exposition must parse, satisfy promtool and carry every declared family."""

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.views.exposition import Histogram, render
from exporter.views.families import FAMILIES, REFERENCE_LABELS


def sample_output() -> bytes:
    labels = ("prod", "shop", "Deployment", "web", "main", "container", 'odd"image\\name\n', "apps", "absent")
    return render(
        {
            "kube_image_missing": [(labels, 1.0)],
            "kube_image_pull_duration_seconds": [(("prod", "shop", "node-1", "nginx"), 1.393)],
            "kube_image_registry_requests_total": [(("r.example.com", "HEAD", "200"), 42.0)],
            "kube_image_build_info": [(("0.1.0",), 1.0)],
        },
        {
            "kube_image_pull_seconds": [
                Histogram(("prod", "r.example.com"), (1.0, 10.0), (1, 3), sum=12.5, count=4)
            ]
        },
    )


def test_every_family_is_declared_even_without_rows():
    parsed = {f.name for f in text_string_to_metric_families(sample_output().decode())}
    # the parser strips _total from counter names
    declared = {f.name.removesuffix("_total") if f.type == "counter" else f.name for f in FAMILIES}
    assert parsed == declared


def test_label_values_are_escaped_and_round_trip():
    [family] = [f for f in text_string_to_metric_families(sample_output().decode()) if f.name == "kube_image_missing"]
    [sample] = family.samples
    assert sample.labels["image"] == 'odd"image\\name\n'
    assert list(sample.labels) == list(REFERENCE_LABELS) + ["reason"]


def test_histogram_has_cumulative_buckets_sum_and_count():
    text = sample_output().decode()
    assert 'kube_image_pull_seconds_bucket{cluster="prod",registry="r.example.com",le="10"} 3' in text
    assert 'kube_image_pull_seconds_bucket{cluster="prod",registry="r.example.com",le="+Inf"} 4' in text
    assert 'kube_image_pull_seconds_count{cluster="prod",registry="r.example.com"} 4' in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (scripts/setup installs it)")
def test_promtool_check_metrics_is_clean():
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=sample_output(), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


def test_metrics_page_appends_self_metrics_made_at_each_read_in_one_gzip_stream():
    import gzip
    import zlib

    from exporter.views.exposition import MetricsPage

    reads = iter(range(1, 100))
    page = MetricsPage(b"kube_image_build_info{version=\"1\"} 1\n" * 500,
                       fresh=lambda: f"process_open_fds {next(reads)}\n".encode())
    assert page.body.endswith(b"process_open_fds 1\n")
    assert page.body.endswith(b"process_open_fds 2\n")  # made at each scrape, not each cycle
    data = page.gzipped
    stream = zlib.decompressobj(31)
    text = stream.decompress(data)
    assert stream.eof and stream.unused_data == b""  # one gzip member: read whole by any client
    assert text == gzip.decompress(data) and text.startswith(b"kube_image_build_info")
    assert text.endswith(b"process_open_fds 3\n")
    assert len(data) < 200  # the large part compressed once, its state reused


def test_self_metrics_are_the_client_library_families_documented_and_lint_clean():
    from exporter.views.exposition import self_metrics
    from exporter.views.families import SELF_FAMILIES
    from tests.support import assert_promtool_clean

    text = self_metrics().decode()
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert declared == {family.name for family in SELF_FAMILIES}  # the README documents what is served
    assert_promtool_clean(text)
