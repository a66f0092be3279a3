"""Windows: calendar instances in real timezones (DST, month ends, weeks) and rolling buckets."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.budgets.windows import BUCKETS, CalendarWindow, RollingWindow

HOUR = 3_600_000
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Havana",  # DST starts at midnight: some local midnights do not exist
    "America/Sao_Paulo",  # did the same until 2019
    "Australia/Lord_Howe",  # half-hour DST
    "Asia/Kathmandu",  # +05:45
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "Pacific/Chatham",  # +12:45 / +13:45
]
INSTANTS = st.integers(min_value=0, max_value=4_102_444_800_000)  # 1970 .. 2100


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def local(epoch_ms: int, tz: str) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, ZoneInfo(tz))


@given(st.sampled_from(ZONES), st.sampled_from(["day", "week", "month"]), INSTANTS)
@settings(max_examples=600, deadline=None)
def test_instances_hold_the_instant_and_tile_time(zone: str, period: str, at: int) -> None:
    window = CalendarWindow(period, ZoneInfo(zone))  # type: ignore[arg-type]
    start, end = window.bounds(at)
    assert start <= at < end
    assert window.bounds(start) == (start, end)
    assert window.bounds(end - 1) == (start, end)
    assert window.bounds(end)[0] == end  # the next instance starts where this one ends
    assert window.bounds(start - 1)[1] == start
    prev_start, s, e, next_end = window.neighbours(at)
    assert (s, e) == (start, end) and prev_start < start and next_end > end
    first = local(start, zone)
    if period == "week":
        assert first.weekday() == 0 or zone in ("Pacific/Apia",)
    if period == "month":
        assert first.day == 1 or zone in ("Pacific/Apia",)


@given(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]), INSTANTS)
@settings(max_examples=300, deadline=None)
def test_days_start_at_local_midnight_and_last_23_24_or_25_hours(zone: str, at: int) -> None:
    start, end = CalendarWindow("day", ZoneInfo(zone)).bounds(at)
    first = local(start, zone)
    assert (first.hour, first.minute, first.second) == (0, 0, 0)
    assert first.date() == local(at, zone).date()
    assert end - start in (23 * HOUR, 24 * HOUR, 25 * HOUR)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 23),  # spring forward
        ("Europe/Berlin", date(2026, 10, 25), 25),  # fall back
        ("Europe/Berlin", date(2026, 10, 26), 24),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/New_York", date(2026, 11, 1), 25),
        ("Australia/Lord_Howe", date(2026, 4, 5), 24.5),
        ("UTC", date(2026, 3, 29), 24),
    ],
)
def test_dst_days(zone: str, day: date, hours: float) -> None:
    window = CalendarWindow("day", ZoneInfo(zone))
    start, end = window.bounds(ms(day.year, day.month, day.day, 12, tz=zone))
    assert start == ms(day.year, day.month, day.day, tz=zone)
    assert end - start == hours * HOUR


def test_a_skipped_midnight_starts_the_day_at_the_jump() -> None:
    havana = ZoneInfo("America/Havana")
    # 2026-03-08: clocks jump from 00:00 to 01:00; the day begins at 05:00 UTC.
    start, end = CalendarWindow("day", havana).bounds(ms(2026, 3, 8, 12, tz="America/Havana"))
    assert start == ms(2026, 3, 8, 5)
    assert local(start, "America/Havana").hour == 1
    assert end - start == 23 * HOUR


def test_a_day_that_does_not_exist_has_no_instance() -> None:
    apia = CalendarWindow("day", ZoneInfo("Pacific/Apia"))
    _, end = apia.bounds(ms(2011, 12, 29, 12, tz="Pacific/Apia"))
    following = apia.bounds(end)
    assert local(following[0], "Pacific/Apia").date() == date(2011, 12, 31)


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        ((2026, 1, 31, 23, 59), (2026, 1, 1), (2026, 2, 1)),
        ((2028, 2, 29, 12, 0), (2028, 2, 1), (2028, 3, 1)),  # leap year
        ((2026, 12, 31, 23, 59), (2026, 12, 1), (2027, 1, 1)),  # year end
        ((2026, 3, 31, 23, 30), (2026, 3, 1), (2026, 4, 1)),  # month with a DST change
    ],
)
def test_month_ends_in_berlin(
    at: tuple[int, ...], start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    zone = "Europe/Berlin"
    window = CalendarWindow("month", ZoneInfo(zone))
    assert window.bounds(ms(*at, tz=zone)) == (ms(*start, tz=zone), ms(*end, tz=zone))


def test_month_instances_are_named_by_their_start_in_the_zone() -> None:
    # 2025-12-01 00:00 in Berlin is 2025-11-30 23:00 UTC: the key says so.
    window = CalendarWindow("month", ZoneInfo("Europe/Berlin"))
    start, _ = window.bounds(ms(2025, 12, 1, 0, 30, tz="Europe/Berlin"))
    assert start == 1_764_543_600_000 == ms(2025, 11, 30, 23)
    assert window.bounds(ms(2025, 11, 30, 23, 59, tz="Europe/Berlin"))[1] == start


def test_weeks_start_monday_at_local_midnight() -> None:
    zone = "America/New_York"
    window = CalendarWindow("week", ZoneInfo(zone))
    # Sunday 2026-11-01 is the fall-back day; its week began Monday 2026-10-26.
    start, end = window.bounds(ms(2026, 11, 1, 23, tz=zone))
    assert start == ms(2026, 10, 26, tz=zone)
    assert end == ms(2026, 11, 2, tz=zone)
    assert end - start == 7 * 24 * HOUR + HOUR


def test_window_bounds_are_cached_per_instance() -> None:
    window = CalendarWindow("day", ZoneInfo("Europe/Berlin"))
    first = window.bounds(ms(2026, 5, 4, 10))
    assert window.bounds(ms(2026, 5, 4, 11)) is first  # no timezone conversion again


@given(st.integers(1, 24 * 31), INSTANTS)
def test_rolling_buckets(hours: int, at: int) -> None:
    window = RollingWindow.hours(hours)
    assert window.bucket_ms == hours * 60_000  # window / 60
    start, end = window.bounds(at)
    assert end - start == window.length_ms == BUCKETS * window.bucket_ms
    assert end - window.bucket_ms <= at < end  # the current bucket is the last one
    assert window.bucket(at) == end // window.bucket_ms - 1


def test_rolling_names_and_errors() -> None:
    assert RollingWindow.hours(24).name == "rolling 24h"
    assert RollingWindow.minute().name == "per minute"
    assert RollingWindow.minute().bucket_ms == 1_000
    with pytest.raises(ValueError):
        RollingWindow(1_001)
    assert CalendarWindow("month", ZoneInfo("UTC")).name == "monthly"
    with pytest.raises(ValueError):
        CalendarWindow("year", ZoneInfo("UTC"))  # type: ignore[arg-type]


def test_equal_windows_compare_equal() -> None:
    assert CalendarWindow("day", ZoneInfo("UTC")) == CalendarWindow("day", ZoneInfo("UTC"))
    assert RollingWindow.hours(2) == RollingWindow(2 * HOUR)
    assert CalendarWindow("day", ZoneInfo("UTC")) != CalendarWindow("day", ZoneInfo("Etc/GMT-1"))
