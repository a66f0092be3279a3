"""The detector step by step on a steady series: k-of-m, hysteresis, cooldown, cold start,
team incidents."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence

from tests.insights.spike_traffic import HOUR, T0, TOKENS, WEEK, opened
from tollway.insights.spikes import (
    ROLLUP_METRIC,
    EntityKey,
    Prior,
    PriorFn,
    SpikeConfig,
    SpikeDetector,
    SpikeEvent,
)


class Steady:
    """A detector fed steady traffic (`level` +/- 5 %, around the clock) after a warm-up."""

    def __init__(
        self,
        config: SpikeConfig | None = None,
        users: Sequence[tuple[str, str]] = (("ada", "search"),),
        *,
        level: float = 100_000.0,
        weeks: int = 2,
        prior: PriorFn | None = None,
    ) -> None:
        self.detector = SpikeDetector(config or SpikeConfig.five_minute(), prior=prior)
        self.width = self.detector.config.width_ms
        self.users = list(users)
        self.levels = {uid: level * (1 + 0.1 * i) for i, (uid, _) in enumerate(self.users)}
        self.rng = random.Random(1)
        self.t = T0
        self.run(weeks * WEEK // self.width)

    def step(
        self,
        mults: Mapping[str, float] | None = None,
        extra: Mapping[EntityKey, Mapping[str, float]] | None = None,
    ) -> list[SpikeEvent]:
        mults = mults or {}
        values: dict[EntityKey, Mapping[str, float]] = {
            ("user", uid, team): {
                TOKENS: self.levels[uid] * mults.get(uid, 1.0) * self.rng.uniform(0.95, 1.05)
            }
            for uid, team in self.users
        }
        values.update(extra or {})
        events = self.detector.observe(self.t, values)
        self.t += self.width
        return events

    def run(self, buckets: int, mults: Mapping[str, float] | None = None) -> list[SpikeEvent]:
        return [e for _ in range(buckets) for e in self.step(mults)]

    def pattern(self, mults: Iterable[float]) -> list[tuple[int, SpikeEvent]]:
        """Step once per multiplier of the first user; events with their step index."""
        uid = self.users[0][0]
        return [(i, e) for i, m in enumerate(mults) for e in self.step({uid: m})]


def test_by_default_two_hits_in_a_row_open_an_alert() -> None:
    s = Steady()
    assert s.pattern([10, 1, 10, 1, 10, 1]) == []  # every other bucket: never 2 in a row
    events = s.pattern([10, 10])
    assert [(i, e.type) for i, e in events] == [(1, "opened")]


def test_a_single_bucket_blip_does_not_alert() -> None:
    s = Steady(SpikeConfig.five_minute(m=3))
    assert s.pattern([10, 1, 1, 1, 1]) == []
    assert s.pattern([10, 1, 1, 10, 1, 1]) == []  # two hits, but never 2 within 3 buckets
    events = s.pattern([10, 1, 10])  # 2 of the last 3
    assert [(i, e.type) for i, e in events] == [(2, "opened")]
    assert [p.hit for p in events[0][1].evidence.window] == [True, False, True]  # type: ignore[union-attr]


def test_a_missed_bucket_is_unknown_in_the_window_and_no_hit() -> None:
    s = Steady(SpikeConfig.five_minute(m=3))
    assert s.pattern([10]) == []
    s.t += s.width  # the feeder skipped a bucket
    events = s.pattern([10])
    assert [e.type for _, e in events] == ["opened"]  # 2 hits within the last 3 buckets
    window = events[0][1].evidence.window  # type: ignore[union-attr]
    assert [p.hit for p in window] == [True, False, True] and math.isnan(window[1].value)


def test_hysteresis_one_alert_on_a_noisy_plateau_near_the_threshold() -> None:
    rng = random.Random(7)
    plateau = [rng.uniform(2.5, 3.5) for _ in range(36)]  # a hit about half the time
    s = Steady(SpikeConfig.five_minute(m=3))
    events = s.pattern([*plateau, 1, 1, 1, 1, 1])
    assert [(i, e.type) for i, e in events] == [(events[0][0], "opened"), (38, "resolved")]
    twitchy = SpikeConfig.five_minute(
        m=3,
        z_resolve=3.5,
        ratio_resolve=3.0,
        resolve_excess_fraction=1.0,
        resolve_run=1,
        cooldown_ms=0,
    )
    flapping = Steady(twitchy).pattern(plateau)
    assert sum(e.type == "opened" for _, e in flapping) > 3  # what hysteresis prevents


def test_cooldown_before_the_same_key_reopens() -> None:
    s = Steady()
    first = s.pattern([5] * 6 + [1] * 3)
    assert [(i, e.type) for i, e in first] == [(1, "opened"), (8, "resolved")]
    resolved_at = first[-1][1].bucket_start_ms
    # Hits from 30 minutes after the resolution: the key reopens when the hour is over.
    reopened = s.pattern([1] * 5 + [5] * 12)
    assert [(i, e.type) for i, e in reopened] == [(11, "opened")]
    assert reopened[0][1].bucket_start_ms == resolved_at + HOUR


def test_escalates_when_the_excess_doubles() -> None:
    events = Steady().pattern([4, 4, 4, 12, 12, 12, 25])
    assert [(i, e.type) for i, e in events] == [(1, "opened"), (3, "escalated"), (6, "escalated")]
    excesses = [e.evidence.excess for _, e in events if e.evidence]
    assert excesses[1] >= 2 * excesses[0] and excesses[2] >= 2 * excesses[1]


def test_an_absent_entity_counts_as_zero_and_is_eventually_forgotten() -> None:
    s = Steady(SpikeConfig.hourly(), level=600_000.0)
    opened_events = s.pattern([5, 5])
    assert [e.type for _, e in opened_events] == ["opened"]
    s.users = []  # ada stops appearing: zeros, a drop is no spike, and the alert resolves
    events = s.run(3)
    assert [e.type for e in events] == ["resolved"] and events[0].evidence.actual == 0  # type: ignore[union-attr]
    assert len(s.detector) == 1
    assert s.run(4 * 168) == []
    assert len(s.detector) == 0 and len(s.detector.baseline) == 0


# -- cold start ----------------------------------------------------------------------

TEAM = [(f"m{i}", "search") for i in range(5)]


def test_cold_start_borrows_the_team_prior() -> None:
    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0)
    newcomer = ("user", "new", "search")
    modest = ("user", "modest", "search")
    events = [
        e for x in (5e6, 5e6) for e in s.step(extra={newcomer: {TOKENS: x}, modest: {TOKENS: 7e5}})
    ]
    assert [(e.type, e.entity[1]) for e in events] == [("opened", "new")]
    evidence = events[0].evidence
    assert evidence is not None and evidence.source == "prior" and evidence.weeks == 0
    assert 500_000 <= evidence.expected <= 700_000  # the members' median


def test_cold_start_without_prior_alerts_only_on_a_large_absolute_excess() -> None:
    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0)
    loner = ("user", "loner", "solo")  # a team of one: no siblings, no prior
    big = [e for _ in range(3) for e in s.step(extra={loner: {TOKENS: 4e6}})]
    assert big == []  # huge against nothing, but under the 5M cold floor
    huge = [e for _ in range(2) for e in s.step(extra={loner: {TOKENS: 9e6}})]
    assert [e.type for e in huge] == ["opened"]
    assert huge[0].evidence is not None and huge[0].evidence.source == "floor"


def test_a_caller_prior_comes_first() -> None:
    def prior(key: EntityKey, metric: str, bucket_start_ms: int) -> Prior | None:
        return Prior(6e6, 5e5) if key[1] == "bulk" else None

    s = Steady(SpikeConfig.hourly(), TEAM, level=500_000.0, prior=prior)
    bulk = ("user", "bulk", "search")
    assert [e for _ in range(3) for e in s.step(extra={bulk: {TOKENS: 5e6}})] == []
    events = [e for _ in range(2) for e in s.step(extra={bulk: {TOKENS: 3e7}})]
    assert [e.type for e in events] == ["opened"]
    assert events[0].evidence is not None and events[0].evidence.expected == 6e6


# -- team rollup ---------------------------------------------------------------------


def test_users_of_one_team_spiking_together_make_one_team_incident() -> None:
    users = [(f"a{i}", "A") for i in range(5)] + [(f"b{i}", "B") for i in range(5)]
    s = Steady(SpikeConfig.hourly(), [*users, ("c0", "C")], level=500_000.0)
    spike = {"a0": 5.0, "a1": 5.0, "a2": 5.0}
    events = s.run(3, spike) + s.run(4)
    user_opened = [e for e in events if e.type == "opened" and e.entity[0] == "user"]
    teams = [e for e in events if e.entity[0] == "team"]
    assert sorted(e.entity[1] for e in user_opened) == ["a0", "a1", "a2"]
    assert [(e.type, e.entity, e.metric) for e in teams] == [
        ("opened", ("team", "A"), ROLLUP_METRIC),
        ("resolved", ("team", "A"), ROLLUP_METRIC),
    ]
    incident = teams[0]
    assert sorted(m.user for m in incident.members) == ["a0", "a1", "a2"]
    assert {m.alert_id for m in incident.members} == {e.alert_id for e in user_opened}
    assert {e.incident_id for e in events if e.entity[0] == "user"} == {incident.alert_id}
    assert events.index(teams[1]) > max(
        events.index(e) for e in events if e.type == "resolved" and e.entity[0] == "user"
    )
    # Users of different teams spiking together stay unrelated alerts.
    apart = s.run(3, {"b0": 5.0, "c0": 5.0})
    assert sorted(e.entity[1] for e in opened(apart)) == ["b0", "c0"]
    assert [e for e in apart if e.entity[0] == "team"] == []


def test_a_team_incident_grows_as_members_join() -> None:
    users = [(f"a{i}", "A") for i in range(5)]
    s = Steady(SpikeConfig.hourly(), users, level=500_000.0)
    assert [e.entity[1] for e in opened(s.run(3, {"a0": 5.0}))] == ["a0"]
    joined = s.run(2, {"a0": 5.0, "a1": 5.0})
    team = [e for e in joined if e.entity[0] == "team"]
    assert [(e.type, [m.user for m in e.members]) for e in team] == [("opened", ["a0", "a1"])]
    grown = s.run(2, {"a0": 5.0, "a1": 5.0, "a2": 5.0})
    team = [e for e in grown if e.entity[0] == "team"]
    assert [(e.type, [m.user for m in e.members]) for e in team] == [
        ("escalated", ["a0", "a1", "a2"])
    ]
    assert s.detector.open_alerts()[-1] == team[0].alert_id
