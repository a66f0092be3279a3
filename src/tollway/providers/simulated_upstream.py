"""The built-in simulated provider, addressed over HTTP like any other upstream.

The simulator (`tollway.providers.simulated`) speaks both dialects, so this
adapter routes each API to the matching real adapter's addressing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.providers.anthropic import AnthropicProvider
from tollway.providers.base import _HttpProvider
from tollway.providers.openai import OpenAIProvider

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tollway.gateway.apis import ApiSpec


class SimulatedUpstream(_HttpProvider):
    """Both dialects on one base URL (`http://127.0.0.1:PORT`)."""

    dialects = frozenset({"openai", "anthropic"})

    def upstream_url(self, api: ApiSpec) -> str:
        if api.dialect == "anthropic":
            return self.base_url + api.path
        return self.base_url + "/v1" + api.openai_suffix

    def upstream_headers(self, api: ApiSpec, client_headers: Mapping[str, str]) -> dict[str, str]:
        adapter = AnthropicProvider if api.dialect == "anthropic" else OpenAIProvider
        return adapter.upstream_headers(self, api, client_headers)  # type: ignore[arg-type]
