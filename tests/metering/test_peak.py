"""Peak-hour weights: the default table, DST, effective dates, overrides, exact rounding."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.errors import ConfigError
from tollway.metering.peak import MILLI, PeakSchedule, parse_weight, weighted


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


BERLIN = "Europe/Berlin"
DEFAULT = PeakSchedule.default(BERLIN)


@pytest.mark.parametrize(
    ("day", "hour", "minute", "weight"),
    [
        (4, 9, 0, 2000),  # Monday 2026-05-04, peak
        (4, 11, 59, 2000),
        (4, 12, 0, 1000),  # lunch shoulder
        (4, 13, 0, 2000),
        (4, 16, 59, 2000),
        (4, 17, 0, 1000),  # evening shoulder
        (4, 19, 59, 1000),
        (4, 20, 0, 500),  # night
        (4, 7, 0, 1000),  # morning shoulder
        (4, 6, 59, 500),
        (8, 10, 0, 2000),  # Friday
        (9, 10, 0, 500),  # Saturday
        (10, 15, 0, 500),  # Sunday
    ],
)
def test_default_table_in_local_time(day: int, hour: int, minute: int, weight: int) -> None:
    assert DEFAULT.weight_at(ms(2026, 5, day, hour, minute, tz=BERLIN)) == weight


def test_the_table_follows_local_time_across_dst() -> None:
    # Berlin is UTC+1 in winter and UTC+2 in summer: 08:30 UTC is 09:30 (peak), then 10:30.
    winter_monday_0830_utc = ms(2026, 3, 23, 8, 30)
    summer_monday_0730_utc = ms(2026, 3, 30, 7, 30)  # the Monday after the switch
    assert DEFAULT.weight_at(winter_monday_0830_utc) == 2000
    assert DEFAULT.weight_at(ms(2026, 3, 23, 7, 30)) == 1000  # 08:30 local: shoulder
    assert DEFAULT.weight_at(summer_monday_0730_utc) == 2000  # 09:30 local: peak
    assert DEFAULT.weight_at(ms(2026, 3, 30, 6, 30)) == 1000  # 08:30 local


def test_effective_dates_switch_schedules_at_local_midnight() -> None:
    schedule = PeakSchedule.from_config(
        {
            "timezone": BERLIN,
            "effective": [
                {"effective_from": "2027-01-01", "default_weight": 1.0},
                {
                    "effective_from": "2027-06-01",
                    "timezone": "America/New_York",
                    "rules": [{"days": "mon-fri", "hours": "09-17", "weight": 3}],
                    "default_weight": "0.25",
                },
            ],
        }
    )
    monday_10 = ms(2026, 12, 28, 10, tz=BERLIN)
    assert schedule.weight_at(monday_10) == 2000  # the default schedule
    assert schedule.weight_at(ms(2026, 12, 31, 23, 59, tz=BERLIN)) == 500
    assert schedule.weight_at(ms(2027, 1, 1, 0, 0, tz=BERLIN)) == 1000  # flat from then on
    assert schedule.weight_at(ms(2027, 1, 4, 10, tz=BERLIN)) == 1000
    assert schedule.weight_at(ms(2027, 6, 7, 10, tz="America/New_York")) == 3000
    assert schedule.weight_at(ms(2027, 6, 7, 18, tz="America/New_York")) == 250
    assert [t.effective_from for t in schedule.tables][1:] == [
        datetime(2027, 1, 1).date(),
        datetime(2027, 6, 1).date(),
    ]


def test_model_overrides_win_then_the_lowest_tag() -> None:
    schedule = PeakSchedule.from_config(
        {
            "timezone": BERLIN,
            "models": {"inhouse-sim": 0.5, "premium": 3},
            "tags": {"batch": 0.5, "nightly": 0.25, "urgent": 1.5},
        }
    )
    peak = ms(2026, 5, 4, 10, tz=BERLIN)
    assert schedule.weight_at(peak, "gpt-sim") == 2000
    assert schedule.weight_at(peak, "inhouse-sim") == 500
    assert schedule.weight_at(peak, "inhouse-sim", ("urgent",)) == 500  # model wins
    assert schedule.weight_at(peak, "premium", ("batch",)) == 3000
    assert schedule.weight_at(peak, "gpt-sim", ("batch",)) == 500
    assert schedule.weight_at(peak, "gpt-sim", ("urgent", "nightly", "batch")) == 250
    assert schedule.weight_at(peak, "gpt-sim", ("urgent",)) == 1500
    assert schedule.weight_at(peak, "gpt-sim", ("unknown",)) == 2000


def test_rules_first_match_wins_and_hours_wrap() -> None:
    schedule = PeakSchedule.from_config(
        {
            "timezone": "UTC",
            "default_weight": 1,
            "rules": [
                {"days": ["sat", "sun"], "hours": [0, 24], "weight": 0.25},
                {"days": "all", "hours": "22-06", "weight": 0.5},
                {"days": "mon-fri", "hours": "09:00-17:00", "weight": 2},
            ],
        }
    )
    assert schedule.weight_at(ms(2026, 5, 4, 23)) == 500  # Monday night
    assert schedule.weight_at(ms(2026, 5, 5, 3)) == 500  # Tuesday early morning
    assert schedule.weight_at(ms(2026, 5, 5, 10)) == 2000
    assert schedule.weight_at(ms(2026, 5, 9, 23)) == 250  # Saturday: the first rule
    assert schedule.weight_at(ms(2026, 5, 5, 7)) == 1000  # the default
    weekend = PeakSchedule.from_config(
        {"timezone": "UTC", "rules": [{"days": "fri-mon", "hours": "00-24", "weight": 0}]}
    )
    assert weekend.weight_at(ms(2026, 5, 4, 12)) == 0  # Monday is in fri-mon
    assert weekend.weight_at(ms(2026, 5, 5, 12)) == 1000


ZONES = ["UTC", BERLIN, "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"]


@given(st.sampled_from(ZONES), st.integers(0, 4_102_444_800_000))
@settings(max_examples=400, deadline=None)
def test_the_slot_cache_agrees_with_a_direct_conversion(zone: str, at: int) -> None:
    schedule = PeakSchedule.from_config(
        {"timezone": zone, "effective": [{"effective_from": "2030-01-01", "default_weight": 3}]}
    )
    for instant in (at, at + 1, at + 899_999):
        table = schedule.tables[0] if instant < schedule.tables[1].starts_ms else schedule.tables[1]  # type: ignore[operator]
        local = datetime.fromtimestamp(instant // 1000, table.tz)
        assert schedule.time_weight(instant) == table.at(local.weekday(), local.hour)


@given(st.integers(0, 10**22), st.integers(0, 1_000_000))
def test_weighted_rounds_up_and_never_under_charges(amount: int, weight: int) -> None:
    charge = weighted(amount, weight)
    assert charge * MILLI >= amount * weight  # never less than the exact product
    assert charge * MILLI < amount * weight + MILLI  # and less than one unit more
    assert weighted(amount, MILLI) == amount


def test_weights_are_exact_decimals() -> None:
    assert parse_weight("2.0", field="w") == 2000
    assert parse_weight(0.5, field="w") == 500
    assert parse_weight(1.125, field="w") == 1125
    assert weighted(3, 333) == 1  # 0.999 rounds up to 1
    assert weighted(1_000_001, 1500) == 1_500_002  # 1,500,001.5 rounds up


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, r"peak\.timezone: is required"),
        ({"timezone": "Nowhere/Land"}, r"peak\.timezone: unknown timezone"),
        ({"timezone": "UTC", "default_weight": "0.0001"}, r"peak\.default_weight: .*3 decimal"),
        ({"timezone": "UTC", "default_weight": -1}, r"peak\.default_weight: .*at least 0"),
        (
            {"timezone": "UTC", "rules": [{"days": "funday", "hours": "1-2", "weight": 1}]},
            r"peak\.rules\[0\]\.days: unknown day",
        ),
        (
            {"timezone": "UTC", "rules": [{"days": "mon", "hours": "9-9", "weight": 1}]},
            r"peak\.rules\[0\]\.hours: hours must be",
        ),
        (
            {"timezone": "UTC", "rules": [{"days": "mon", "hours": "9-10"}]},
            r"peak\.rules\[0\]\.weight: is required",
        ),
        (
            {"timezone": "UTC", "effective": [{"default_weight": 1}]},
            r"peak\.effective\[0\]\.effective_from: is required",
        ),
        (
            {"timezone": "UTC", "effective": [{"effective_from": "soon"}]},
            r"peak\.effective\[0\]\.effective_from: must be a date",
        ),
        ({"timezone": "UTC", "tags": {"batch": "cheap"}}, r"peak\.tags\.batch: must be a number"),
        ({"timezone": "UTC", "weekends": 0.5}, r"peak\.weekends: is not a known field"),
    ],
)
def test_config_errors_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PeakSchedule.from_config(raw)


def test_flat_schedule() -> None:
    assert PeakSchedule.flat().weight_at(ms(2026, 5, 4, 10), "any", ("batch",)) == MILLI
