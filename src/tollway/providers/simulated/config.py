"""Settings of the simulated provider: latency, output length, caching, models, faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

DEFAULT_MODELS: tuple[str, ...] = ("gpt-sim", "claude-sim", "inhouse-sim", "reasoner-sim")
"""Models listed by `GET /v1/models` when `SimConfig.models` is empty (any name is accepted)."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulated provider behaves; immutable, read on the hot path without locks.

    Latency: the first token comes `ttft_ms` after the request, then one token every
    `1 / tokens_per_s` seconds (0 = instantaneous). `model_latency` overrides both per model.
    """

    ttft_ms: float = 0
    tokens_per_s: float = 0
    default_output_tokens: int = 32
    embedding_dims: int = 8
    cache_min_tokens: int = 1024
    cache_block: int = 128
    cache_entries: int = 10_000
    models: tuple[str, ...] = ()
    reasoning_models: tuple[str, ...] = ()
    require_api_key: bool = True
    seed: int = 0
    model_latency: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    faults: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.default_output_tokens < 0 or self.embedding_dims < 1:
            raise ValueError("default_output_tokens must be >= 0 and embedding_dims >= 1")
        if self.cache_block < 1 or self.cache_entries < 1:
            raise ValueError("cache_block and cache_entries must be >= 1")
        if self.ttft_ms < 0 or self.tokens_per_s < 0:
            raise ValueError("ttft_ms and tokens_per_s must be >= 0")
        # Freeze what callers may pass as mutable containers.
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "reasoning_models", tuple(self.reasoning_models))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "model_latency", MappingProxyType(dict(self.model_latency)))

    def accepts_model(self, model: str) -> bool:
        """Whether `model` is served (every name is when `models` is empty)."""
        return not self.models or model in self.models

    def is_reasoning(self, model: str) -> bool:
        """Reasoning models spend hidden tokens: listed ones and any name containing "reason"."""
        return model in self.reasoning_models or "reason" in model

    def latency(self, model: str) -> tuple[float, float]:
        """`(ttft_s, seconds_per_token)` for `model`; zeros mean no waiting."""
        ttft_ms, tps = self.model_latency.get(model, (self.ttft_ms, self.tokens_per_s))
        return ttft_ms / 1000.0, (1.0 / tps if tps > 0 else 0.0)

    def listed_models(self) -> tuple[str, ...]:
        """The models `GET /v1/models` lists."""
        return self.models or DEFAULT_MODELS
