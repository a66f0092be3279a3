"""What counts as in-house traffic, from the settings.

The ledger writer classifies each request as it is written (`user_daily.in_house_tokens`),
so changing `in_house` later affects new traffic only.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollway.ledger.daily import DailyTracker
from tollway.settings import Settings


@dataclass(frozen=True, slots=True)
class InHouse:
    """What counts as in-house: served model names and provider names."""

    models: frozenset[str] = frozenset()
    providers: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> InHouse:
        """Models marked `in_house` (by public and upstream name) and in-house providers."""
        models: set[str] = set()
        for model in settings.models:
            if model.in_house:
                models.update((model.name, *(d.model or model.name for d in model.deployments)))
        providers = {p.name for p in settings.providers if p.in_house}
        return cls(frozenset(models), frozenset(providers))


def daily_tracker(settings: Settings) -> DailyTracker:
    """The `user_daily` tracker for these settings: exempt tags and in-house sets."""
    in_house = InHouse.from_settings(settings)
    return DailyTracker(
        settings.insights.detection.exempt_tags, in_house.models, in_house.providers
    )
