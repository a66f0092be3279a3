"""Local days in a team's timezone, as UTC epoch milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class LocalDay:
    """One calendar day in a timezone: `at(h)` is the UTC ms of local hour `h` (float)."""

    day: date
    midnight_ms: int

    @property
    def weekend(self) -> bool:
        return self.day.weekday() >= 5

    def at(self, hours: float) -> int:
        # Hours past local midnight; on a DST change day this is off by the change, which
        # a simulation of human habits can live with.
        return self.midnight_ms + int(hours * HOUR_MS)


def local_days(timezone: str, start_ms: int, end_ms: int) -> list[LocalDay]:
    """The local days overlapping [start_ms, end_ms), plus the day before (whose night
    work runs past midnight into the window)."""
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(start_ms / 1000, zone).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end_ms / 1000, zone).date()
    days = []
    current = first
    while current <= last:
        midnight = datetime(current.year, current.month, current.day, tzinfo=zone)
        days.append(LocalDay(current, int(midnight.timestamp() * 1000)))
        current += timedelta(days=1)
    return days
