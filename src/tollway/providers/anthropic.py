"""The Anthropic Messages API upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.providers.base import _HttpProvider

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tollway.gateway.apis import ApiSpec

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_PASSTHROUGH = ("anthropic-beta",)


class AnthropicProvider(_HttpProvider):
    """Speaks the Anthropic dialect; `base_url` has no version, e.g. `https://api.anthropic.com`."""

    dialects = frozenset({"anthropic"})

    def upstream_url(self, api: ApiSpec) -> str:
        return self.base_url + api.path

    def upstream_headers(self, api: ApiSpec, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "anthropic-version": client_headers.get("anthropic-version", DEFAULT_ANTHROPIC_VERSION),
            **self.extra_headers,
        }
        if self.api_key:
            headers["x-api-key"] = self.api_key
        for name in _PASSTHROUGH:
            if name in client_headers:
                headers[name] = client_headers[name]
        return headers
