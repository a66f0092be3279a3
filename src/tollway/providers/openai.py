"""OpenAI-compatible upstreams: OpenAI, vLLM, llama.cpp, Ollama and the like."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollway.providers.base import _HttpProvider

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tollway.gateway.apis import ApiSpec

# Client headers that carry API semantics and are passed through untouched.
_PASSTHROUGH = ("openai-beta",)


class OpenAIProvider(_HttpProvider):
    """Speaks the OpenAI dialect; `base_url` includes the version, e.g. `https://api.openai.com/v1`."""

    dialects = frozenset({"openai"})

    def upstream_url(self, api: ApiSpec) -> str:
        return self.base_url + api.openai_suffix

    def upstream_headers(self, api: ApiSpec, client_headers: Mapping[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        for name in _PASSTHROUGH:
            if name in client_headers:
                headers[name] = client_headers[name]
        return headers
