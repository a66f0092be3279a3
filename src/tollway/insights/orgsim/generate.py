"""Generating an organisation's traffic over a window: per member, day by day, deterministic.

Each member draws from a random stream of its own (seeded by the org's seed and the
member's index), so a member's trace does not depend on who else is simulated or in which
process: backfill can split members across workers and still write the same rows.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from tollway.insights.orgsim.activity import Activity, Recorder
from tollway.insights.orgsim.behaviour import MemberContext, batch_job, normal_day, plan_day
from tollway.insights.orgsim.clock import DAY_MS, LocalDay, local_days
from tollway.insights.orgsim.gaming import gamer_state, gaming_day
from tollway.insights.orgsim.models import SimModels
from tollway.insights.orgsim.outcomes import OutcomeMaker
from tollway.insights.orgsim.texts import TextBank, TextPools
from tollway.insights.orgsim.truth import Episode, Member, OrgTruth
from tollway.ledger.outcomes import Outcome
from tollway.ledger.record import LedgerRecord

# Script-like habits leave less time for ordinary work.
_SCRIPTED = frozenset({"duplicate_loop", "near_duplicate_loop", "scripted_burst"})


@dataclass(slots=True)
class MemberTrace:
    """What one member did in the window: activities (with their records), outcomes, and
    the labelled episodes (gaming, or sanctioned batch jobs)."""

    member: Member
    activities: list[Activity] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    records: list[LedgerRecord] = field(default_factory=list)  # all of them, by start


class OrgSimulator:
    """Generates the traffic of `truth`'s members over the `days` before `end_ms`."""

    def __init__(
        self,
        truth: OrgTruth,
        models: SimModels,
        *,
        end_ms: int,
        days: float,
        pool_size: int | None = None,
    ) -> None:
        if days <= 0:
            raise ValueError("days must be positive")
        self.truth = truth
        self.models = models
        self.end_ms = end_ms
        self.start_ms = end_ms - int(days * DAY_MS)
        spec = truth.spec
        self.run_id = run_id(truth, self.start_ms, end_ms)
        self.bank = TextBank()
        # Big enough that one member rarely meets the same text twice in a day (the
        # near-duplicate detector would see a loop).
        size = pool_size or min(1500, max(600, 6 * spec.users))
        self.pools = TextPools.draw(spec.seed, self.bank, size)
        self._days: dict[str, list[LocalDay]] = {
            t.timezone: local_days(t.timezone, self.start_ms, end_ms) for t in truth.teams
        }

    @property
    def window(self) -> tuple[int, int]:
        return self.start_ms, self.end_ms

    def traces(self, members: Iterable[Member] | None = None) -> Iterator[MemberTrace]:
        """Each member's trace, in member order."""
        for member in self.truth.members if members is None else members:
            yield self.trace(member)

    def records(self) -> Iterator[LedgerRecord]:
        """Every record of every member."""
        for trace in self.traces():
            yield from trace.records

    def trace(self, member: Member) -> MemberTrace:
        """What `member` did, day by day in the team's timezone."""
        spec = self.truth.spec
        rng = random.Random(f"orgsim:{spec.seed}:member:{member.index}")
        recorder = Recorder(member, spec.org, self.run_id, self.window, rng)
        ctx = MemberContext(
            member, rng, recorder, self.pools, self.models, self.bank, rng.uniform(0.1, 0.7)
        )
        maker = OutcomeMaker(member, spec.org, self.run_id, self.end_ms, rng)
        state = gamer_state(ctx) if member.is_gamer else None
        level = member.level * (0.8 if _SCRIPTED & set(member.gamer_kinds) else 1.0)
        trace = MemberTrace(member)
        for day in self._days[member.team.timezone]:
            work = plan_day(rng, member, day)
            if work is not None:
                ctx.lunch_ms = (day.at(work.lunch_h[0]), day.at(work.lunch_h[1]))
            today = normal_day(ctx, work, level) if work is not None else []
            if state is not None:
                for kind in member.gamer_kinds:
                    today += gaming_day(ctx, kind, state, work, day)
            if member.service_job:
                today.append(batch_job(ctx, day))
            for activity in today:
                if not activity.turns:
                    continue
                trace.activities.append(activity)
                trace.outcomes += maker.after(activity)
                if activity.gaming or activity.kind == "batch_job":
                    trace.episodes.append(_episode(activity))
        trace.records = [turn.record for a in trace.activities for turn in a.turns]
        recorder.number(trace.records)
        return trace


def run_id(truth: OrgTruth, start_ms: int, end_ms: int) -> str:
    """A short digest of what is simulated over which window: part of every request id
    and outcome id, so running the same simulation twice stores nothing twice."""
    spec = truth.spec
    key = repr((sorted(spec.as_dict().items()), spec.team_specs, start_ms, end_ms))
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _episode(activity: Activity) -> Episode:
    starts = [t.record.started_at_ms for t in activity.turns]
    return Episode(
        activity.user,
        activity.kind,
        min(starts),
        max(t.record.finished_at_ms for t in activity.turns),
        len(activity.turns),
        gaming=activity.gaming,
    )
