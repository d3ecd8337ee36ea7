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
        ({"interval": -1}, "interval: expected a duration above 0"),
        ({"interval": "0s"}, "interval: expected a duration above 0"),
        ({"interval": "inf"}, "interval: expected a finite duration"),
        ({"interval": "30 s"}, "interval: expected a duration like 500ms"),
        ({"watch_down_threshold": "5x"}, "watch_down_threshold: expected a duration like 500ms"),
        ({"concurrency": 0}, "concurrency: Input should be greater than or equal to 1"),
        ({"rate": -1}, "rate: Input should be greater than 0"),
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
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
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
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1m0.5s", 60.5), ("90", 90), ("1.5", 1.5), (45, 45)],
)
def test_durations_take_go_syntax_and_bare_seconds(value, seconds):
    assert load(None, {"interval": value}).interval == seconds
    assert load(None, {"watch_down_threshold": value}).watch_down_threshold == seconds


def test_durations_in_the_file_and_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("interval: 5m\nwatch_down_threshold: 1h30m\n")
    settings = load(path)
    assert (settings.interval, settings.watch_down_threshold) == (300, 5400)
    monkeypatch.setenv("KUBE_IMAGE_EXPORTER_INTERVAL", "500ms")
    assert load(path).interval == 0.5
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
