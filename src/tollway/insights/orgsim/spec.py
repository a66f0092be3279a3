"""What organisation to simulate: its size, its teams' timezones and hours, its share of gamers.

Everything else (who is who, who games how) is drawn from `seed` by `build_org`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollway.insights.config import WorkHours

# Ways of burning tokens for their own sake; each gamer gets one (sometimes two).
GAMER_KINDS: tuple[str, ...] = (
    "padding",
    "duplicate_loop",
    "near_duplicate_loop",
    "scripted_burst",
    "max_tokens_burner",
    "off_hours_bulk",
    "no_outcome",
)
# How a normal member mostly works (see personas.py for the rates).
PERSONAS: tuple[str, ...] = ("ide", "agentic", "chat", "mixed")

TIMEZONES: tuple[str, ...] = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Singapore",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "Europe/Warsaw",
    "Asia/Tokyo",
)
TEAM_NAMES: tuple[str, ...] = (
    "platform",
    "payments",
    "search",
    "mobile",
    "data",
    "infra",
    "growth",
    "security",
    "billing",
    "ml",
    "web",
    "identity",
)


@dataclass(frozen=True, slots=True)
class TeamSpec:
    """A team: its IANA timezone and nominal working hours (local, start inclusive)."""

    name: str
    timezone: str
    start_hour: int = 9
    end_hour: int = 18

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError(f"team {self.name}: hours must satisfy 0 <= start < end <= 24")
        self.work_hours()  # an unknown timezone fails here, naming it

    def work_hours(self, margin_hours: int = 1) -> WorkHours:
        """Working hours for detection: the nominal ones widened by `margin_hours`."""
        return WorkHours(
            timezone=self.timezone,
            start_hour=max(0, self.start_hour - margin_hours),
            end_hour=min(24, self.end_hour + margin_hours),
        )


@dataclass(frozen=True, slots=True)
class OrgSpec:
    """The size and make-up of a simulated organisation (deterministic given `seed`)."""

    users: int = 200
    teams: int = 8
    gamer_share: float = 0.08
    seed: int = 7
    org: str = "simorg"
    # One member in this many runs a sanctioned batch job on a service key.
    service_key_every: int = 25
    # Chance that a gamer has a second gaming habit besides the first.
    second_kind_share: float = 0.15
    gamer_kinds: tuple[str, ...] = GAMER_KINDS
    # Explicit teams (names, timezones, hours); drawn from `seed` when empty.
    team_specs: tuple[TeamSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.users < 1 or self.teams < 1:
            raise ValueError("an organisation needs at least one user and one team")
        if not 0.0 <= self.gamer_share <= 1.0:
            raise ValueError(f"gamer_share must be within 0..1, not {self.gamer_share}")
        unknown = set(self.gamer_kinds) - set(GAMER_KINDS)
        if unknown or not self.gamer_kinds:
            raise ValueError(f"gamer kinds must be among {GAMER_KINDS}, not {sorted(unknown)}")
        if self.team_specs and len(self.team_specs) != self.teams:
            raise ValueError("team_specs must list exactly `teams` teams")

    @property
    def gamer_count(self) -> int:
        """How many members game (the share of users, rounded half up)."""
        return min(self.users, int(self.users * self.gamer_share + 0.5))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (for the labels file)."""
        return {
            "users": self.users,
            "teams": self.teams,
            "gamer_share": self.gamer_share,
            "seed": self.seed,
            "org": self.org,
            "service_key_every": self.service_key_every,
            "second_kind_share": self.second_kind_share,
            "gamer_kinds": list(self.gamer_kinds),
        }
