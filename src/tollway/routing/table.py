"""The route table: a model name (or alias) to its deployments, built once from config."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from tollway.errors import ConfigError, InvalidRequest, UnknownModel
from tollway.metering.catalog import Price, PriceCatalog
from tollway.providers import Provider
from tollway.routing.health import DeploymentHealth, RetryBudget
from tollway.settings import ModelConfig


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a model is served: a provider and the model's name there."""

    id: str
    provider: Provider
    upstream_model: str
    weight: int
    price: Price | None

    @property
    def in_house(self) -> bool:
        return self.provider.in_house


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A public model: its deployments, in configured order."""

    name: str
    deployments: tuple[Deployment, ...]
    max_output_tokens: int | None
    in_house: bool
    price: Price | None
    aliases: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    strategy: str = "weighted"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def attempt_order(
        self, dialect: str, rng: random.Random, health: DeploymentHealth
    ) -> list[Deployment]:
        """This model's deployments for one request: the pick first (weighted or least busy),
        the others as fallbacks."""
        usable = [d for d in self.deployments if d.provider.supports(dialect)]
        if len(usable) > 1:
            if self.strategy == "least-busy":
                usable.sort(key=lambda d: health.in_flight[d.id])
            else:
                weights = [d.weight for d in usable]
                if sum(weights) > 0:
                    first = rng.choices(range(len(usable)), weights=weights)[0]
                    usable = [usable[first], *usable[:first], *usable[first + 1 :]]
        return usable


class RouteTable:
    """Resolves public model names and aliases; immutable after construction."""

    def __init__(self, routes: Mapping[str, ModelRoute]) -> None:
        self._routes = dict(routes)
        self._rng = random.Random()
        self.health = DeploymentHealth()
        self._retry_budgets = {route.name: RetryBudget() for route in routes.values()}

    @classmethod
    def build(
        cls,
        models: list[ModelConfig],
        providers: Mapping[str, Provider],
        catalog: PriceCatalog,
    ) -> RouteTable:
        routes: dict[str, ModelRoute] = {}
        for i, model in enumerate(models):
            model_price = _model_price(model, catalog, f"models[{i}]")
            deployments = tuple(
                Deployment(
                    id=dep.id or f"{dep.provider}/{dep.model or model.name}#{j}",
                    provider=providers[dep.provider],
                    upstream_model=dep.model or model.name,
                    weight=dep.weight,
                    price=model_price or catalog.price_for(dep.model or model.name),
                )
                for j, dep in enumerate(model.deployments)
            )
            in_house = model.in_house or all(d.in_house for d in deployments)
            route = ModelRoute(
                model.name,
                deployments,
                model.max_output_tokens,
                in_house,
                model_price,
                tuple(model.aliases),
                tuple(model.fallbacks),
                model.strategy,
            )
            for name in route.names:
                routes[name] = route
        return cls(routes)

    def resolve(self, model: str, dialect: str) -> ModelRoute:
        """The route for `model`: `UnknownModel` if none, `InvalidRequest` if not in `dialect`."""
        route = self._routes.get(model)
        if route is None:
            raise UnknownModel(model)
        if not any(d.provider.supports(dialect) for d in route.deployments):
            api = "Anthropic Messages" if dialect == "anthropic" else "OpenAI"
            raise InvalidRequest(
                f"The model '{model}' is not served over the {api} API on this gateway.",
                param="model",
            )
        return route

    def attempt_order(self, route: ModelRoute, dialect: str) -> list[Deployment]:
        """The route's deployments, then those of its fallback models (that speak `dialect`);
        deployments cooling down after failures go last, as a last resort."""
        order = route.attempt_order(dialect, self._rng, self.health)
        for name in route.fallbacks:
            fallback = self._routes[name]
            order += [
                d for d in fallback.attempt_order(dialect, self._rng, self.health) if d not in order
            ]
        return sorted(order, key=lambda d: self.health.cooling(d.id))  # stable sort

    def retry_budget(self, route: ModelRoute) -> RetryBudget:
        return self._retry_budgets[route.name]

    def public_models(self) -> list[ModelRoute]:
        """Each route once, under its primary name, sorted."""
        unique = {id(r): r for r in self._routes.values()}
        return sorted(unique.values(), key=lambda r: r.name)


def _model_price(model: ModelConfig, catalog: PriceCatalog, where: str) -> Price | None:
    if model.price is not None:
        return catalog.merged({model.name: model.price}).price_for(model.name)
    if model.price_as is not None:
        price = catalog.price_for(model.price_as)
        if price is None:
            raise ConfigError(f"{where}.price_as: '{model.price_as}' is not in the price catalog")
        return price
    return None
