"""Team rollup: several users of one team with open spike alerts make one team incident.

When `rollup_min_users` distinct users of a team have open alerts (any metric) at once, a
team incident opens listing the member alerts; this bucket's events of those alerts, and
their later events, carry the incident's id, so a dispatcher can notify once. Alerts of
the team opening later join it (`escalated`, with the grown member list); it resolves
in the bucket where its last member alert resolves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from tollway.insights.baseline import Entity
from tollway.insights.spike_types import (
    ROLLUP_METRIC,
    EventType,
    Member,
    SpikeConfig,
    SpikeEvent,
)

_MEMBER_KIND, _TEAM_KIND = "user", "team"


class MemberSeries(Protocol):
    """What the rollup reads (and `incident`, writes) on a detector's series."""

    entity: Entity
    metric: str
    parent: str | None
    alert: str | None
    incident: str | None


class _Incident:
    __slots__ = ("alert_id", "members", "opened_ms")

    def __init__(self, alert_id: str, opened_ms: int) -> None:
        self.alert_id = alert_id
        self.opened_ms = opened_ms
        self.members: dict[str, Member] = {}


class TeamRollup:
    """Groups the open user alerts of one team into a single team incident."""

    def __init__(self, config: SpikeConfig, label: str) -> None:
        self._config = config
        self._label = label
        self._open: dict[str, dict[str, MemberSeries]] = {}  # team -> alert id -> series
        self._incidents: dict[str, _Incident] = {}
        self._touched: set[str] = set()

    def open_ids(self) -> list[str]:
        """Ids of the team incidents open now."""
        return [i.alert_id for i in self._incidents.values()]

    def opened(self, s: MemberSeries) -> None:
        """`s` just opened its alert `s.alert`."""
        if s.entity[0] == _MEMBER_KIND and s.parent is not None and s.alert is not None:
            self._open.setdefault(s.parent, {})[s.alert] = s
            self._touched.add(s.parent)

    def resolved(self, s: MemberSeries) -> None:
        """`s` is resolving its alert `s.alert` (still set)."""
        if s.entity[0] == _MEMBER_KIND and s.parent is not None and s.alert is not None:
            self._open.get(s.parent, {}).pop(s.alert, None)
            self._touched.add(s.parent)

    def flush(self, t: int, events: list[SpikeEvent]) -> None:
        """Open, grow or resolve the incidents of the teams whose alerts changed."""
        for team in sorted(self._touched):
            members = self._open.get(team, {})
            incident = self._incidents.get(team)
            kind: EventType = "escalated"
            if incident is None:
                if len({s.entity[1] for s in members.values()}) < self._config.rollup_min_users:
                    continue
                alert_id = f"team:{team}:{ROLLUP_METRIC}:{self._label}@{t}"
                incident = self._incidents[team] = _Incident(alert_id, t)
                kind = "opened"
            joined = [s for a, s in members.items() if a not in incident.members]
            for s in joined:
                assert s.alert is not None
                incident.members[s.alert] = Member(s.alert, s.entity[1], s.metric)
                s.incident = incident.alert_id
            if joined:  # this bucket's events of the joining alerts name the incident too
                ids = {s.alert for s in joined}
                events[:] = [
                    replace(e, incident_id=incident.alert_id) if e.alert_id in ids else e
                    for e in events
                ]
            if not members:
                kind = "resolved"
                del self._incidents[team]
                self._open.pop(team, None)
            elif not joined:
                continue
            events.append(
                SpikeEvent(
                    kind,
                    incident.alert_id,
                    (_TEAM_KIND, team),
                    ROLLUP_METRIC,
                    self._config.width_ms,
                    t,
                    incident.opened_ms,
                    None,
                    members=tuple(incident.members.values()),
                )
            )
        self._touched.clear()
