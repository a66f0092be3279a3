"""Sink configuration: where alerts go, and how hard delivery tries."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tollway.errors import ConfigError

SinkKind = Literal["log", "webhook", "slack"]


class SinkConfig(BaseModel):
    """One alert sink: a log line, a signed JSON webhook, or a Slack incoming webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SinkKind
    name: str | None = Field(None, min_length=1)
    url: str | None = None
    # Kept out of repr so a logged config never shows the signing key.
    secret: str | None = Field(None, min_length=1, repr=False)
    secret_env: str | None = Field(None, min_length=1)
    timeout_s: float = Field(5.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    initial_backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> SinkConfig:
        if self.kind == "log":
            if self.url is not None:
                raise ValueError("url applies only to webhook and slack sinks")
        else:
            _check_http_url(self.kind, self.url)
        if self.kind != "webhook" and (self.secret is not None or self.secret_env is not None):
            raise ValueError("secret and secret_env apply only to webhook sinks")
        if self.secret is not None and self.secret_env is not None:
            raise ValueError("give either secret or secret_env, not both")
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be at least initial_backoff_s")
        # A missing environment variable fails when the config loads, not at the first alert.
        if self.secret_env is not None and not os.environ.get(self.secret_env):
            raise ValueError(_missing_env(self.secret_env))
        return self

    def signing_secret(self) -> str | None:
        """The webhook signing secret (`secret`, or the variable named by `secret_env`)."""
        if self.secret_env is None:
            return self.secret
        value = os.environ.get(self.secret_env)
        if not value:
            raise ConfigError(f"{self.kind} sink: {_missing_env(self.secret_env)}")
        return value


def _missing_env(variable: str) -> str:
    return f"secret_env names environment variable {variable!r}, which is not set or is empty"


def _check_http_url(kind: str, url: str | None) -> None:
    if not url:
        raise ValueError(f"url is required for a {kind} sink")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an absolute http(s) URL, got {url!r}")


def sink_names(configs: Sequence[SinkConfig]) -> list[str]:
    """Each sink's name: its own, else its kind, numbered (`webhook-2`) when several unnamed
    sinks share the kind."""
    unnamed = Counter(config.kind for config in configs if config.name is None)
    seen: Counter[str] = Counter()
    names: list[str] = []
    for config in configs:
        if config.name is not None:
            names.append(config.name)
            continue
        seen[config.kind] += 1
        names.append(
            config.kind if unnamed[config.kind] == 1 else f"{config.kind}-{seen[config.kind]}"
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"alert sinks: duplicate sink name(s) {', '.join(duplicates)}")
    return names
