"""Settings of `serve`: one model fed by a YAML file, environment variables and flags, in that order.

Every setting has a config key (`expected`), an environment variable (`KUBE_IMAGE_EXPORTER_EXPECTED`, lists
comma-separated or JSON) and a flag (`--expected`); a flag beats the environment, which beats the file.
Validation happens once at start and a bad value is reported with the key that holds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

from exporter.logs import FORMATS, LEVELS

ENV_PREFIX = "KUBE_IMAGE_EXPORTER_"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is wrong."""


def _split(value: Any) -> Any:
    """Environment lists: JSON (`["a","b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return yaml.safe_load(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


StrList = Annotated[list[str], NoDecode]


class RegistryOptions(BaseModel):
    """Per-registry settings (`registries: {HOST: {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1, le=256)
    rate: float | None = Field(default=None, gt=0, description="requests per second")
    insecure: bool = False  # plain HTTP
    skip_verify: bool = False
    ca_file: Path | None = None
    mirrors: list[str] = []


class Settings(BaseSettings):
    """All settings of `serve` (documented in the README's configuration table)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    listen: str = "0.0.0.0:9706"
    kubeconfig: Path | None = None
    contexts: StrList = []
    cluster_name: str | None = None
    expected: StrList = []
    interval: float = Field(default=60.0, gt=0, description="seconds between snapshots")
    namespaces: StrList = []
    exclude_namespaces: StrList = []
    namespace_selector: str | None = None
    ignore: StrList = []
    unit_sources: StrList = ["flux"]
    docker_config: StrList = []
    ca_file: Path | None = None
    insecure_registries: StrList = []
    registry_mirrors: StrList = []
    concurrency: int = Field(default=8, ge=1, le=256, description="requests in flight per registry")
    rate: float = Field(default=50.0, gt=0, description="requests per second per registry")
    registries: dict[str, RegistryOptions] = {}
    watch_down_threshold: float = Field(default=300.0, gt=0)
    rollback_images: StrList = []  # namespaces whose Helm release revisions are checked (reads their Secrets)
    # fleet (REFERENCE.md §12): results shared through Redis; one cluster split between replicas
    cache_url: str | None = None  # redis://HOST:PORT/DB or rediss://; its password may be in it (never logged)
    cache_password_file: Path | None = None  # when the URL has none; else KUBE_IMAGE_EXPORTER_CACHE_PASSWORD
    shard: int = Field(default=0, ge=0)  # a number, or a StatefulSet pod name whose ordinal is the shard
    total_shards: int = Field(default=1, ge=1)
    log_level: str = "info"
    log_format: str = "text"

    @field_validator(
        "contexts", "expected", "namespaces", "exclude_namespaces", "ignore", "unit_sources",
        "docker_config", "insecure_registries", "registry_mirrors", "rollback_images",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            match = re.search(r"-(\d+)$", value.strip())
            if match is None:
                raise ValueError(f"expected a shard number or a StatefulSet pod name ending in -N, got {value!r}")
            return int(match.group(1))
        return value

    @model_validator(mode="after")
    def _sharding(self) -> "Settings":
        if self.shard >= self.total_shards:
            raise ValueError(f"shard {self.shard} is not below total_shards {self.total_shards}")
        if self.total_shards > 1 and self.expected:
            raise ValueError("expected lists are compared with the whole cluster: give them to an unsharded "
                             "exporter, not to shards (total_shards > 1)")
        return self

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @field_validator("ignore")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        return value

    @field_validator("registry_mirrors")
    @classmethod
    def _mirrors(cls, value: list[str]) -> list[str]:
        for item in value:
            source, sep, target = item.partition("=")
            if not sep or not source or not target:
                raise ValueError(f"expected FROM=TO, got {item!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in LEVELS:
            raise ValueError(f"expected debug, info, warning or error, got {value!r}")
        return value.lower()

    @field_validator("log_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in FORMATS:
            raise ValueError(f"expected text or json, got {value!r}")
        return value

    @field_validator("unit_sources")
    @classmethod
    def _unit_sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if source not in ("flux", "helm", "argocd") and not source.startswith("label:"):
                raise ValueError(f"unknown unit source {source!r} (flux, helm, argocd or label:KEY)")
        return value


def load(config_file: str | Path | None = None, flags: dict[str, Any] | None = None) -> Settings:
    """Settings from a YAML file, then the environment, then flags (those not None); ConfigError when bad."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}")
        file_values = {str(k).replace("-", "_"): v for k, v in loaded.items()}
    explicit = {k: v for k, v in (flags or {}).items() if v is not None and v != []}
    try:
        from_env = Settings()  # environment (and defaults) only
        merged = {**file_values, **from_env.model_dump(exclude_unset=True), **explicit}
        return Settings.model_validate(merged)  # env is read again, so pass the merge as init kwargs
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        problems.append(f"{key}: {message}")
    return "invalid configuration: " + "; ".join(problems)
