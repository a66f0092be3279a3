"""The ground truth of a simulated organisation: who is who, who games how, and when.

Detectors are tested against it; `labels()` is what `--labels FILE` writes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollway.insights.config import WorkHours
from tollway.insights.orgsim.spec import OrgSpec, TeamSpec

SERVICE_TAG = "automation"


@dataclass(frozen=True, slots=True)
class Member:
    """One simulated person: team, way of working, gaming habits (if any), batch job (if any)."""

    index: int
    user: str
    team: TeamSpec
    persona: str
    level: float  # activity multiplier; 1.0 = a typical member
    gamer_kinds: tuple[str, ...] = ()
    service_job: str | None = None  # "nightly" | "hourly" | "quarter_hourly"

    @property
    def is_gamer(self) -> bool:
        return bool(self.gamer_kinds)

    @property
    def key_id(self) -> str:
        """The member's personal key."""
        return f"sim-{self.user}"

    @property
    def service_key_id(self) -> str | None:
        """The sanctioned service key of the member's batch job, if any."""
        return f"sim-{self.user}-svc" if self.service_job else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One stretch of labelled behaviour: a gaming episode, or a batch run (not gaming)."""

    user: str
    kind: str  # a gamer kind, or "batch_job" for sanctioned automation
    start_ms: int
    end_ms: int
    requests: int
    gaming: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "kind": self.kind,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "requests": self.requests,
            "gaming": self.gaming,
        }


@dataclass(frozen=True, slots=True)
class OrgTruth:
    """The organisation as built from an `OrgSpec`: teams and members, in index order."""

    spec: OrgSpec
    teams: tuple[TeamSpec, ...]
    members: tuple[Member, ...]
    _by_user: dict[str, Member] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_user.update({m.user: m for m in self.members})

    @property
    def org(self) -> str:
        return self.spec.org

    def member(self, user: str) -> Member:
        return self._by_user[user]

    def gamers(self) -> list[Member]:
        return [m for m in self.members if m.is_gamer]

    def gamers_by_kind(self) -> dict[str, int]:
        """How many members have each gaming habit (a member with two counts twice)."""
        counts: Counter[str] = Counter(k for m in self.members for k in m.gamer_kinds)
        return {kind: counts[kind] for kind in self.spec.gamer_kinds if counts[kind]}

    def team_work_hours(self, margin_hours: int = 1) -> dict[str, WorkHours]:
        """Each team's working hours, keyed by team name (for `DetectionConfig`)."""
        return {t.name: t.work_hours(margin_hours) for t in self.teams}

    def labels(self, episodes: list[Episode] | None = None) -> dict[str, Any]:
        """Everything known about the organisation, JSON-friendly."""
        return {
            "org": self.org,
            "spec": self.spec.as_dict(),
            "teams": [
                {
                    "name": t.name,
                    "timezone": t.timezone,
                    "start_hour": t.start_hour,
                    "end_hour": t.end_hour,
                }
                for t in self.teams
            ],
            "users": [
                {
                    "user": m.user,
                    "team": m.team.name,
                    "persona": m.persona,
                    "level": round(m.level, 3),
                    "gamer": m.is_gamer,
                    "gamer_kinds": list(m.gamer_kinds),
                    "key_id": m.key_id,
                    "service_keys": [m.service_key_id] if m.service_key_id else [],
                    "service_job": m.service_job,
                }
                for m in self.members
            ],
            "gamers_by_kind": self.gamers_by_kind(),
            "episodes": [e.as_dict() for e in episodes or ()],
        }

    def write_labels(self, path: str | Path, episodes: list[Episode] | None = None) -> None:
        """Write `labels()` as JSON to `path`."""
        Path(path).write_text(json.dumps(self.labels(episodes), indent=1) + "\n")
