"""Pricing arithmetic: usage times price, discounts, and display, all in exact integers.

A `Price` is in micro-USD per 1M tokens, so N tokens cost ``N * price`` pico-USD (1e-12
USD) with no rounding at all; sums of costs are exact too. The only rounding anywhere is
`apply_discount`'s: once per request, half up, to the pico-USD, so a discounted cost is
never more than 0.5 pUSD away from the exact product (a 5e-13 USD error per request; a
billion requests stay within a twentieth of a cent).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from tollway.errors import ConfigError
from tollway.metering.catalog import Price, _decimal, _scaled_int
from tollway.metering.usage import Usage

__all__ = [
    "PPM",
    "Discount",
    "PricedUsage",
    "apply_discount",
    "cost_pusd",
    "format_usd",
    "price_usage",
    "pusd_to_usd",
]

PPM = 1_000_000
"""Parts per million: a discount of 15% is 150_000 ppm."""

_PUSD_PER_USD_EXPONENT = -12


def cost_pusd(usage: Usage, price: Price) -> int:
    """The list cost of `usage` at `price`, in pico-USD (exact).

    The tier is chosen by all prompt tokens (``usage.input_tokens``). Uncached input is
    ``input - cached - cache_write``; should an upstream report more cached and
    cache-write tokens than prompt tokens, uncached input is clamped to 0 and the cached
    and cache-write counts are billed as reported. Reasoning tokens are part of output.
    """
    input_tokens = usage.input_tokens
    rates = price.for_input(input_tokens) if price.tiers else price
    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    uncached = input_tokens - cached - written
    if uncached < 0:
        uncached = 0
    return (
        uncached * rates.input_uusd
        + cached * rates.cached_input_uusd
        + written * rates.cache_write_uusd
        + usage.output_tokens * rates.output_uusd
    )


def apply_discount(list_pusd: int, discount_ppm: int) -> int:
    """``list_pusd * (1 - discount)``, rounded half up to the pico-USD, in integers only."""
    if not 0 <= discount_ppm <= PPM:
        raise ValueError(f"discount must be 0..{PPM} ppm, got {discount_ppm}")
    return (list_pusd * (PPM - discount_ppm) + PPM // 2) // PPM


@dataclass(frozen=True, slots=True)
class Discount:
    """A negotiated discount off list price, in integer parts per million."""

    ppm: int = 0

    def __post_init__(self) -> None:
        if type(self.ppm) is not int or not 0 <= self.ppm <= PPM:
            raise ValueError(f"discount must be an int of 0..{PPM} ppm, got {self.ppm!r}")

    @classmethod
    def parse(cls, value: object, *, name: str = "discount") -> Discount:
        """Read a discount from config: a fraction (0.15, "0.15") or a percent ("15%").

        Raises ConfigError naming `name` if it is not within 0..100% or is finer than
        one part per million.
        """
        if isinstance(value, Discount):
            return value
        if isinstance(value, str) and value.strip().endswith("%"):
            amount, places = _decimal(value.strip()[:-1]), 4
        else:
            amount, places = _decimal(value), 6
        if amount is None:
            raise ConfigError(f"{name}: must be a fraction like 0.15 or a percent like '15%'")
        ppm = _scaled_int(amount, places)
        if ppm is None:
            raise ConfigError(f"{name}: {value!r} is finer than one part per million")
        if not 0 <= ppm <= PPM:
            raise ConfigError(f"{name}: {value!r} is not between 0 and 100%")
        return cls(ppm)

    def apply(self, list_pusd: int) -> int:
        """The discounted cost of `list_pusd` (see `apply_discount`)."""
        return apply_discount(list_pusd, self.ppm)


@dataclass(frozen=True, slots=True)
class PricedUsage:
    """What one request cost: at list price, and after the discount (pico-USD)."""

    list_cost_pusd: int
    actual_cost_pusd: int

    @property
    def list_cost_usd(self) -> Decimal:
        return pusd_to_usd(self.list_cost_pusd)

    @property
    def actual_cost_usd(self) -> Decimal:
        return pusd_to_usd(self.actual_cost_pusd)


def price_usage(usage: Usage, price: Price, discount_ppm: int = 0) -> PricedUsage:
    """Price `usage`: its exact list cost and its discounted (actual) cost."""
    list_cost = cost_pusd(usage, price)
    actual = list_cost if discount_ppm == 0 else apply_discount(list_cost, discount_ppm)
    return PricedUsage(list_cost_pusd=list_cost, actual_cost_pusd=actual)


def pusd_to_usd(pusd: int) -> Decimal:
    """Pico-USD as an exact Decimal number of USD."""
    return Decimal(pusd).scaleb(_PUSD_PER_USD_EXPONENT)


def format_usd(pusd: int, places: int = 6) -> str:
    """Pico-USD for display, rounded half up to `places` decimals: ``$1,234.567890``."""
    if places < 0:
        raise ValueError("places must be >= 0")
    amount = pusd_to_usd(abs(pusd)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if pusd < 0 and amount else ""
    return f"{sign}${amount:,.{places}f}"
