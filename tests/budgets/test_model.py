"""Budget and rate-limit specs from config: amounts, windows, subjects, and clear errors."""

from __future__ import annotations

import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.budgets.model import (
    PUSD_PER_USD,
    BudgetSpec,
    format_amount,
    parse_amount,
    parse_budget,
    parse_budgets,
    parse_rate_limits,
    parse_window,
)
from tollway.budgets.windows import CalendarWindow, RollingWindow
from tollway.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "pusd"),
    [
        ("$500", 500 * PUSD_PER_USD),
        ("500 USD", 500 * PUSD_PER_USD),
        ("500usd", 500 * PUSD_PER_USD),
        (500, 500 * PUSD_PER_USD),
        ("$1,250.50", 1_250_500_000_000_000),
        (Decimal("0.000000000001"), 1),
        (0.1, 100_000_000_000),  # a float is read as the decimal that was written
        ("1_000", 1_000 * PUSD_PER_USD),
    ],
)
def test_usd_amounts(text: object, pusd: int) -> None:
    assert parse_amount(text, "usd_actual", field="f") == pusd


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        (2_000_000, 2_000_000),
        ("2_000_000", 2_000_000),
        ("2,000,000 tokens", 2_000_000),
        ("2M", 2_000_000),
        ("1.5k tokens", 1_500),
        ("7", 7),
    ],
)
def test_token_amounts(text: object, tokens: int) -> None:
    assert parse_amount(text, "tokens_total", field="f") == tokens


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        ("2M tokens", "usd_actual", "counts USD"),
        ("$5", "tokens_input", "counts tokens"),
        ("-5", "usd_actual", "non-negative"),
        ("1.5", "tokens_total", "whole number"),
        ("0.0000000000001", "usd_list", "12 decimal places"),
        ("lots", "usd_actual", "like '$500'"),
        (True, "usd_actual", "must be an amount"),
    ],
)
def test_bad_amounts_name_the_field(value: object, unit: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"budgets\[0\]\.hard_limit: .*" + re.escape(message)):
        parse_amount(value, unit, field="budgets[0].hard_limit")


@given(st.decimals(min_value=0, max_value=10**9, places=12, allow_nan=False))
def test_usd_parsing_is_exact(amount: Decimal) -> None:
    assert parse_amount(f"${amount}", "usd_actual", field="f") == int(amount * PUSD_PER_USD)


def test_a_team_budget_with_defaults() -> None:
    spec = parse_budget(
        {
            "scope": "team",
            "org": "acme",
            "team": "payments",
            "window": "month",
            "timezone": "Europe/Berlin",
            "soft_limit": "$400",
            "hard_limit": "$500",
        }
    )
    assert spec.id == "team:acme/payments:monthly"
    assert spec.label == "team:payments monthly"
    assert spec.subject == "acme/payments" and spec.unit == "usd_actual"
    assert spec.window == CalendarWindow("month", spec.window.tz)  # type: ignore[union-attr]
    assert (spec.soft_limit, spec.hard_limit) == (400 * PUSD_PER_USD, 500 * PUSD_PER_USD)
    assert spec.counter_key == "b:team:acme/payments:monthly"
    assert spec.format(spec.hard_limit) == "$500.00"  # type: ignore[arg-type]


def test_token_and_rolling_budgets_get_distinct_ids() -> None:
    specs = parse_budgets(
        [
            {
                "scope": "user",
                "subject": "acme/payments/ada",
                "window": "day",
                "unit": "tokens_total",
                "hard_limit": "2M",
            },
            {
                "scope": "user",
                "subject": "acme/payments/ada",
                "window": "rolling 24h",
                "hard_limit": 20,
            },
            {"scope": "tag", "subject": "batch", "window": {"rolling_hours": 6}, "soft_limit": 5},
            {"scope": "key", "key": "k_123", "window": "week", "hard_limit": "$1"},
        ],
        default_timezone="UTC",
    )
    assert [s.id for s in specs] == [
        "user:acme/payments/ada:daily:tokens_total",
        "user:acme/payments/ada:rolling-24h",
        "tag:batch:rolling-6h",
        "key:k_123:weekly",
    ]
    assert specs[0].label == "user:ada daily (tokens total)"
    assert isinstance(specs[1].window, RollingWindow) and specs[1].window.bucket_ms == 1_440_000
    assert specs[2].hard_limit is None
    assert format_amount("tokens_total", 2_000_000) == "2,000,000 tokens"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {
                "scope": "team",
                "subject": "payments",
                "window": "day",
                "timezone": "UTC",
                "hard_limit": 1,
            },
            r"budgets\[0\]\.subject: a team is named 'org/team'",
        ),
        (
            {"scope": "team", "subject": "a/b", "window": "day", "hard_limit": 1},
            r"budgets\[0\]\.timezone: a calendar window needs an explicit IANA timezone",
        ),
        (
            {
                "scope": "team",
                "subject": "a/b",
                "window": "day",
                "timezone": "Mars/Olympus",
                "hard_limit": 1,
            },
            r"budgets\[0\]\.timezone: unknown timezone",
        ),
        (
            {"scope": "galaxy", "subject": "a", "window": "day", "hard_limit": 1},
            r"budgets\[0\]\.scope: must be one of",
        ),
        (
            {"scope": "org", "subject": "a", "window": "fortnight", "hard_limit": 1},
            r"budgets\[0\]\.window: must be day, week, month",
        ),
        (
            {"scope": "org", "subject": "a", "window": "rolling 24h"},
            r"budgets\[0\]\.hard_limit: a budget needs a soft_limit or a hard_limit",
        ),
        (
            {
                "scope": "org",
                "subject": "a",
                "window": "rolling 24h",
                "soft_limit": 5,
                "hard_limit": 4,
            },
            r"budgets\[0\]\.soft_limit: is above the hard_limit",
        ),
        (
            {"scope": "org", "subject": "a", "window": "rolling 24h", "hard": 4},
            r"budgets\[0\]\.hard: is not a known field",
        ),
        (
            {
                "scope": "org",
                "subject": "a",
                "window": "rolling 24h",
                "unit": "eur",
                "hard_limit": 4,
            },
            r"budgets\[0\]\.unit: must be one of",
        ),
        (
            {"scope": "user", "org": "a", "team": "b", "window": "rolling 1h", "hard_limit": 4},
            r"budgets\[0\]\.user: is required",
        ),
    ],
)
def test_config_errors_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_budgets([raw])


def test_duplicate_ids_are_refused() -> None:
    raw = {"scope": "org", "subject": "a", "window": "rolling 24h", "hard_limit": 4}
    with pytest.raises(ConfigError, match="two entries have the id 'org:a:rolling-24h'"):
        parse_budgets([raw, raw])


def test_rate_limits_expand_to_one_spec_per_metric() -> None:
    specs = parse_rate_limits(
        [{"scope": "key", "subject": "k1", "rpm": 600, "tpm": "200k", "concurrent": 20}]
    )
    assert [(s.id, s.metric, s.limit) for s in specs] == [
        ("key:k1:rpm", "requests", 600),
        ("key:k1:tpm", "tokens", 200_000),
        ("key:k1:concurrent", "concurrent", 20),
    ]
    assert specs[0].window == RollingWindow.minute() and specs[2].window is None
    assert specs[0].label == "key:k1 requests per minute"
    with pytest.raises(ConfigError, match=r"rate_limits\[0\]\.rpm: a rate limit needs"):
        parse_rate_limits([{"scope": "key", "subject": "k1"}])


def test_window_parsing_forms() -> None:
    assert parse_window("Rolling:12h") == RollingWindow.hours(12)
    assert parse_window("daily", timezone="Asia/Tokyo") == CalendarWindow(
        "day", ZoneInfo("Asia/Tokyo")
    )


def test_spec_invariants() -> None:
    with pytest.raises(ValueError, match="soft or a hard limit"):
        BudgetSpec("x", "org", "a", "usd_actual", RollingWindow.hours(1), None, None)
