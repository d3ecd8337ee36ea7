"""The settings model: one for every command, fed by a YAML file, environment variables and flags, in that order.

Every setting has a config key (`expected`), an environment variable (`KUBE_IMAGE_EXPORTER_EXPECTED`, lists
comma-separated or JSON) and, where a command takes it, a flag (`--expected`); a flag beats the environment,
which beats the file. The three are merged key by key first and validated once, so a check across keys
(`shard` below `total_shards`) sees the values that will be used, wherever each came from. `serve`, `report`,
`check` and `merge` validate through this same model, so a value is accepted or refused the same way whichever
command reads it, with the key (or the variable) that holds it in the message.
Durations take Go syntax (`500ms`, `30s`, `5m`, `1h30m`); a bare number is seconds. Each duration and rate has
a range (`RANGES`, stated in `--help` and the README): a value outside it is a typo or a way to spin a core.
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
from exporter.common.files import MAX_BYTES, FileProblem, ReadError, read_certificates, read_yaml
from exporter.common.logs import FORMATS, LEVELS
from exporter.sources.registry.settings import RegistrySettings, from_options, parse_mirror

ENV_PREFIX = "KUBE_IMAGE_EXPORTER_"
UNIT_SOURCES = ("flux", "helm", "argocd")  # and label:KEY
DAY = 24 * 3600.0
# The sane range of each duration (seconds) and rate (requests per second); outside it a value is refused.
RANGES = {
    "interval": (1.0, DAY),  # below a second the loop only spins a core; above a day nothing is watched
    "retention_interval": (60.0, 7 * DAY),  # cleanup policies change rarely; their reading costs API calls
    "watch_down_threshold": (0.1, DAY),
    "timeout": (0.1, DAY),  # `check --timeout`, for the whole run
    "rate": (0.01, 10_000.0),  # one request in 100 s at the slowest: less is a typo, not a limit
}


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


def show_duration(seconds: float) -> str:
    """`100ms`, `1s`, `24h`: a range's ends as a user writes them."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def describe_range(key: str) -> str:
    """`1s to 24h`: the range of a setting as `--help` and the messages say it."""
    low, high = RANGES[key]
    if key == "rate":
        return f"{low:g} to {high:g} per second"
    return f"{show_duration(low)} to {show_duration(high)}"


def duration_in(key: str, value: Any) -> float:
    """Seconds of a duration within the range of `key`; ValueError saying the range otherwise."""
    seconds = parse_setting(value)
    low, high = RANGES[key]
    if not low <= seconds <= high:
        raise ValueError(f"expected a duration from {describe_range(key)}, got {value!r}")
    return seconds


def _rate(value: Any) -> Any:
    if value is None:
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected requests per second (a number), got {value!r}") from None
    low, high = RANGES["rate"]
    if isinstance(value, bool) or not low <= rate <= high:  # NaN fails both comparisons
        raise ValueError(f"expected a rate from {describe_range('rate')}, got {value!r}")
    return rate


def _ca_file(value: Path | None) -> Path | None:
    """A readable, bounded file of PEM certificates: an empty, binary or endless CA file is refused here, in one
    line, rather than by the TLS library at the first request (a traceback) or never (a FIFO blocks)."""
    if value is None:
        return None
    try:
        read_certificates(value, MAX_BYTES)
    except ReadError as exc:
        if not value.exists():
            raise ValueError(f"file {value} does not exist") from None
        raise ValueError(f"file {value}: {exc}") from None
    return value


def check_unit_source(source: str) -> str:
    """`flux`, `helm`, `argocd` or `label:KEY`; ValueError otherwise."""
    if source in UNIT_SOURCES or (source.startswith("label:") and len(source) > len("label:")):
        return source
    raise ValueError(f"unknown unit source {source!r} (flux, helm, argocd or label:KEY)")


StrList = list[str]  # from the environment: JSON or comma-separated (`_split`)


def _duration_type(key: str) -> Any:
    low, high = RANGES[key]
    return Annotated[
        float,
        BeforeValidator(lambda value: duration_in(key, value)),
        WithJsonSchema({"anyOf": [{"type": "number", "minimum": low, "maximum": high},
                                  {"type": "string", "pattern": SETTING_PATTERN}],
                        "description": f"Go duration (500ms, 30s, 5m, 1h30m) or seconds, {describe_range(key)}"}),
    ]


Rate = Annotated[
    float | None,
    BeforeValidator(_rate),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": RANGES["rate"][0], "maximum": RANGES["rate"][1]},
                              {"type": "null"}],
                    "description": "requests per second"}),
]
CaFile = Annotated[Path | None, AfterValidator(_ca_file)]


class RegistryOptions(BaseModel):
    """Per-registry settings (`registries: {HOST: {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int | None = Field(default=None, ge=1, le=256)
    rate: Rate = None
    insecure: bool = False  # plain HTTP
    skip_verify: bool = False
    ca_file: CaFile = None
    mirrors: list[str] = []


class Settings(BaseModel):
    """All settings (documented in the README's configuration table)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    listen: str = "0.0.0.0:9706"
    kubeconfig: Path | None = None
    contexts: StrList = []
    cluster_name: str | None = None
    expected: StrList = []
    interval: _duration_type("interval") = Field(default=60.0, description="time between snapshots")
    namespaces: StrList = []
    exclude_namespaces: StrList = []
    namespace_selector: str | None = None
    ignore: StrList = []
    unit_sources: StrList = ["flux"]
    docker_config: StrList = []
    ca_file: CaFile = None
    insecure_registries: StrList = []
    skip_verify: StrList = []
    registry_mirrors: StrList = []
    concurrency: int | None = Field(default=None, ge=1, le=256,
                                    description="cap on requests in flight per registry (unset: adaptive)")
    rate: Rate = Field(default=None, description="cap on requests per second per registry (unset: adaptive)")
    registries: dict[str, RegistryOptions] = {}
    # The node's view (REFERENCE.md §10-11): the kubelet's credential providers and docker config, the runtime's mirrors.
    image_credential_provider_config: Path | None = None
    image_credential_provider_bin_dir: Path | None = None
    kubelet_root_dir: Path | None = None
    containerd_hosts_dir: Path | None = None
    registries_conf: Path | None = None
    service_account_tokens: bool = False  # tokens of workloads' ServiceAccounts for providers with tokenAttributes
    watch_down_threshold: _duration_type("watch_down_threshold") = Field(default=300.0, description="failing list/watch time before not ready")
    rollback_images: StrList = []  # namespaces whose Helm release revisions are checked (reads their Secrets)
    require_signatures: StrList = []  # image globs a signature is required for (a verifier outside the cluster)
    retention_sources: StrList = []  # KIND=REGISTRY_HOST: cleanup policies read for a forecast (harbor=HOST)
    retention_interval: _duration_type("retention_interval") = Field(default=3600.0,
                                                                    description="time between policy readings")
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
        "require_signatures", "retention_sources", mode="before",
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

    @field_validator("retention_sources")
    @classmethod
    def _retention_sources(cls, value: list[str]) -> list[str]:
        if not value:  # every command validates its settings: none reads policies unasked (0.3 s of imports)
            return value
        from exporter.sources.registry.retention import parse_spec

        for item in value:
            parse_spec(item)
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
    """Settings from a YAML file, then the environment, then flags (those not None), merged key by key and
    validated once; ConfigError naming each bad key (`environment: KUBE_IMAGE_EXPORTER_KEY` for a variable)."""
    file_values = _read_file(Path(config_file)) if config_file is not None else {}
    explicit = {k: v for k, v in (flags or {}).items() if v is not None and v != []}
    merged: dict[str, Any] = {}
    from_env: set[str] = set()
    for values, environment in ((file_values, False), (_environment(), True), (explicit, False)):
        for key, value in values.items():
            merged[key] = value
            (from_env.add if environment else from_env.discard)(key)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, from_env)) from None


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


def _describe(exc: ValidationError, from_env: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    problems = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        if not parts:  # a check across keys: its message names them
            problems.append(message)
            continue
        key = parts[0]
        name = f"environment: {ENV_PREFIX}{key.upper()}" if key in from_env else key
        problems.append(f"{'.'.join([name, *parts[1:]])}: {message}")
    return "invalid configuration: " + "; ".join(problems)
