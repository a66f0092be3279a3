"""Outcomes of real work: merged PRs and done tickets within hours of the AI use behind them,
sometimes a revert or an incident that points back at a PR.

Only ordinary activities yield outcomes; gaming and batch jobs never do. Gamers yield fewer
than their peers from their ordinary work too, and `no_outcome` gamers none at all.
"""

from __future__ import annotations

import math
import random

from tollway.insights.orgsim.activity import Activity
from tollway.insights.orgsim.truth import Member
from tollway.ledger.outcomes import Outcome

# Chance that an ordinary activity of each kind ends in an outcome.
OUTCOME_CHANCE = {"ide": 0.3, "agentic": 0.4, "chat": 0.06}
GAMER_PRODUCTIVITY = 0.45  # a gamer's ordinary work yields outcomes this much as often
REVERT_CHANCE = 0.04
INCIDENT_CHANCE = 0.012
SOURCE = "sim"
_HOUR_MS = 3_600_000
_WORDS = tuple(
    "cache retry budget ledger webhook index report checkout flag queue schema".split()  # noqa: SIM905
)


class OutcomeMaker:
    """One member's outcomes, numbered in order (ids are stable for a run)."""

    def __init__(
        self, member: Member, org: str, run_id: str, end_ms: int, rng: random.Random
    ) -> None:
        self.member = member
        self._org = org
        self._prefix = f"sim-{run_id}-{member.index}-"
        self._end = end_ms
        self._rng = rng
        self._n = 0
        if "no_outcome" in member.gamer_kinds:
            self._productivity = 0.0
        else:
            self._productivity = GAMER_PRODUCTIVITY if member.is_gamer else 1.0

    def after(self, activity: Activity) -> list[Outcome]:
        """The outcomes `activity` leads to (none for gaming or automation)."""
        chance = OUTCOME_CHANCE.get(activity.kind, 0.0) * self._productivity
        rng = self._rng
        if activity.gaming or not activity.turns or rng.random() >= chance:
            return []
        at = activity.end_ms + int(rng.lognormvariate(math.log(60), 0.8) * 60_000)
        if rng.random() < 0.75:
            size = int(rng.lognormvariate(math.log(60), 0.9)) + 1
            done = self._make("pr_merged", at, size, "pull")
        else:
            done = self._make("ticket_done", at, rng.choice((1, 2, 3, 5, 8)), "ticket")
        if done is None:
            return []
        made: list[Outcome | None] = [done]
        if done.kind == "pr_merged":
            if rng.random() < REVERT_CHANCE:
                later = at + int(rng.uniform(3, 72) * _HOUR_MS)
                made.append(self._make("revert", later, 1, "pull", refs=(done.outcome_id,)))
            if rng.random() < INCIDENT_CHANCE:
                later = at + int(rng.uniform(2, 96) * _HOUR_MS)
                made.append(
                    self._make("incident", later, rng.randint(1, 3), "incident", (done.outcome_id,))
                )
        return [o for o in made if o is not None]

    def _make(
        self, kind: str, at_ms: int, size: int, where: str, refs: tuple[str, ...] = ()
    ) -> Outcome | None:
        if at_ms >= self._end:
            return None
        self._n += 1
        member, rng = self.member, self._rng
        number = member.index * 10_000 + self._n
        team = member.team.name
        title = f"{kind.replace('_', ' ')}: {rng.choice(_WORDS)} {rng.choice(_WORDS)} fix"
        return Outcome(
            outcome_id=f"{self._prefix}{self._n}",
            kind=kind,
            org=self._org,
            team=team,
            actors=(member.user,),
            occurred_at_ms=at_ms,
            source=SOURCE,
            size=size,
            url=f"https://{where}s.{self._org}.invalid/{team}/{number}",
            title=title,
            refs=refs,
        )
