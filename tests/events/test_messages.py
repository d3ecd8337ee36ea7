"""Every kubelet image event format of REFERENCE.md §4, read exactly."""

import pytest

from exporter.sources.events.messages import parse_backoff, parse_failed, parse_go_duration, parse_pulled


@pytest.mark.parametrize(
    "text, seconds",
    [("830ms", 0.83), ("1.661s", 1.661), ("1m0.809s", 60.809), ("3m10.96s", 190.96), ("1h2m3s", 3723.0),
     ("4µs", 4e-6), ("12us", 12e-6), ("100ns", 1e-7), ("49.657983991s", 49.657983991)],
)
def test_go_durations(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "-1s", "1.5 s"])
def test_not_go_durations(text):
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    "message, expected",
    [
        ('Successfully pulled image "nginx"', ("nginx", None, None, None)),
        ('Successfully pulled image "nginx:1.27" in 49.657983991s', ("nginx:1.27", 49.657983991, None, None)),
        ('Successfully pulled image "quay.io/a/b:1" in 1m0.809s (1m2.5s including waiting)',
         ("quay.io/a/b:1", 60.809, 62.5, None)),
        ('Successfully pulled image "nginx" in 4.614s (4.614s including waiting)', ("nginx", 4.614, 4.614, None)),
        ('Successfully pulled image "nginx" in 1.393s (1.393s including waiting). Image size: 62958873 bytes.',
         ("nginx", 1.393, 1.393, 62958873)),
        ('Successfully pulled image "busybox" in 830ms (830ms including waiting). Image size: 2155 bytes.',
         ("busybox", 0.83, 0.83, 2155)),
    ],
)
def test_pulled_formats(message, expected):
    pulled = parse_pulled(message)
    assert (pulled.image, pulled.pull_seconds, pulled.total_seconds, pulled.size_bytes) == pytest.approx(expected)


@pytest.mark.parametrize(
    "message, image, reason",
    [
        ('Failed to pull image "nginx:nope": rpc error: code = NotFound desc = failed to pull and unpack image '
         '"docker.io/library/nginx:nope": failed to resolve reference "docker.io/library/nginx:nope": '
         "docker.io/library/nginx:nope: not found", "nginx:nope", "not_found"),
        ('Failed to pull image "r.example.com/p:1": failed to authorize: 401 Unauthorized', "r.example.com/p:1",
         "unauthorized"),
        ('Failed to pull image "nginx": toomanyrequests: You have reached your pull rate limit', "nginx", "rate_limited"),
        ('Failed to pull image "r.example.com/p:1": x509: certificate signed by unknown authority',
         "r.example.com/p:1", "tls"),
        ('Failed to pull image "r.example.com/p:1": dial tcp 10.0.0.1:443: i/o timeout', "r.example.com/p:1",
         "timeout"),
        ('Failed to pull image "r.example.com/p:1": dial tcp: lookup r.example.com: no such host',
         "r.example.com/p:1", "unreachable"),
        ('Failed to pull image "x": something odd', "x", "other"),
        ("Error: ErrImagePull", None, "err_image_pull"),
        ("Error: ImagePullBackOff", None, "back_off"),
    ],
)
def test_failed_formats(message, image, reason):
    failed = parse_failed(message)
    assert (failed.image, failed.reason) == (image, reason)


def test_backoff_and_garbage():
    assert parse_backoff('Back-off pulling image "nginx:1"') == "nginx:1"
    for junk in ["", "Pulling image", "\x00\xff", 'Successfully pulled image "unterminated']:
        assert parse_pulled(junk) is None and parse_failed(junk) is None and parse_backoff(junk) is None


def test_a_50_mb_message_is_not_scanned_whole():
    import time

    huge = 'Successfully pulled image "nginx" in 1.5s' + "x" * 50_000_000
    started = time.perf_counter()
    assert parse_pulled(huge).pull_seconds == 1.5
    assert parse_failed("y" * 50_000_000) is None
    assert time.perf_counter() - started < 5  # generous: only the head is read


def test_durations_are_exact_to_the_nanosecond_as_exposed():
    assert repr(parse_go_duration("830ms")) == "0.83"
    assert repr(parse_go_duration("1m0.809s")) == "60.809"
