"""Settings: file, environment and flags in that order; a bad value names its key."""

import re
from pathlib import Path

import pytest

from exporter.config import ConfigError, Settings, load


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
        ({"interval": -1}, "interval: Input should be greater than 0"),
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
