"""Pricing arithmetic: exactness, additivity, monotonicity, discounts and display."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.errors import ConfigError
from tollway.metering.catalog import Price, PriceCatalog
from tollway.metering.pricing import (
    PPM,
    Discount,
    PricedUsage,
    apply_discount,
    cost_pusd,
    format_usd,
    price_usage,
    pusd_to_usd,
)
from tollway.metering.usage import Usage

TOKENS = st.integers(min_value=0, max_value=5_000_000)
UUSD = st.integers(min_value=0, max_value=200_000_000)  # up to $200 per 1M tokens
PUSD = st.integers(min_value=0, max_value=10**18)
PPMS = st.integers(min_value=0, max_value=PPM)

CATALOG = PriceCatalog.load_default()
SHIPPED = [
    price
    for name in CATALOG.models()
    for price in CATALOG.entry(name).prices  # type: ignore[union-attr]
]


def usage_of(uncached: int = 0, cached: int = 0, written: int = 0, output: int = 0) -> Usage:
    """A consistent Usage from its four billed parts (input counts all prompt tokens)."""
    return Usage(
        input_tokens=uncached + cached + written,
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=output,
    )


parts = st.tuples(TOKENS, TOKENS, TOKENS, TOKENS)
flat_prices = st.builds(Price, UUSD, UUSD, UUSD, UUSD)


# ------------------------------------------------------------------- exactness
@given(price=flat_prices, counts=parts)
def test_cost_equals_the_decimal_computation(price: Price, counts: tuple[int, ...]) -> None:
    pusd = cost_pusd(usage_of(*counts), price)
    rates = [price.input_uusd, price.cached_input_uusd, price.cache_write_uusd, price.output_uusd]
    usd = sum(
        Decimal(tokens) * (Decimal(rate) / 10**6) / 10**6
        for tokens, rate in zip(counts, rates, strict=True)
    )
    assert usd == Decimal(pusd) / 10**12 == pusd_to_usd(pusd)


@given(price=st.sampled_from(SHIPPED), counts=parts)
def test_shipped_prices_cost_exactly_their_decimal_list_price(
    price: Price, counts: tuple[int, ...]
) -> None:
    usage = usage_of(*counts)
    rates = price.for_input(usage.input_tokens)
    per_mtok_usd = [
        Decimal(rates.input_uusd) / 10**6,
        Decimal(rates.cached_input_uusd) / 10**6,
        Decimal(rates.cache_write_uusd) / 10**6,
        Decimal(rates.output_uusd) / 10**6,
    ]
    usd = sum(Decimal(n) * p / 10**6 for n, p in zip(counts, per_mtok_usd, strict=True))
    assert pusd_to_usd(cost_pusd(usage, price)) == usd


# ---------------------------------------------------------- additivity, monotony
@given(price=flat_prices, a=parts, b=parts)
def test_cost_is_additive(price: Price, a: tuple[int, ...], b: tuple[int, ...]) -> None:
    both = tuple(x + y for x, y in zip(a, b, strict=True))
    assert cost_pusd(usage_of(*a), price) + cost_pusd(usage_of(*b), price) == cost_pusd(
        usage_of(*both), price
    )


@given(
    a=st.tuples(*(st.integers(0, 100_000),) * 4),
    b=st.tuples(*(st.integers(0, 100_000),) * 4),
)
def test_cost_is_additive_within_one_tier_of_a_tiered_price(
    a: tuple[int, ...], b: tuple[int, ...]
) -> None:
    price = CATALOG.price_for("gemini-2.5-pro")
    assert price is not None
    both = tuple(x + y for x, y in zip(a, b, strict=True))
    if (sum(a[:3]) > 200_000) != (sum(both[:3]) > 200_000) or (sum(b[:3]) > 200_000) != (
        sum(both[:3]) > 200_000
    ):
        return  # additivity holds within a tier only
    assert cost_pusd(usage_of(*a), price) + cost_pusd(usage_of(*b), price) == cost_pusd(
        usage_of(*both), price
    )


@given(
    price=st.one_of(flat_prices, st.sampled_from(SHIPPED)),
    counts=parts,
    kind=st.integers(0, 3),
    extra=st.integers(1, 500_000),
)
def test_cost_is_monotone_in_every_token_count(
    price: Price, counts: tuple[int, ...], kind: int, extra: int
) -> None:
    more = list(counts)
    more[kind] += extra
    assert cost_pusd(usage_of(*more), price) >= cost_pusd(usage_of(*counts), price)


def test_reasoning_tokens_are_billed_once_as_output() -> None:
    price = Price(1, 1, 1, 7)
    plain = Usage(input_tokens=10, output_tokens=100)
    thinking = Usage(input_tokens=10, output_tokens=100, reasoning_tokens=80)
    assert cost_pusd(plain, price) == cost_pusd(thinking, price) == 10 + 700


def test_more_cached_and_written_than_input_clamps_uncached_to_zero() -> None:
    price = Price(input_uusd=1000, cached_input_uusd=100, cache_write_uusd=1250, output_uusd=0)
    usage = Usage(input_tokens=10, cached_input_tokens=8, cache_write_tokens=5)
    assert cost_pusd(usage, price) == 8 * 100 + 5 * 1250


def test_the_tier_is_chosen_by_all_prompt_tokens() -> None:
    price = CATALOG.price_for("gemini-2.5-pro", date(2026, 11, 28))
    assert price is not None
    # 150k cached + 50_001 uncached = 200_001 prompt tokens: the >200k tier for all of it.
    usage = Usage(input_tokens=200_001, cached_input_tokens=150_000, output_tokens=1_000)
    assert cost_pusd(usage, price) == 50_001 * 2_500_000 + 150_000 * 250_000 + 1_000 * 15_000_000
    below = Usage(input_tokens=200_000, cached_input_tokens=150_000, output_tokens=1_000)
    assert cost_pusd(below, price) == 50_000 * 1_250_000 + 150_000 * 125_000 + 1_000 * 10_000_000


def test_worked_examples_in_dollars() -> None:
    mini = CATALOG.price_for("gpt-5.4-mini")
    assert mini is not None
    usage = Usage(input_tokens=1_000, cached_input_tokens=200, output_tokens=500)
    # 800 x $0.75/M + 200 x $0.075/M + 500 x $4.50/M = $0.002865
    assert pusd_to_usd(cost_pusd(usage, mini)) == Decimal("0.002865")

    opus = CATALOG.price_for("claude-opus-5")
    assert opus is not None
    usage = Usage(
        input_tokens=12_000, cached_input_tokens=8_000, cache_write_tokens=3_000, output_tokens=900
    )
    # 1k x $5 + 8k x $0.50 + 3k x $6.25 + 900 x $25, per 1M tokens = $0.05025
    assert pusd_to_usd(cost_pusd(usage, opus)) == Decimal("0.05025")

    flash = CATALOG.price_for("deepseek-v4-flash")
    assert flash is not None
    # One cache-hit token costs 2,800 pUSD: sums of many stay exact.
    assert cost_pusd(Usage(input_tokens=1, cached_input_tokens=1), flash) == 2_800


# -------------------------------------------------------------------- discounts
@given(list_pusd=PUSD, ppm=PPMS)
def test_discount_never_increases_cost(list_pusd: int, ppm: int) -> None:
    assert 0 <= apply_discount(list_pusd, ppm) <= list_pusd


@given(list_pusd=PUSD, ppm=PPMS)
def test_discount_rounding_error_is_at_most_half_a_pico_dollar(list_pusd: int, ppm: int) -> None:
    exact = Fraction(list_pusd * (PPM - ppm), PPM)
    discounted = apply_discount(list_pusd, ppm)
    assert abs(discounted - exact) <= Fraction(1, 2)
    if exact.denominator == 2:  # exactly half: rounds up
        assert discounted == exact + Fraction(1, 2)


@given(list_pusd=PUSD)
def test_zero_discount_is_identity_and_full_discount_is_free(list_pusd: int) -> None:
    assert apply_discount(list_pusd, 0) == list_pusd
    assert apply_discount(list_pusd, PPM) == 0


@given(a=PUSD, b=PUSD, ppm=PPMS)
def test_discount_is_monotone(a: int, b: int, ppm: int) -> None:
    low, high = sorted((a, b))
    assert apply_discount(low, ppm) <= apply_discount(high, ppm)


def test_discount_rounds_half_up() -> None:
    assert apply_discount(1, 500_000) == 1  # 0.5 -> 1
    assert apply_discount(3, 500_000) == 2  # 1.5 -> 2
    assert apply_discount(1, 500_001) == 0  # 0.499999 -> 0
    assert apply_discount(10, 150_000) == 9  # 8.5 -> 9


@pytest.mark.parametrize("ppm", [-1, PPM + 1])
def test_discount_out_of_range_is_an_error(ppm: int) -> None:
    with pytest.raises(ValueError):
        apply_discount(100, ppm)
    with pytest.raises(ValueError):
        Discount(ppm)


@pytest.mark.parametrize(
    ("value", "ppm"),
    [
        ("15%", 150_000),
        (" 15% ", 150_000),
        ("12.5%", 125_000),
        ("0.0001%", 1),
        (0.15, 150_000),
        ("0.15", 150_000),
        (Decimal("0.15"), 150_000),
        (0, 0),
        ("0%", 0),
        (1, PPM),
        ("100%", PPM),
        (0.333333, 333_333),
    ],
)
def test_discount_parses_fractions_and_percents(value: object, ppm: int) -> None:
    assert Discount.parse(value) == Discount(ppm)


@pytest.mark.parametrize(
    "value", ["150%", "-5%", -0.1, 1.5, "0.1234567", "0.00001%", "abc", "", "%", True, None, []]
)
def test_bad_discounts_are_config_errors(value: object) -> None:
    with pytest.raises(ConfigError, match=r"teams\.research\.discount"):
        Discount.parse(value, name="teams.research.discount")


# ------------------------------------------------------------ priced usage, display
def test_price_usage_gives_list_and_actual_cost() -> None:
    price = Price(
        input_uusd=2_500_000, cached_input_uusd=250_000, cache_write_uusd=0, output_uusd=0
    )
    usage = Usage(input_tokens=3)
    assert price_usage(usage, price) == PricedUsage(7_500_000, 7_500_000)
    priced = price_usage(usage, price, Discount.parse("15%").ppm)
    assert priced == PricedUsage(list_cost_pusd=7_500_000, actual_cost_pusd=6_375_000)
    assert priced.list_cost_usd == Decimal("0.0000075")
    assert priced.actual_cost_usd == Decimal("0.000006375")
    assert Discount(150_000).apply(7_500_000) == 6_375_000


def test_pusd_to_usd_is_exact() -> None:
    assert pusd_to_usd(1) == Decimal("1E-12")
    assert pusd_to_usd(10**12) == Decimal(1)
    assert pusd_to_usd(123_456_789_012_345_678) == Decimal("123456.789012345678")


@pytest.mark.parametrize(
    ("pusd", "places", "text"),
    [
        (0, 6, "$0.000000"),
        (2_865_000_000, 6, "$0.002865"),
        (1_234_567_890_123_456, 2, "$1,234.57"),
        (500_000, 6, "$0.000001"),  # half a micro-dollar rounds up
        (499_999, 6, "$0.000000"),
        (-1_500_000_000_000, 2, "-$1.50"),
        (-1, 2, "$0.00"),
        (10**12, 0, "$1"),
    ],
)
def test_format_usd(pusd: int, places: int, text: str) -> None:
    assert format_usd(pusd, places) == text
