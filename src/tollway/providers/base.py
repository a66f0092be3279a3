"""The `Provider` protocol and the factory that turns config into adapters.

A provider knows how to address its upstream: the URL for an API and the
headers that carry its credential. Everything else (bodies, streams, usage)
is shaped by the API the client called, not by the provider, so provider
differences stay in these small adapters.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from tollway.errors import ConfigError
from tollway.metering.pricing import Discount

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tollway.gateway.apis import ApiSpec
    from tollway.settings import ProviderConfig


class Provider(Protocol):
    """An upstream that serves one or both API dialects."""

    name: str
    in_house: bool
    discount_ppm: int
    timeout_s: float
    connect_timeout_s: float

    def supports(self, dialect: str) -> bool:
        """Whether this upstream speaks `dialect` ("openai" or "anthropic")."""
        ...

    def upstream_url(self, api: ApiSpec) -> str:
        """Absolute URL of `api` on this upstream."""
        ...

    def upstream_headers(self, api: ApiSpec, client_headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for the upstream call: credential, content type, passed-through API headers."""
        ...


class _HttpProvider:
    """Shared state of the HTTP adapters."""

    dialects: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig, base_url: str, api_key: str | None) -> None:
        self.name = config.name
        self.in_house = config.in_house
        self.timeout_s = config.timeout_s
        self.connect_timeout_s = config.connect_timeout_s
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.extra_headers = dict(config.headers)
        self.discount_ppm = Discount.parse(
            config.discount, name=f"providers[{config.name}].discount"
        ).ppm

    def supports(self, dialect: str) -> bool:
        return dialect in self.dialects


def _read_api_key(config: ProviderConfig) -> str | None:
    if not config.api_key_env:
        return None
    value = os.environ.get(config.api_key_env)
    if value is None:
        raise ConfigError(
            f"providers[{config.name}].api_key_env: environment variable "
            f"{config.api_key_env} is not set"
        )
    return value


def build_provider(config: ProviderConfig, *, simulated_base_url: str | None = None) -> Provider:
    """Build the adapter for one configured provider."""
    from tollway.providers.anthropic import AnthropicProvider
    from tollway.providers.openai import OpenAIProvider
    from tollway.providers.simulated_upstream import SimulatedUpstream

    if config.kind == "openai":
        return OpenAIProvider(config, config.base_url or "", _read_api_key(config))
    if config.kind == "anthropic":
        return AnthropicProvider(config, config.base_url or "", _read_api_key(config))
    base = config.base_url or simulated_base_url
    if base is None:
        raise ConfigError(f"providers[{config.name}]: the simulated provider is not running")
    return SimulatedUpstream(config, base, _read_api_key(config) or "sim-key")
