"""Budgets, rate limits and the peak schedule from their two sources: config and the admin API.

Both sources use the same mappings, so one parser serves them; policies stored through
the admin API (`tollway.ledger.policies.PolicyStore`) are merged over the config's, an
entry with the same id replacing the config's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollway.budgets.model import BudgetSpec, RateLimitSpec, parse_budgets, parse_rate_limits
from tollway.ledger.policies import PolicyStore
from tollway.metering.peak import PeakSchedule
from tollway.settings import Settings


@dataclass(frozen=True, slots=True)
class Policies:
    """Everything the budget engine enforces, parsed."""

    budgets: tuple[BudgetSpec, ...]
    rate_limits: tuple[RateLimitSpec, ...]
    schedule: PeakSchedule
    sources: Mapping[str, str]  # spec id -> "config" | "api"


def parse_policies(
    budgets: Sequence[Mapping[str, Any]],
    rate_limits: Sequence[Mapping[str, Any]],
    peak: Mapping[str, Any] | None,
    default_timezone: str,
    *,
    api_budgets: Sequence[tuple[str, Mapping[str, Any]]] = (),
    api_rate_limits: Sequence[tuple[str, Mapping[str, Any]]] = (),
    api_peak: Mapping[str, Any] | None = None,
) -> Policies:
    """Parse config policies, then overlay those stored through the admin API (by id)."""
    specs = {s.id: s for s in parse_budgets(list(budgets), default_timezone=default_timezone)}
    sources = dict.fromkeys(specs, "config")
    for policy_id, body in api_budgets:
        (spec,) = parse_budgets(
            [{**body, "id": policy_id}],
            default_timezone=default_timezone,
            where=f"budget {policy_id}",
        )
        specs[spec.id] = spec
        sources[spec.id] = "api"
    rates = {r.id: r for r in parse_rate_limits(list(rate_limits))}
    sources.update(dict.fromkeys(rates, "config"))
    for policy_id, body in api_rate_limits:
        for rate in parse_rate_limits([dict(body)], where=f"rate limit {policy_id}"):
            rates[rate.id] = rate
            sources[rate.id] = "api"
    peak_raw = api_peak if api_peak is not None else peak
    schedule = (
        PeakSchedule.from_config(peak_raw)
        if peak_raw is not None
        else PeakSchedule.default(default_timezone)
    )
    return Policies(tuple(specs.values()), tuple(rates.values()), schedule, sources)


def load_policies(settings: Settings, store: PolicyStore) -> Policies:
    """The config's policies overlaid with those stored through the admin API."""
    return parse_policies(
        settings.budgets,
        settings.rate_limits,
        settings.peak,
        settings.budget_defaults.timezone,
        api_budgets=store.list("budget"),
        api_rate_limits=store.list("rate_limit"),
        api_peak=store.get("peak_schedule", "default"),
    )
