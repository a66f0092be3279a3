"""Budget windows: calendar day/week/month in an explicit timezone, and rolling N hours.

A window never needs a job to reset it. A calendar window *instance* is named by its start
instant, and its counters live under keys that carry that start (``…:w:1764547200000``):
when the instant passes the window's end, the next request simply computes the next start
and counts under new keys, and the old ones expire on their own TTL.

Calendar windows follow local time in their timezone, DST included: a local day is 23 or
25 hours long on the days the clocks change (23.5/24.5 h in Australia/Lord_Howe), weeks start
on Monday at local midnight, months at local midnight on the 1st. A local midnight that does
not exist (clocks jumping forward *at* midnight, as in America/Havana) starts its day at the
instant of the jump. Whatever the zone's history, the instances tile time: every instant
belongs to exactly one, and each one ends where the next starts.

A rolling window of length L is made of 60 fixed buckets of L/60 each, aligned to the Unix
epoch; its sum covers the current bucket and the 59 before it. So a rolling window is exact
to one bucket: what it counts happened between L - L/60 and L ago at its oldest (24 minutes
for a rolling day, one second for a rolling minute).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tollway.metering.peak import load_timezone

__all__ = [
    "BUCKETS",
    "CalendarWindow",
    "Period",
    "RollingWindow",
    "Window",
    "load_timezone",
]

Period = Literal["day", "week", "month"]
BUCKETS = 60
"""Buckets in a rolling window."""

_HOUR_MS = 3_600_000
_PERIOD_NAMES: dict[str, str] = {"day": "daily", "week": "weekly", "month": "monthly"}


class CalendarWindow:
    """A calendar day, week (from Monday) or month in `tz`.

    `bounds` remembers the last instance it computed, so the hot path pays for a timezone
    conversion once per window instance, not once per request.
    """

    __slots__ = ("_cache", "_neighbours", "period", "tz")

    def __init__(self, period: Period, tz: ZoneInfo) -> None:
        if period not in _PERIOD_NAMES:
            raise ValueError(f"period must be day, week or month, got {period!r}")
        self.period: Period = period
        self.tz = tz
        self._cache: tuple[int, int] = (0, 0)
        self._neighbours: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def name(self) -> str:
        """``daily``, ``weekly`` or ``monthly``."""
        return _PERIOD_NAMES[self.period]

    @property
    def length_ms(self) -> int | None:
        """None: a calendar window's length depends on the instance."""
        return None

    def bounds(self, epoch_ms: int) -> tuple[int, int]:
        """``(start_ms, end_ms)`` of the instance holding `epoch_ms` (start inclusive)."""
        cached = self._cache
        if cached[0] <= epoch_ms < cached[1]:
            return cached
        result = self._compute(epoch_ms)
        self._cache = result
        return result

    def neighbours(self, epoch_ms: int) -> tuple[int, int, int, int]:
        """``(previous start, start, end, next end)`` around the instance holding `epoch_ms`.

        The Redis store sends these so its script can pick the instance by *server* time
        when the caller's clock has just crossed a boundary the server has not, or back.
        """
        cached = self._neighbours
        if cached[1] <= epoch_ms < cached[2]:
            return cached
        start, end = self.bounds(epoch_ms)
        result = (self._compute(start - 1)[0], start, end, self._compute(end)[1])
        self._neighbours = result
        return result

    def _compute(self, epoch_ms: int) -> tuple[int, int]:
        local_day = datetime.fromtimestamp(epoch_ms // 1000, self.tz).date()
        first = self._period_start(local_day)
        start = self._instant(first)
        # In zones whose history has odd gaps the instant may precede the computed start
        # (or pass the next one): step until the instance really holds it, so windows tile.
        while start > epoch_ms:
            first = self._period_start(first - timedelta(days=1))
            start = self._instant(first)
        following = self._next_start(first)
        end = self._instant(following)
        while end <= epoch_ms:
            first, start = following, end
            following = self._next_start(first)
            end = self._instant(following)
        return start, end

    def _period_start(self, day: date) -> date:
        if self.period == "day":
            return day
        if self.period == "week":
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def _next_start(self, first: date) -> date:
        if self.period == "day":
            return first + timedelta(days=1)
        if self.period == "week":
            return first + timedelta(days=7)
        if first.month == 12:
            return date(first.year + 1, 1, 1)
        return date(first.year, first.month + 1, 1)

    def _instant(self, day: date) -> int:
        # fold=0: a midnight skipped by a forward jump maps through the offset in force
        # before the jump, i.e. to the instant of the jump itself.
        local = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return int(local.timestamp()) * 1000

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CalendarWindow)
            and self.period == other.period
            and self.tz.key == other.tz.key
        )

    def __hash__(self) -> int:
        return hash((self.period, self.tz.key))

    def __repr__(self) -> str:
        return f"CalendarWindow({self.period!r}, {self.tz.key!r})"


class RollingWindow:
    """The last `length_ms`, summed over 60 fixed buckets (exact to one bucket)."""

    __slots__ = ("bucket_ms", "buckets", "length_ms")

    def __init__(self, length_ms: int, buckets: int = BUCKETS) -> None:
        if length_ms <= 0 or buckets <= 0 or length_ms % buckets:
            raise ValueError(f"a rolling window of {length_ms} ms cannot have {buckets} buckets")
        self.length_ms = length_ms
        self.buckets = buckets
        self.bucket_ms = length_ms // buckets

    @classmethod
    def hours(cls, hours: int) -> RollingWindow:
        """A rolling window of `hours` hours (buckets of `hours` minutes)."""
        return cls(hours * _HOUR_MS)

    @classmethod
    def minute(cls) -> RollingWindow:
        """The rolling minute of rate limits (buckets of one second)."""
        return cls(60_000)

    @property
    def name(self) -> str:
        """``rolling 24h``, or ``per minute`` for the rate-limit window."""
        if self.length_ms == 60_000:
            return "per minute"
        if self.length_ms % _HOUR_MS == 0:
            return f"rolling {self.length_ms // _HOUR_MS}h"
        return f"rolling {self.length_ms // 1000}s"

    def bucket(self, epoch_ms: int) -> int:
        """The index of the bucket holding `epoch_ms` (buckets since the epoch)."""
        return epoch_ms // self.bucket_ms

    def bounds(self, epoch_ms: int) -> tuple[int, int]:
        """``(start_ms, end_ms)`` of the buckets summed at `epoch_ms`."""
        index = epoch_ms // self.bucket_ms
        return (index - self.buckets + 1) * self.bucket_ms, (index + 1) * self.bucket_ms

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RollingWindow)
            and self.length_ms == other.length_ms
            and self.buckets == other.buckets
        )

    def __hash__(self) -> int:
        return hash((self.length_ms, self.buckets))

    def __repr__(self) -> str:
        return f"RollingWindow({self.length_ms})"


Window = CalendarWindow | RollingWindow
"""Either kind of window; a counter with no window (None) is a concurrency gauge."""
