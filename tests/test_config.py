"""Settings: file, environment and flags in that order; a bad value names its key."""

import re
from pathlib import Path

import pytest

from exporter.commands.config import ConfigError, Settings, load


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("interval: 30\nexpected: [release.txt]\nregistries:\n  quay.io: {concurrency: 4}\n")
    return path


def test_environment_beats_file_and_flags_beat_environment(config_file, monkeypatch):
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_INTERVAL", "45")
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_NAMESPACES", "a, b")
    settings = load(config_file, {"listen": "127.0.0.1:9000", "interval": None})
    assert settings.interval == 45
    assert settings.namespaces == ["a", "b"]
    assert settings.expected == ["release.txt"]
    assert settings.listen == "127.0.0.1:9000"
    assert settings.registries["quay.io"].concurrency == 4
    assert load(config_file, {"interval": 5}).interval == 5


def test_unknown_keys_are_named_even_nested(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("intervall: 3\nregistries: {quay.io: {concurency: 2}}\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert "intervall: unknown setting" in str(err.value)
    assert "registries.quay.io.concurency: unknown setting" in str(err.value)


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"interval": -1}, "interval: expected a duration from 1s to 24h, got -1"),
        ({"interval": "0s"}, "interval: expected a duration from 1s to 24h, got '0s'"),
        ({"interval": "1ns"}, "interval: expected a duration from 1s to 24h, got '1ns'"),
        ({"interval": "25h"}, "interval: expected a duration from 1s to 24h"),
        ({"watch_down_threshold": "10ms"}, "watch_down_threshold: expected a duration from 100ms to 24h"),
        ({"interval": "inf"}, "interval: expected a finite duration"),
        ({"interval": "30 s"}, "interval: expected a duration like 500ms"),
        ({"watch_down_threshold": "5x"}, "watch_down_threshold: expected a duration like 500ms"),
        ({"concurrency": 0}, "concurrency: Input should be greater than or equal to 1"),
        ({"rate": -1}, "rate: expected a rate from 0.01 to 10000 per second, got -1"),
        ({"rate": "1e-300"}, "rate: expected a rate from 0.01 to 10000 per second, got '1e-300'"),
        ({"rate": "nan"}, "rate: expected a rate from 0.01 to 10000 per second"),
        ({"rate": "fast"}, "rate: expected requests per second (a number), got 'fast'"),
        ({"ca_file": "/missing.pem"}, "ca_file: file /missing.pem does not exist"),
        ({"registry_mirrors": ["=mirror"]}, "registry_mirrors: expected FROM=TO"),
        ({"unit_sources": ["label:"]}, "unit_sources: unknown unit source 'label:'"),
        ({"listen": "nowhere"}, "listen: expected HOST:PORT"),
        ({"ignore": ["("]}, "ignore: bad regular expression '('"),
        ({"registry_mirrors": ["docker.io"]}, "registry_mirrors: expected FROM=TO"),
        ({"unit_sources": ["flux", "nope"]}, "unit_sources: unknown unit source 'nope'"),
    ],
)
def test_bad_values_name_the_key(flags, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(None, flags)


def test_unreadable_and_non_mapping_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "absent.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(broken)


def test_every_setting_is_in_the_readme_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", readme, flags=re.M))
    assert set(Settings.model_fields) <= documented


@pytest.mark.parametrize(
    "value, seconds",
    [("1000ms", 1), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1m0.5s", 60.5), ("90", 90), ("1.5", 1.5), (45, 45),
     ("24h", 86400)],
)
def test_durations_take_go_syntax_and_bare_seconds(value, seconds):
    assert load(None, {"interval": value}).interval == seconds
    assert load(None, {"watch_down_threshold": value}).watch_down_threshold == seconds


def test_durations_in_the_file_and_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("interval: 5m\nwatch_down_threshold: 1h30m\n")
    settings = load(path)
    assert (settings.interval, settings.watch_down_threshold) == (300, 5400)
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_INTERVAL", "1500ms")
    assert load(path).interval == 1.5
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_INTERVAL", "5 minutes")
    with pytest.raises(ConfigError, match="environment: KUBE_IMAGE_EXPORTER_INTERVAL: expected a duration like"):
        load(path)


def test_a_go_duration_has_one_definition():
    from exporter.common.durations import go_duration, parse_go_duration
    from exporter.sources.events import messages
    from exporter.sources.registry.node import providers

    assert messages.parse_go_duration is parse_go_duration
    assert providers.go_duration is go_duration  # the kubelet's config files
    assert messages.parse_pulled('Successfully pulled image "a" in 1h30m').pull_seconds == 5400


def test_per_registry_ca_files_must_exist(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("registries:\n  quay.io: {ca_file: /missing.pem}\n")
    with pytest.raises(ConfigError, match="registries.quay.io.ca_file: file /missing.pem does not exist"):
        load(path)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("KUBE_IMAGE_EXPORTER_REGISTRIES", "{bad", "KUBE_IMAGE_EXPORTER_REGISTRIES: not valid JSON"),
        ("KUBE_IMAGE_EXPORTER_NAMESPACES", "[bad", "KUBE_IMAGE_EXPORTER_NAMESPACES: not a JSON list"),
        ("KUBE_IMAGE_EXPORTER_CONCURRENCY", "-3", "KUBE_IMAGE_EXPORTER_CONCURRENCY: Input should be greater"),
    ],
)
def test_bad_environment_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load()


def test_a_yaml_error_says_file_line_and_column(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("interval: 5m\nregistries: [\n  - a: b\n")
    with pytest.raises(ConfigError) as err:
        load(broken)
    assert str(err.value).startswith(f"config file {broken}:3:3: not valid YAML") and "\n" not in str(err.value)


def test_the_environment_holds_nested_settings_as_json_and_names_in_any_case(monkeypatch):
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_REGISTRIES", '{"quay.io": {"concurrency": 4, "insecure": true}}')
    monkeypatch.setenv("kube_image_exporter_rate", "12.5")
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_NOT_A_SETTING", "ignored, as any other variable")
    loaded = load()
    assert loaded.rate == 12.5
    assert loaded.registry_settings().host("quay.io").concurrency == 4
    assert loaded.registry_settings().host("quay.io").insecure


@pytest.mark.parametrize(
    "file, env, flags, expected",
    [
        ("total_shards: 3\n", {"KUBE_IMAGE_EXPORTER_SHARD": "kie-2"}, {}, (2, 3)),
        ("shard: 2\n", {"KUBE_IMAGE_EXPORTER_TOTAL_SHARDS": "3"}, {}, (2, 3)),
        ("total_shards: 3\n", {}, {"shard": "kie-1"}, (1, 3)),
        ("", {"KUBE_IMAGE_EXPORTER_TOTAL_SHARDS": "4"}, {"shard": "3"}, (3, 4)),
        ("shard: 5\ntotal_shards: 2\n", {"KUBE_IMAGE_EXPORTER_TOTAL_SHARDS": "8"}, {}, (5, 8)),
        ("shard: 1\ntotal_shards: 2\n", {}, {"shard": "0", "total_shards": "1"}, (0, 1)),
    ],
)
def test_file_environment_and_flags_are_merged_before_they_are_validated(tmp_path, monkeypatch, file, env, flags,
                                                                         expected):
    path = tmp_path / "c.yaml"
    path.write_text(file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load(path, flags)
    assert (settings.shard, settings.total_shards) == expected


def test_a_check_across_keys_sees_the_merged_values_and_names_the_keys(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("total_shards: 3\n")
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_SHARD", "kie-3")
    with pytest.raises(ConfigError, match=r"^invalid configuration: shard 3 is not below total_shards 3$"):
        load(path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("interval", "1ns", "expected a duration from 1s to 24h, got '1ns'"),
        ("rate", "1e-300", "expected a rate from 0.01 to 10000 per second, got '1e-300'"),
        ("watch_down_threshold", "48h", "expected a duration from 100ms to 24h, got '48h'"),
    ],
)
def test_a_value_out_of_range_is_refused_alike_from_file_environment_and_flags(tmp_path, monkeypatch, key, value,
                                                                                message):
    path = tmp_path / "c.yaml"
    path.write_text(f"{key}: {value!r}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{key}: {message}")):
        load(path)
    with pytest.raises(ConfigError, match=re.escape(f"{key}: {message}")):
        load(None, {key: value})
    monkeypatch.setenv(f"KUBE_IMAGE_EXPORTER_{key.upper()}", value)
    with pytest.raises(ConfigError, match=re.escape(f"environment: KUBE_IMAGE_EXPORTER_{key.upper()}: {message}")):
        load()
    assert load(None, {key: RANGE_ENDS[key]})  # a flag beats the environment: the end of the range is accepted


RANGE_ENDS = {"interval": "1s", "rate": "0.01", "watch_down_threshold": "24h"}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "no PEM certificate in it"),
        (b"not a certificate\n", "no PEM certificate in it"),
        (bytes(range(256)), "not text (binary content)"),
    ],
)
def test_a_ca_file_must_hold_pem_certificates(tmp_path, content, message):
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(f"ca_file: file {path}: {message}")):
        load(None, {"ca_file": str(path)})
    config = tmp_path / "c.yaml"
    config.write_text(f"registries:\n  quay.io: {{ca_file: {path}}}\n")
    with pytest.raises(ConfigError, match=re.escape(f"registries.quay.io.ca_file: file {path}: {message}")):
        load(config)
