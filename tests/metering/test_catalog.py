"""The price catalog: the shipped YAML, lookups, dates, tiers, overrides and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tollway.errors import ConfigError
from tollway.metering.catalog import ALWAYS, ModelPrices, Price, PriceCatalog, parse_uusd

PROVIDERS = {"openai", "anthropic", "google", "deepseek"}
REQUIRED_MODELS = [
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "claude-opus-5",
    "claude-opus-4-5",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "deepseek-v4-pro",
    "deepseek-v4-flash",
]


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.load_default()


def _all_prices(entry: ModelPrices) -> list[Price]:
    return [p for price in entry.prices for p in (price, *(tier for _, tier in price.tiers))]


# ------------------------------------------------------------------ shipped data
def test_every_shipped_entry_parses_and_is_sane(catalog: PriceCatalog) -> None:
    assert len(catalog) >= len(REQUIRED_MODELS)
    for name in catalog.models():
        entry = catalog.entry(name)
        assert entry is not None and entry.name == name
        assert entry.provider in PROVIDERS, name
        dates = [price.effective for price in entry.prices]
        assert dates == sorted(set(dates)), name
        assert all(d > date(2024, 1, 1) for d in dates), name
        for price in entry.prices:
            assert price.input_uusd > 0, name
            assert price.cached_input_uusd <= price.input_uusd, name
            for min_tokens, tier in price.tiers:
                assert min_tokens > 0
                assert tier.effective == price.effective
                # Every shipped tier is dearer: cost stays monotone across the boundary.
                assert tier.input_uusd >= price.input_uusd, name
                assert tier.cached_input_uusd >= price.cached_input_uusd, name
                assert tier.cache_write_uusd >= price.cache_write_uusd, name
                assert tier.output_uusd >= price.output_uusd, name


@pytest.mark.parametrize("model", REQUIRED_MODELS)
def test_required_models_are_priced(catalog: PriceCatalog, model: str) -> None:
    assert catalog.price_for(model) is not None


def test_anthropic_cache_writes_are_one_and_a_quarter_input(catalog: PriceCatalog) -> None:
    for name in catalog.models():
        entry = catalog.entry(name)
        assert entry is not None
        for price in _all_prices(entry):
            if entry.provider == "anthropic":
                assert price.cache_write_uusd * 4 == price.input_uusd * 5, name
            else:
                assert price.cache_write_uusd == price.input_uusd, name


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        # (input, cached_input, cache_write, output) in µUSD per 1M tokens
        ("gpt-5.5", (5_000_000, 500_000, 5_000_000, 30_000_000)),
        ("gpt-5.4", (2_500_000, 250_000, 2_500_000, 15_000_000)),
        ("gpt-5.4-mini", (750_000, 75_000, 750_000, 4_500_000)),
        ("gpt-5.4-nano", (200_000, 20_000, 200_000, 1_250_000)),
        ("gpt-5-nano", (50_000, 5_000, 50_000, 400_000)),
        ("claude-opus-5", (5_000_000, 500_000, 6_250_000, 25_000_000)),
        ("claude-sonnet-4-6", (3_000_000, 300_000, 3_750_000, 15_000_000)),
        ("claude-haiku-4-5", (1_000_000, 100_000, 1_250_000, 5_000_000)),
        ("gemini-2.5-flash", (300_000, 30_000, 300_000, 2_500_000)),
        ("deepseek-v4-pro", (435_000, 3_625, 435_000, 870_000)),
        ("deepseek-v4-flash", (140_000, 2_800, 140_000, 280_000)),
    ],
)
def test_shipped_figures_are_exact(
    catalog: PriceCatalog, model: str, fields: tuple[int, int, int, int]
) -> None:
    price = catalog.price_for(model, date(2026, 11, 28))
    assert price is not None
    got = (price.input_uusd, price.cached_input_uusd, price.cache_write_uusd, price.output_uusd)
    assert got == fields


def test_yaml_decimals_never_go_through_binary_floats() -> None:
    # 0.29 and 0.57 are the classic floats that truncate wrongly: int(0.29 * 1e6) == 289999.
    catalog = PriceCatalog.from_yaml("models:\n  m: {input: 0.29, output: 0.57}\n")
    price = catalog.price_for("m")
    assert price is not None
    assert (price.input_uusd, price.output_uusd) == (290_000, 570_000)


# ---------------------------------------------------------------------- lookups
def test_lookup_exact_alias_and_dated_suffix(catalog: PriceCatalog) -> None:
    assert catalog.resolve("gpt-5.4") == "gpt-5.4"
    assert catalog.resolve("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"  # alias
    assert catalog.resolve("deepseek-chat") == "deepseek-v4-flash"  # alias
    assert catalog.resolve("gpt-5.4-2026-03-05") == "gpt-5.4"
    assert catalog.resolve("claude-haiku-4-5-20251001") == "claude-haiku-4-5"
    # Unlisted snapshots resolve by suffix too, to the longest listed name.
    assert catalog.resolve("gpt-5.4-mini-2027-01-01") == "gpt-5.4-mini"
    assert catalog.resolve("claude-opus-4-1-20990101") == "claude-opus-4-1"
    assert catalog.resolve("gemini-2.5-pro-001") == "gemini-2.5-pro"
    assert catalog.price_for("gpt-5.4-2026-03-05") is catalog.price_for("gpt-5.4")


def test_lookup_never_prices_a_different_model_as_its_prefix(catalog: PriceCatalog) -> None:
    # A word after the '-' names another model (often a much dearer one): unknown, not cheap.
    for model in ["gpt-5.4-turbo", "o3-mini", "o4-mini-deep-research", "gpt-5-chat-latest"]:
        assert catalog.price_for(model) is None, model
    assert catalog.resolve("gpt-5.4-pro") == "gpt-5.4-pro"  # listed in its own right
    for model in ["gpt-5.4x", "gpt", "", "-", "gpt-5.4-", "GPT-5.4", "unknown-model-2026"]:
        assert catalog.price_for(model) is None, model
        assert model not in catalog
    # The first GPT-4o snapshot kept its own, higher price.
    old, new = catalog.price_for("gpt-4o-2024-05-13"), catalog.price_for("gpt-4o-2024-11-20")
    assert old is not None and new is not None and old.input_uusd == 2 * new.input_uusd


def test_lookups_are_cached(catalog: PriceCatalog) -> None:
    fresh = PriceCatalog.load_default()
    first = fresh.entry("claude-haiku-4-5-20251001")
    assert fresh.entry("claude-haiku-4-5-20251001") is first
    info = fresh._resolve.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert fresh.price_for("nope-1") is None and fresh.price_for("nope-1") is None
    assert fresh._resolve.cache_info().hits == 2


def test_models_lists_names_not_aliases(catalog: PriceCatalog) -> None:
    names = catalog.models()
    assert list(names) == sorted(names)
    assert "gpt-5.4" in names and "claude-sonnet-4-5-20250929" not in names


# ------------------------------------------------------------------------- dates
def test_effective_date_selects_the_price_in_force(catalog: PriceCatalog) -> None:
    def o3_input(at: date) -> int:
        price = catalog.price_for("o3", at)
        assert price is not None
        return price.input_uusd

    assert o3_input(date(2025, 5, 1)) == 10_000_000
    assert o3_input(date(2025, 6, 9)) == 10_000_000
    assert o3_input(date(2025, 6, 10)) == 2_000_000  # the day a price takes effect
    assert o3_input(date(2026, 1, 1)) == 2_000_000
    assert o3_input(date(2020, 1, 1)) == 10_000_000  # before the list: its first entry
    today = catalog.price_for("o3")
    assert today is not None and today.input_uusd == 2_000_000

    sonnet = [catalog.price_for("claude-sonnet-5-5", date(2026, 10, d)) for d in (6, 7)]
    assert [p.cached_input_uusd for p in sonnet if p] == [200_000, 100_000]
    pro = [catalog.price_for("deepseek-v4-pro", date(2026, 4, d)) for d in (24, 25, 26, 27)]
    assert [p.input_uusd for p in pro if p] == [1_740_000, 1_740_000, 435_000, 435_000]


def test_datetimes_are_priced_on_their_utc_day(catalog: PriceCatalog) -> None:
    eve = datetime(2025, 6, 9, 23, 30, tzinfo=timezone(timedelta(hours=-3)))  # 02:30 UTC, 10th
    price = catalog.price_for("o3", eve)
    assert price is not None and price.input_uusd == 2_000_000
    naive = catalog.price_for("o3", datetime(2025, 6, 9, 23, 30))
    assert naive is not None and naive.input_uusd == 10_000_000
    utc = catalog.price_for("o3", datetime(2025, 6, 10, 0, 0, tzinfo=UTC))
    assert utc is not None and utc.input_uusd == 2_000_000


# ------------------------------------------------------------------------- tiers
@pytest.mark.parametrize(
    ("model", "last_base", "base_input", "tier_input"),
    [
        ("gemini-2.5-pro", 200_000, 1_250_000, 2_500_000),
        ("gpt-5.4", 272_000, 2_500_000, 5_000_000),
        ("gpt-5.5", 272_000, 5_000_000, 10_000_000),
        ("claude-haiku-5-5", 100_000, 100_000, 500_000),
    ],
)
def test_tier_selection_at_the_boundary(
    catalog: PriceCatalog, model: str, last_base: int, base_input: int, tier_input: int
) -> None:
    price = catalog.price_for(model)
    assert price is not None
    assert price.for_input(0).input_uusd == base_input
    assert price.for_input(last_base) is price
    assert price.for_input(last_base + 1).input_uusd == tier_input
    assert price.for_input(10**9).input_uusd == tier_input


def test_tiers_in_yaml_may_give_min_or_above_and_any_order() -> None:
    catalog = PriceCatalog.from_mapping(
        {
            "m": {
                "input": 1,
                "output": 2,
                "tiers": [
                    {"min_input_tokens": 1000, "input": 3, "output": 4},
                    {"above_input_tokens": 99, "input": 2, "output": 3},
                ],
            }
        }
    )
    price = catalog.price_for("m")
    assert price is not None
    assert [price.for_input(n).input_uusd for n in (99, 100, 999, 1000)] == [
        1_000_000,
        2_000_000,
        2_000_000,
        3_000_000,
    ]


# --------------------------------------------------------------------- overrides
def test_short_form_override_adds_an_in_house_model(catalog: PriceCatalog) -> None:
    merged = catalog.merged(
        {"inhouse-llama": {"provider": "inhouse", "input": 0.04, "output": 0.12}}
    )
    price = merged.price_for("inhouse-llama", date(1999, 1, 1))
    assert price is not None
    assert price == Price(40_000, 40_000, 40_000, 120_000, effective=ALWAYS)
    assert merged.entry("inhouse-llama").provider == "inhouse"  # type: ignore[union-attr]
    assert catalog.price_for("inhouse-llama") is None  # the original is untouched
    assert len(merged) == len(catalog) + 1


def test_short_form_override_replaces_prices_but_keeps_ids(catalog: PriceCatalog) -> None:
    merged = catalog.merged({"claude-sonnet-4-5": {"input": "2.7", "output": "13.5"}})
    price = merged.price_for("claude-sonnet-4-5-20250929", date(2025, 1, 1))
    assert price is not None
    assert (price.input_uusd, price.cache_write_uusd, price.output_uusd) == (
        2_700_000,
        2_700_000,
        13_500_000,
    )
    entry = merged.entry("claude-sonnet-4-5")
    assert entry is not None and entry.provider == "anthropic"
    assert entry.aliases == ("claude-sonnet-4-5-20250929",)
    original = catalog.price_for("claude-sonnet-4-5")
    assert original is not None and original.input_uusd == 3_000_000


def test_full_form_override_with_a_dated_list(catalog: PriceCatalog) -> None:
    merged = catalog.merged(
        {
            "gpt-5.4-mini": {
                "provider": "azure",
                "aliases": ["my-mini"],
                "prices": [
                    {"effective": "2026-12-01", "input": 0.5, "output": 3},
                    {"effective": date(2026, 3, 17), "input": 0.75, "output": 4.5},
                ],
            }
        }
    )
    assert merged.resolve("my-mini") == "gpt-5.4-mini"
    entry = merged.entry("gpt-5.4-mini")
    assert entry is not None and (entry.provider, entry.aliases) == ("azure", ("my-mini",))
    assert merged.resolve("gpt-5.4-mini-2026-03-17") == "gpt-5.4-mini"  # by its dated suffix
    before, after = (
        merged.price_for("my-mini", date(2026, 11, 30)),
        merged.price_for("my-mini", date(2026, 12, 1)),
    )
    assert before is not None and before.input_uusd == 750_000
    assert after is not None and after.input_uusd == 500_000


def test_override_of_an_alias_prices_exactly_that_id(catalog: PriceCatalog) -> None:
    merged = catalog.merged({"claude-sonnet-4-5-20250929": {"input": 1, "output": 1}})
    snapshot = merged.price_for("claude-sonnet-4-5-20250929")
    assert snapshot is not None and snapshot.input_uusd == 1_000_000
    family = merged.price_for("claude-sonnet-4-5")
    assert family is not None and family.input_uusd == 3_000_000


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ({"input": -1, "output": 1}, "input", "negative"),
        ({"input": "0.1234567", "output": 1}, "input", "6 decimal places"),
        ({"input": 1, "output": 1e-7}, "output", "6 decimal places"),
        ({"input": 1, "cached_input": "-0.01", "output": 1}, "cached_input", "negative"),
        ({"input": 1}, "output", "missing"),
        ({"output": 1}, "input", "missing"),
        ({"input": "free", "output": 1}, "input", "number"),
        ({"input": True, "output": 1}, "input", "number"),
        ({"input": float("inf"), "output": 1}, "input", "number"),
        ({"input": 1, "output": 1, "cache_read": 0.1}, "cache_read", "not a known field"),
        ({"input": 1, "output": 1, "effective": "May 4th"}, "effective", "date"),
        ({"prices": [{"input": 1, "output": 1}]}, "prices[0].effective", "missing"),
        (
            {"prices": [{"effective": "2026-01-01", "input": 1, "output": 1}], "input": 2},
            "input",
            "beside",
        ),
        (
            {
                "prices": [
                    {"effective": "2026-01-01", "input": 1, "output": 1},
                    {"effective": "2026-01-01", "input": 2, "output": 1},
                ]
            },
            "prices",
            "two prices",
        ),
        (
            {"input": 1, "output": 1, "tiers": [{"above_input_tokens": 10, "input": 2}]},
            "tiers[0].output",
            "missing",
        ),
        (
            {
                "prices": [
                    {
                        "effective": "2026-01-01",
                        "input": 1,
                        "output": 1,
                        "tiers": [{"above_input_tokens": 10, "input": "0.0000001", "output": 1}],
                    }
                ]
            },
            "prices[0].tiers[0].input",
            "6 decimal places",
        ),
        ({"input": 1, "output": 1, "tiers": [{"input": 2, "output": 2}]}, "tiers[0]", "exactly"),
        ({"input": 1, "output": 1, "aliases": "m2"}, "aliases", "list"),
    ],
)
def test_bad_prices_name_the_model_and_field(entry: dict, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        PriceCatalog.from_mapping({"acme-model": entry})
    message = str(caught.value)
    assert "'acme-model'" in message
    assert f"'{field}" in message
    assert problem in message


def test_bad_overrides_are_rejected_too(catalog: PriceCatalog) -> None:
    with pytest.raises(ConfigError, match=r"'gpt-5\.4'.*'output'.*negative"):
        catalog.merged({"gpt-5.4": {"input": 1, "output": "-2"}})
    with pytest.raises(ConfigError, match="already an alias"):
        catalog.merged({"other": {"input": 1, "output": 1, "aliases": ["deepseek-chat"]}})


def test_alias_collisions_are_rejected() -> None:
    with pytest.raises(ConfigError, match="name of another model"):
        PriceCatalog.from_mapping(
            {"a": {"input": 1, "output": 1, "aliases": ["b"]}, "b": {"input": 1, "output": 1}}
        )


def test_bad_documents_are_rejected() -> None:
    for text in ["", "models: [1, 2]", "models: {m: {input: 1, output: [}", "prices: {}"]:
        with pytest.raises(ConfigError):
            PriceCatalog.from_yaml(text)
    with pytest.raises(ConfigError, match="entry must be a mapping"):
        PriceCatalog.from_mapping({"m": 1.5})


@pytest.mark.parametrize(
    ("value", "uusd"),
    [
        (0, 0),
        (1, 1_000_000),
        ("0.075", 75_000),
        (0.075, 75_000),
        (Decimal("0.003625"), 3_625),
        ("  2.50  ", 2_500_000),
        ("1.5000000000", 1_500_000),  # trailing zeros are not extra precision
        ("0.000001", 1),
        (1234.5, 1_234_500_000),
    ],
)
def test_parse_uusd_is_exact(value: object, uusd: int) -> None:
    assert parse_uusd(value, model="m", field="input") == uusd


def test_a_scheduled_price_is_not_charged_before_its_day() -> None:
    catalog = PriceCatalog.from_mapping(
        {
            "m": {
                "prices": [
                    {"effective": "2020-01-01", "input": 1, "output": 1},
                    {"effective": "2999-01-01", "input": 9, "output": 9},
                ]
            }
        }
    )
    today = catalog.price_for("m")
    assert today is not None and today.input_uusd == 1_000_000
    later = catalog.price_for("m", date(2999, 1, 1))
    assert later is not None and later.input_uusd == 9_000_000
