"""The models simulated members use, named and priced exactly as the gateway would.

Roles come from the config: completions and batch jobs go to the first in-house model (by
its first alias, e.g. `coding`, when it has one); chat and agents to a vendor model over
the OpenAI API and to a Claude model over the Anthropic API when the config has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.errors import ConfigError
from tollway.metering.catalog import Price, PriceCatalog
from tollway.metering.pricing import Discount
from tollway.settings import ModelConfig, ProviderConfig, Settings

_NO_PRICE = Price(0, 0, 0, 0)
# Typical time to first token (ms) and generation speed (tokens/s) per role.
_SPEEDS = {"in_house": (120.0, 160.0), "openai": (380.0, 85.0), "anthropic": (520.0, 65.0)}


@dataclass(frozen=True, slots=True)
class SimModel:
    """One model as a client asks for it and as the ledger records it."""

    requested: str  # what clients send (may be an alias)
    served: str  # the deployment's upstream model
    provider: str
    deployment: str
    api: str  # "openai.chat" | "anthropic.messages"
    price: Price
    discount_ppm: int
    ttft_ms: float
    tokens_per_s: float


@dataclass(frozen=True, slots=True)
class SimModels:
    """The models by role."""

    coding: SimModel  # IDE completions (in-house)
    batch: SimModel  # service-key batch jobs (in-house)
    openai: SimModel  # chat and agents over the OpenAI API
    anthropic: SimModel  # chat and agents over the Anthropic API

    @classmethod
    def from_settings(cls, settings: Settings) -> SimModels:
        """Pick and price the models of `settings` (ConfigError if it has none to chat with)."""
        catalog = PriceCatalog.load_default().merged(settings.prices)
        providers = {p.name: p for p in settings.providers}
        chat = [m for m in settings.models if not _is_embedding(m)]
        if not chat:
            raise ConfigError("simulate-org needs at least one chat model in the config")
        in_house = next((m for m in chat if _in_house(m, providers)), None)
        vendors = [m for m in chat if m is not in_house] or chat
        claude = next((m for m in vendors if _is_claude(m)), None)
        other = next((m for m in vendors if m is not claude), None) or vendors[0]

        def model(config: ModelConfig, role: str, requested: str | None = None) -> SimModel:
            dep = config.deployments[0]
            upstream = dep.model or config.name
            provider = providers[dep.provider]
            price = _price(config, catalog, upstream)
            ttft, speed = _SPEEDS[role]
            return SimModel(
                requested=requested or config.name,
                served=upstream,
                provider=provider.name,
                deployment=dep.id or f"{dep.provider}/{upstream}#0",
                api="anthropic.messages" if role == "anthropic" else "openai.chat",
                price=price,
                discount_ppm=Discount.parse(provider.discount).ppm,
                ttft_ms=ttft,
                tokens_per_s=speed,
            )

        house = in_house or other
        house_role = "in_house" if in_house is not None else "openai"
        return cls(
            coding=model(house, house_role, (house.aliases or [house.name])[0]),
            batch=model(house, house_role),
            openai=model(other, "openai"),
            anthropic=model(claude, "anthropic") if claude is not None else model(other, "openai"),
        )


def _in_house(model: ModelConfig, providers: dict[str, ProviderConfig]) -> bool:
    return model.in_house or all(providers[d.provider].in_house for d in model.deployments)


def _is_claude(model: ModelConfig) -> bool:
    return "claude" in model.name or "claude" in (model.price_as or "")


def _is_embedding(model: ModelConfig) -> bool:
    return "embed" in model.name or "embed" in (model.price_as or "")


def _price(model: ModelConfig, catalog: PriceCatalog, upstream: str) -> Price:
    """The price the route table gives the model's first deployment."""
    if model.price is not None:
        price = catalog.merged({model.name: model.price}).price_for(model.name)
    elif model.price_as is not None:
        price = catalog.price_for(model.price_as)
    else:
        price = catalog.price_for(upstream)
    return price or _NO_PRICE
