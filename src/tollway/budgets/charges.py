"""What a request charges each kind of counter line: the worst case at reserve, the real
amounts at settle. Budget units are weighted by the peak schedule and rounded up (never
under-charged); rate limits count raw requests and tokens."""

from __future__ import annotations

from collections.abc import Callable

from tollway.budgets.model import BudgetSpec
from tollway.budgets.store import Line, LineKind
from tollway.budgets.ticket import Spec
from tollway.metering.catalog import Price
from tollway.metering.peak import MILLI
from tollway.metering.pricing import PricedUsage, apply_discount
from tollway.metering.usage import Usage

PriceFn = Callable[[Usage], PricedUsage]
"""Prices a usage: list and actual (discounted) cost in pico-USD."""

# What each spec charges: budget units, then rate-limit metrics.
USD_ACTUAL, USD_LIST, TOK_IN, TOK_OUT, TOK_TOTAL, REQUESTS, RATE_TOKENS, CONCURRENT = range(8)
UNIT_CODES = {
    "usd_actual": USD_ACTUAL,
    "usd_list": USD_LIST,
    "tokens_input": TOK_IN,
    "tokens_output": TOK_OUT,
    "tokens_total": TOK_TOTAL,
}
METRIC_CODES = {"requests": REQUESTS, "tokens": RATE_TOKENS, "concurrent": CONCURRENT}


def worst_cost(
    price: Price | PriceFn | None, discount_ppm: int, input_tokens: int, output_tokens: int
) -> tuple[int, int]:
    """(list, actual) pico-USD of the dearest way the request could be billed."""
    if price is None:
        return 0, 0
    if isinstance(price, Price):
        rates = price.for_input(input_tokens) if price.tiers else price
        dearest = max(rates.input_uusd, rates.cached_input_uusd, rates.cache_write_uusd)
        list_pusd = input_tokens * dearest + output_tokens * rates.output_uusd
        actual = list_pusd if not discount_ppm else apply_discount(list_pusd, discount_ppm)
        return list_pusd, actual
    plain = price(Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    written = price(
        Usage(
            input_tokens=input_tokens, cache_write_tokens=input_tokens, output_tokens=output_tokens
        )
    )
    return (
        max(plain.list_cost_pusd, written.list_cost_pusd),
        max(plain.actual_cost_pusd, written.actual_cost_pusd),
    )


def charges(
    weight: int, list_pusd: int, actual_pusd: int, inp: int, out: int, holding: int
) -> tuple[int, ...]:
    """What a request charges in each kind of line, indexed by the codes above.

    Budget units are weighted (rounded up: never under-charged); rate limits count raw
    requests and tokens; a concurrency line holds `holding` (1 at reserve, 0 at settle).
    """
    return (
        -(-actual_pusd * weight // MILLI),
        -(-list_pusd * weight // MILLI),
        -(-inp * weight // MILLI),
        -(-out * weight // MILLI),
        -(-(inp + out) * weight // MILLI),
        1,
        inp + out,
        holding,
    )


def line_of(spec: Spec) -> Line:
    if isinstance(spec, BudgetSpec):
        return Line(spec.counter_key, spec.window, spec.hard_limit, "budget")
    kind: LineKind = "concurrency" if spec.metric == "concurrent" else "rate"
    return Line(spec.counter_key, spec.window, spec.limit, kind)
