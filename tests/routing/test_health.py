"""Passive health, retry budgets, least-busy selection and fallback models."""

from __future__ import annotations

from tollway.metering.catalog import PriceCatalog
from tollway.providers import build_provider
from tollway.routing.health import DeploymentHealth, RetryBudget
from tollway.routing.table import RouteTable
from tollway.settings import parse_settings


def table() -> RouteTable:
    settings = parse_settings(
        {
            "providers": [{"name": "a", "kind": "simulated"}, {"name": "b", "kind": "simulated"}],
            "models": [
                {
                    "name": "big",
                    "strategy": "least-busy",
                    "fallbacks": ["small"],
                    "deployments": [
                        {"provider": "a", "id": "big-a"},
                        {"provider": "b", "id": "big-b"},
                    ],
                },
                {"name": "small", "deployments": [{"provider": "a", "id": "small-a"}]},
            ],
        }
    )
    providers = {
        p.name: build_provider(p, simulated_base_url="http://sim") for p in settings.providers
    }
    return RouteTable.build(settings.models, providers, PriceCatalog.load_default())


def test_cool_down_after_consecutive_failures_then_recover() -> None:
    health = DeploymentHealth(failures_to_cool=3, cooldown_s=30)
    for _ in range(2):
        health.failed("d", now=0)
    health.succeeded("d")
    health.failed("d", now=0)
    health.failed("d", now=0)
    assert not health.cooling("d", now=1)
    health.failed("d", now=1)
    assert health.cooling("d", now=2) and health.cooling("d", now=30.9)
    assert not health.cooling("d", now=31.1)


def test_retry_budget_caps_retries_at_a_fraction_of_traffic() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0, cap=100)
    budget._tokens = 0  # a cold bucket
    allowed = 0
    for _ in range(1000):
        budget.deposit()
        allowed += budget.try_spend(now=budget._last)
    assert 95 <= allowed <= 100


def test_least_busy_then_fallback_models_and_cooling_last() -> None:
    routes = table()
    big = routes.resolve("big", "openai")
    order = [d.id for d in routes.attempt_order(big, "openai")]
    assert order[-1] == "small-a" and set(order[:2]) == {"big-a", "big-b"}
    routes.health.started("big-a")
    assert [d.id for d in routes.attempt_order(big, "openai")] == ["big-b", "big-a", "small-a"]
    for _ in range(3):
        routes.health.failed("big-b")
    assert [d.id for d in routes.attempt_order(big, "openai")] == ["big-a", "small-a", "big-b"]
