"""The settings model: one for every command, fed by a YAML file, environment variables and flags, in that order.

Every setting has a config key (`expected`), an environment variable (`KUBE_IMAGE_EXPORTER_EXPECTED`, lists
comma-separated or JSON) and, where a command takes it, a flag (`--expected`); a flag beats the environment,
which beats the file. `serve`, `report`, `check` and `merge` validate through this same model, so a value is
accepted or refused the same way whichever command reads it, with the key that holds it in the message.
Durations take Go syntax (`500ms`, `30s`, `5m`, `1h30m`); a bare number is seconds.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from typing_extensions import Annotated

from exporter.common.durations import SETTING_PATTERN, parse_setting
from exporter.common.files import FileProblem, read_yaml
from exporter.common.logs import FORMATS, LEVELS
from exporter.sources.registry.settings import RegistrySettings, from_options, parse_mirror

ENV_PREFIX = "KUBE_IMAGE_EXPORTER_"
UNIT_SOURCES = ("flux", "helm", "argocd")  # and label:KEY
MAX_DURATION = 30 * 24 * 3600.0  # a month: longer is a typo (and past what a thread can wait for)


_JSON_SETTINGS = frozenset({"registries"})  # nested settings: JSON in the environment


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is wrong."""


def _split(value: Any) -> Any:
    """Environment lists: JSON (`["a","b"]`) or comma-separated (`a,b`)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list ({exc.msg} at column {exc.colno})") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _duration(value: Any) -> float:
    seconds = parse_setting(value)
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError(f"expected a duration above 0 and at most 720h, got {value!r}")
    return seconds


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"file {value} does not exist")
    return value


def check_unit_source(source: str) -> str:
    """`flux`, `helm`, `argocd` or `label:KEY`; ValueError otherwise."""
    if source in UNIT_SOURCES or (source.startswith("label:") and len(source) > len("label:")):
        return source
    raise ValueError(f"unknown unit source {source!r} (flux, helm, argocd or label:KEY)")


StrList = list[str]  # from the environment: JSON or comma-separated (`_split`)
Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
                              {"type": "string", "pattern": SETTING_PATTERN}],
                    "description": "Go duration (500ms, 30s, 5m, 1h30m) or seconds"}),
]
ExistingFile = Annotated[Path | None, AfterValidator(_existing_file)]


class RegistryOptions(BaseModel):
    """Per-registry settings (`registries: {HOST: {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1, le=256)
    rate: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="requests per second")
    insecure: bool = False  # plain HTTP
    skip_verify: bool = False
    ca_file: ExistingFile = None
    mirrors: list[str] = []


class Settings(BaseModel):
    """All settings (documented in the README's configuration table)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    listen: str = "0.0.0.0:9706"
    kubeconfig: Path | None = None
    contexts: StrList = []
    cluster_name: str | None = None
    expected: StrList = []
    interval: Duration = Field(default=60.0, description="time between snapshots")
    namespaces: StrList = []
    exclude_namespaces: StrList = []
    namespace_selector: str | None = None
    ignore: StrList = []
    unit_sources: StrList = ["flux"]
    docker_config: StrList = []
    ca_file: ExistingFile = None
    insecure_registries: StrList = []
    skip_verify: StrList = []
    registry_mirrors: StrList = []
    concurrency: int | None = Field(default=None, ge=1, le=256,
                                    description="cap on requests in flight per registry (unset: adaptive)")
    rate: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                               description="cap on requests per second per registry (unset: adaptive)")
    registries: dict[str, RegistryOptions] = {}
    # The node's view (REFERENCE.md §10-11): the kubelet's credential providers and docker config, the runtime's mirrors.
    image_credential_provider_config: Path | None = None
    image_credential_provider_bin_dir: Path | None = None
    kubelet_root_dir: Path | None = None
    containerd_hosts_dir: Path | None = None
    registries_conf: Path | None = None
    service_account_tokens: bool = False  # tokens of workloads' ServiceAccounts for providers with tokenAttributes
    watch_down_threshold: Duration = Field(default=300.0, description="failing list/watch time before not ready")
    rollback_images: StrList = []  # namespaces whose Helm release revisions are checked (reads their Secrets)
    web_ui: bool = True  # the status page at `/`; off: `/` answers with the plain list of endpoints
    # fleet (REFERENCE.md §12): results shared through Redis; one cluster split between replicas
    cache_url: str | None = None  # redis://HOST:PORT/DB or rediss://; its password may be in it (never logged)
    cache_password_file: Path | None = None  # when the URL has none; else KUBE_IMAGE_EXPORTER_CACHE_PASSWORD
    shard: int = Field(default=0, ge=0)  # a number, or a StatefulSet pod name whose ordinal is the shard
    total_shards: int = Field(default=1, ge=1)
    log_level: str = "info"
    log_format: str = "text"

    @field_validator(
        "contexts", "expected", "namespaces", "exclude_namespaces", "ignore", "unit_sources",
        "docker_config", "insecure_registries", "skip_verify", "registry_mirrors", "rollback_images",
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
            parse_mirror(item)
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
        return [check_unit_source(source) for source in value]

    def registry_settings(self) -> RegistrySettings:
        """The registry options of these settings, as the checker takes them."""
        return from_options(
            insecure=self.insecure_registries, skip_verify=self.skip_verify, mirrors=self.registry_mirrors,
            ca_file=str(self.ca_file) if self.ca_file else None, concurrency=self.concurrency, rate=self.rate,
            hosts={host: options.model_dump(exclude_none=True) for host, options in self.registries.items()},
        )


def load(config_file: str | Path | None = None, flags: dict[str, Any] | None = None) -> Settings:
    """Settings from a YAML file, then the environment, then flags (those not None); ConfigError when bad."""
    file_values = _read_file(Path(config_file)) if config_file is not None else {}
    explicit = {k: v for k, v in (flags or {}).items() if v is not None and v != []}
    try:
        from_env = Settings.model_validate(_environment())  # environment (and defaults) only
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "environment: ", lambda key: ENV_PREFIX + key.upper())) from None
    merged = {**file_values, **from_env.model_dump(exclude_unset=True), **explicit}
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _environment() -> dict[str, Any]:
    """The settings the environment holds: `KUBE_IMAGE_EXPORTER_<KEY>` in any case, as text, but JSON for a
    nested setting (`registries`); lists are split by their validator. ConfigError naming a variable whose
    JSON is broken.

    Read here rather than through a settings library: this is all a command needs of one, and `check` starts
    before its first request without importing one.
    """
    names = {ENV_PREFIX + key.upper(): key for key in Settings.model_fields}
    values: dict[str, Any] = {}
    for name, text in os.environ.items():
        key = names.get(name.upper())
        if key is None:
            continue
        if key in _JSON_SETTINGS:
            try:
                text = json.loads(text)
            except ValueError:
                raise ConfigError(f"invalid configuration: environment: {ENV_PREFIX}{key.upper()}: "
                                  "not valid JSON") from None
        values[key] = text
    return values


def _read_file(path: Path) -> dict[str, Any]:
    try:
        loaded = read_yaml(path, "config file")
    except FileProblem as exc:
        raise ConfigError(str(exc)) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}")
    return {str(k).replace("-", "_"): v for k, v in loaded.items()}


def _describe(exc: ValidationError, prefix: str = "", name=lambda key: key) -> str:
    problems = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        key = ".".join([name(parts[0]), *parts[1:]]) if parts else "config"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        problems.append(f"{key}: {message}")
    return "invalid configuration: " + prefix + "; ".join(problems)
