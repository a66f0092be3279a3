"""Configuration: environment + YAML, validated once at start.

The YAML file (``--config`` or ``TOLLWAY_CONFIG``) declares providers, models
and their deployments, price overrides and the org tree. Everything is
optional: with no file, Tollway runs its embedded defaults (SQLite under the
data dir, the built-in simulated provider, a demo org). Invalid configuration
raises `ConfigError` with a message that names the offending field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tollway.errors import ConfigError
from tollway.insights.config import InsightsConfig

if TYPE_CHECKING:
    from tollway.routing.steering import Steering

ProviderKind = Literal["openai", "anthropic", "simulated"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(4000, ge=0, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    ledger_sync: Literal["normal", "full"] = "normal"


class SimulatedConfig(_Strict):
    """Latency and behaviour of the built-in simulated provider."""

    ttft_ms: float = Field(0, ge=0)
    tokens_per_s: float = Field(0, ge=0)
    default_output_tokens: int = Field(32, ge=0)


class CountersConfig(_Strict):
    """Where budget and rate-limit counters live, and what happens when that store is down."""

    redis_url: str | None = None  # or TOLLWAY_REDIS_URL; none = in-process counters
    failure_mode: Literal["closed", "open-bounded"] = "closed"
    open_fraction: float | str = "0.05"


class BudgetDefaults(_Strict):
    timezone: str = "UTC"
    default_max_output_tokens: int = Field(4096, gt=0)
    reservation_ttl_s: int = Field(900, gt=0)


LogMode = Literal["off", "metadata", "full"]


class PromptLoggingConfig(_Strict):
    """What is kept of prompts: per org and team (`org/team`), with a retention period.

    Off unless configured: scanning and storing cost CPU on every request, and an
    operator should choose to keep anything about prompts."""

    default: LogMode = "off"
    retention_days: float = Field(30, gt=0)
    orgs: dict[str, LogMode] = Field(default_factory=dict)
    teams: dict[str, LogMode] = Field(default_factory=dict)


class ProviderConfig(_Strict):
    name: str = Field(min_length=1)
    kind: ProviderKind
    base_url: str | None = None
    api_key_env: str | None = None
    discount: float | str = 0
    timeout_s: float = Field(600, gt=0)
    connect_timeout_s: float = Field(10, gt=0)
    in_house: bool = False
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_base_url(self) -> ProviderConfig:
        if self.kind != "simulated" and not self.base_url:
            raise ValueError(f"base_url is required for a provider of kind '{self.kind}'")
        return self


class DeploymentConfig(_Strict):
    provider: str
    model: str | None = None
    weight: int = Field(1, ge=0)
    id: str | None = None


class ModelConfig(_Strict):
    name: str = Field(min_length=1)
    deployments: list[DeploymentConfig] = Field(min_length=1)
    price: dict[str, Any] | None = None
    price_as: str | None = None
    max_output_tokens: int | None = Field(None, gt=0)
    in_house: bool = False
    aliases: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)  # other models, tried after these
    strategy: Literal["weighted", "least-busy"] = "weighted"


class TeamConfig(_Strict):
    name: str = Field(min_length=1)
    users: list[str] = Field(default_factory=list)


class OrgConfig(_Strict):
    name: str = Field(min_length=1)
    teams: list[TeamConfig] = Field(default_factory=list)


class Settings(_Strict):
    """The whole validated configuration."""

    server: ServerConfig = ServerConfig()
    database_url: str | None = None
    data_dir: str | None = None
    simulated: SimulatedConfig = SimulatedConfig()
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    prices: dict[str, Any] = Field(default_factory=dict)
    orgs: list[OrgConfig] = Field(default_factory=list)
    demo: bool = False
    budgets: list[dict[str, Any]] = Field(default_factory=list)
    rate_limits: list[dict[str, Any]] = Field(default_factory=list)
    peak: dict[str, Any] | None = None
    steering: list[dict[str, Any]] | None = None  # None: the default ladder, [] for none
    budget_defaults: BudgetDefaults = BudgetDefaults()
    prompt_logging: PromptLoggingConfig = PromptLoggingConfig()
    counters: CountersConfig = CountersConfig()
    insights: InsightsConfig = InsightsConfig()

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, v: list[ProviderConfig]) -> list[ProviderConfig]:
        _reject_duplicates([p.name for p in v], "providers")
        return v

    @model_validator(mode="after")
    def _references_resolve(self) -> Settings:
        names = {p.name for p in self.providers}
        public: list[str] = []
        for i, model in enumerate(self.models):
            public += [model.name, *model.aliases]
            for j, dep in enumerate(model.deployments):
                if dep.provider not in names:
                    raise ValueError(
                        f"models[{i}].deployments[{j}].provider: unknown provider "
                        f"'{dep.provider}' (declared: {sorted(names) or 'none'})"
                    )
        _reject_duplicates(public, "models (names and aliases)")
        for i, model in enumerate(self.models):
            for j, other in enumerate(model.fallbacks):
                if other not in public or other in (model.name, *model.aliases):
                    raise ValueError(f"models[{i}].fallbacks[{j}]: no other model '{other}'")
        return self

    @model_validator(mode="after")
    def _policies_parse(self) -> Settings:
        # Parsed again at start; here only so that a bad budget fails the config load.
        from tollway.budgets.policies import parse_policies

        parse_policies(self.budgets, self.rate_limits, self.peak, self.budget_defaults.timezone)
        self.steering_rules()
        return self

    def steering_rules(self, override: list[dict[str, Any]] | None = None) -> Steering:
        """The compiled steering rules: `override` (set through the admin API), else as
        configured, else the default ladder toward the first in-house model."""
        from tollway.routing.steering import Steering, default_ladder

        raw = override if override is not None else self.steering
        if raw is None:
            in_house = next((m.name for m in self.models if m.in_house), None)
            raw = default_ladder(in_house) if in_house else []
        steering = Steering.from_config(raw)
        served = {name for m in self.models for name in (m.name, *m.aliases)}
        for i, rule in enumerate(steering.rules):
            target = rule.actions.route_to
            if target is not None and target not in served:
                raise ConfigError(f"steering[{i}].then.route_to: no model or alias '{target}'")
        return steering

    @property
    def resolved_redis_url(self) -> str | None:
        return os.environ.get("TOLLWAY_REDIS_URL") or self.counters.redis_url

    @property
    def resolved_data_dir(self) -> Path:
        return Path(
            self.data_dir
            or os.environ.get("TOLLWAY_DATA_DIR")
            or Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "tollway"
        )

    @property
    def resolved_database_url(self) -> str:
        url = os.environ.get("TOLLWAY_DATABASE_URL") or self.database_url
        return url or f"sqlite:///{self.resolved_data_dir / 'tollway.db'}"


def _reject_duplicates(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where}: '{name}' is declared twice")
        seen.add(name)


DEMO_ORG = OrgConfig(
    name="demo",
    teams=[
        TeamConfig(name="platform", users=["alice", "bob"]),
        TeamConfig(name="payments", users=["carol", "dave"]),
        TeamConfig(name="research", users=["erin"]),
    ],
)


def embedded_defaults() -> dict[str, Any]:
    """The configuration `tollway serve` runs with when given no file."""
    return {
        "demo": True,
        "providers": [{"name": "sim", "kind": "simulated", "in_house": False}],
        "models": [
            {"name": "gpt-sim", "price_as": "gpt-5.4", "deployments": [{"provider": "sim"}]},
            {
                "name": "claude-sim",
                "price_as": "claude-sonnet-4-6",
                "deployments": [{"provider": "sim"}],
            },
            {
                "name": "inhouse-sim",
                "in_house": True,
                "price": {"input": "0.05", "cached_input": "0.005", "output": "0.20"},
                "deployments": [{"provider": "sim"}],
                "aliases": ["coding"],
            },
            {
                "name": "embed-sim",
                "price_as": "text-embedding-3-small",
                "deployments": [{"provider": "sim"}],
            },
        ],
        "orgs": [DEMO_ORG.model_dump()],
        # Something for the graded ladder (the default steering) to act on.
        "budgets": [
            {
                "scope": "team",
                "subject": f"demo/{team.name}",
                "window": "month",
                "soft_limit": "$20",
                "hard_limit": "$25",
            }
            for team in DEMO_ORG.teams
        ],
        "prompt_logging": {"default": "metadata"},
    }


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate settings from `path`, `TOLLWAY_CONFIG`, or the embedded defaults."""
    path = path or os.environ.get("TOLLWAY_CONFIG")
    if not path:
        return parse_settings(embedded_defaults(), source="embedded defaults")
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return parse_settings(raw or {}, source=str(path))


def parse_settings(raw: Any, *, source: str = "config") -> Settings:
    """Validate a parsed mapping; errors name the field path, e.g. `models[0].deployments`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_field_path(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
