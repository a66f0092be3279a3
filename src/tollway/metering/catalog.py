"""The price catalog: list prices per model, dated, tiered by prompt size, with aliases.

Money is integers. A price is **micro-USD per 1M tokens** (µUSD/Mtok): $0.075 per 1M
tokens is ``75_000``, so the cost of N tokens is ``N * price`` **pico-USD**, exactly. Prices
are read from YAML or config as decimals (``decimal.Decimal``, never binary floating point)
with at most 6 decimal places, and never negative.

One model's entry, in the packaged ``data/prices.yaml`` and in config overrides alike::

    gpt-5.4:
      provider: openai                     # optional
      aliases: [gpt-5.4-2026-03-05]        # optional; other ids of the same model
      prices:                              # a dated price list
        - effective: 2026-03-05            # in effect from this (UTC) day on
          input: 2.50                      # USD per 1M uncached prompt tokens
          cached_input: 0.25               # cache reads; default: input
          cache_write: 2.50                # cache writes; default: input
          output: 15.00                    # generated tokens, reasoning included
          tiers:                           # optional: whole-request prices for big prompts
            - {above_input_tokens: 272000, input: 5.00, cached_input: 0.50, output: 22.50}

A short form prices a model the same on every day: ``{input: 1.0, output: 2.0}`` (the price
fields at the top level, ``effective`` optional). ``PriceCatalog.merged`` applies config
overrides: an override replaces the named model's whole price list (keeping its provider and
aliases unless it gives new ones) or adds a new model.

Operator-priced in-house models need nothing special: give them an entry in config in the
same schema, with the operator's own cost per 1M tokens (e.g. GPU hours times their hourly
price divided by the tokens served in them), and they are metered, budgeted and reported
like any provider's model::

    prices:
      inhouse-llama: {provider: inhouse, input: 0.04, output: 0.12}

Lookups sit on the hot path: ``price_for`` resolves a model id (exact name, then alias, then
the longest listed name followed by a dated or numbered suffix) once, caches the answer, and
then picks the entry in effect by bisection over a handful of dates.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

import yaml

from tollway.errors import ConfigError

__all__ = ["ALWAYS", "ModelPrices", "Price", "PriceCatalog", "parse_uusd"]

ALWAYS = date.min
"""The `effective` date of a price that holds on every day (the short form)."""

_PRICE_FIELDS = ("input", "cached_input", "cache_write", "output")
_PRICE_KEYS = frozenset({*_PRICE_FIELDS, "effective", "tiers"})
_ENTRY_KEYS = frozenset({"provider", "aliases", "prices"}) | _PRICE_KEYS
_TIER_KEYS = frozenset({*_PRICE_FIELDS, "above_input_tokens", "min_input_tokens"})
_MAX_EXPONENT = 24  # a price above 10**18 USD per 1M tokens is a typo, not a price
_RESOLVE_CACHE_SIZE = 4096  # distinct model ids remembered; bounds memory under junk ids


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices in µUSD per 1M tokens, in effect from `effective` on.

    `tiers` maps a minimum prompt size (all input tokens) to the prices of a whole request
    at least that big, in ascending order; `for_input` picks the applicable one.
    """

    input_uusd: int
    cached_input_uusd: int
    cache_write_uusd: int
    output_uusd: int
    effective: date = ALWAYS
    tiers: tuple[tuple[int, Price], ...] = ()

    def __post_init__(self) -> None:
        for name in ("input_uusd", "cached_input_uusd", "cache_write_uusd", "output_uusd"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"Price.{name} must be a non-negative int, got {value!r}")
        previous = 0
        for min_tokens, tier in self.tiers:
            if type(min_tokens) is not int or min_tokens <= previous:
                raise ValueError("Price.tiers must have ascending minimums above 0")
            if tier.tiers:
                raise ValueError("a tier's price cannot have tiers of its own")
            previous = min_tokens

    def for_input(self, input_tokens: int) -> Price:
        """The price of a request whose prompt has `input_tokens` tokens in all."""
        chosen = self
        for min_tokens, tier in self.tiers:
            if input_tokens < min_tokens:
                break
            chosen = tier
        return chosen


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """A model's dated price list (ascending, distinct `effective` dates) and its ids."""

    name: str
    prices: tuple[Price, ...]
    provider: str | None = None
    aliases: tuple[str, ...] = ()
    _dates: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _latest_from: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.prices:
            raise ValueError(f"model {self.name!r} has no prices")
        dates = tuple(price.effective for price in self.prices)
        if any(later <= earlier for earlier, later in itertools.pairwise(dates)):
            raise ValueError(f"model {self.name!r}: prices must have ascending, distinct dates")
        object.__setattr__(self, "_dates", dates)
        # The latest price applies from this Unix time on: "today" then needs no calendar.
        latest = datetime.combine(dates[-1], datetime.min.time(), tzinfo=UTC)
        object.__setattr__(self, "_latest_from", latest.timestamp() if dates[-1] > ALWAYS else 0.0)

    def at(self, day: date | None = None) -> Price:
        """The price in effect on `day` (None: today, UTC).

        A day before the first entry gets the first entry: a model whose list starts late
        is never left unpriced.
        """
        if len(self.prices) == 1:
            return self.prices[0]
        if day is None:
            if time.time() >= self._latest_from:
                return self.prices[-1]
            day = _utc_today()
        index = bisect.bisect_right(self._dates, day) - 1
        return self.prices[max(index, 0)]


class PriceCatalog:
    """Every known model's price list, looked up by model id and date."""

    __slots__ = ("_aliases", "_entries", "_resolve")

    def __init__(self, entries: Iterable[ModelPrices] = ()) -> None:
        self._entries: dict[str, ModelPrices] = {}
        self._aliases: dict[str, str] = {}
        for entry in entries:
            if entry.name in self._entries:
                raise ConfigError(f"price catalog: model '{entry.name}' is listed twice")
            self._entries[entry.name] = entry
        for entry in self._entries.values():
            for alias in entry.aliases:
                if alias in self._entries:
                    raise ConfigError(
                        f"price catalog: model '{entry.name}': field 'aliases': "
                        f"'{alias}' is the name of another model"
                    )
                other = self._aliases.setdefault(alias, entry.name)
                if other != entry.name:
                    raise ConfigError(
                        f"price catalog: model '{entry.name}': field 'aliases': "
                        f"'{alias}' is already an alias of '{other}'"
                    )
        self._resolve = functools.lru_cache(maxsize=_RESOLVE_CACHE_SIZE)(self._resolve_uncached)

    # ----------------------------------------------------------------- building
    @classmethod
    def load_default(cls) -> PriceCatalog:
        """The catalog shipped with Tollway (``tollway/data/prices.yaml``)."""
        text = resources.files("tollway").joinpath("data/prices.yaml").read_text("utf-8")
        return cls.from_yaml(text)

    @classmethod
    def from_yaml(cls, text: str) -> PriceCatalog:
        """Read a YAML document whose ``models`` key holds the model entries."""
        try:
            document = yaml.load(text, Loader=_DecimalLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"price catalog: invalid YAML: {exc}") from exc
        if not isinstance(document, Mapping) or not isinstance(document.get("models"), Mapping):
            raise ConfigError("price catalog: the document needs a 'models' mapping")
        return cls.from_mapping(document["models"])

    @classmethod
    def from_mapping(cls, models: Mapping[str, Any]) -> PriceCatalog:
        """Build a catalog from a mapping of model name to entry (see the module docstring)."""
        return cls(_parse_entry(name, raw) for name, raw in _model_items(models))

    def merged(self, overrides: Mapping[str, Any]) -> PriceCatalog:
        """A new catalog with `overrides` (same schema, or the short form) applied."""
        entries = dict(self._entries)
        for name, raw in _model_items(overrides):
            base = entries.get(name)
            entry = _parse_entry(name, raw, base=base)
            if base is None and name in self._aliases:
                # Naming an alias prices exactly that id: it stops being an alias.
                owner = entries[self._aliases[name]]
                kept = tuple(alias for alias in owner.aliases if alias != name)
                entries[owner.name] = _replace_aliases(owner, kept)
            entries[name] = entry
        return PriceCatalog(entries.values())

    # ----------------------------------------------------------------- lookups
    def price_for(self, model: str, at: date | None = None) -> Price | None:
        """The price of `model` in effect on `at` (None: today, UTC), or None if unknown."""
        entry = self._resolve(model)
        if entry is None:
            return None
        return entry.at(_as_day(at) if at is not None else None)

    def entry(self, model: str) -> ModelPrices | None:
        """The full price list `model` resolves to, or None if unknown."""
        return self._resolve(model)

    def resolve(self, model: str) -> str | None:
        """The catalog name `model` resolves to, or None if unknown."""
        entry = self._resolve(model)
        return entry.name if entry is not None else None

    def models(self) -> tuple[str, ...]:
        """The catalog's model names (aliases excluded), sorted."""
        return tuple(sorted(self._entries))

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self._resolve(model) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<PriceCatalog {len(self._entries)} models>"

    def _resolve_uncached(self, model: str) -> ModelPrices | None:
        entry = self._entries.get(model)
        if entry is not None:
            return entry
        name = self._aliases.get(model)
        if name is not None:
            return self._entries[name]
        # Longest listed name followed by '-' and a suffix that starts with a digit: a dated
        # or numbered snapshot (gpt-5.4-2026-03-05, claude-haiku-4-5-20251001). A word suffix
        # (gpt-5.4-pro, o3-mini) is a different model and must not get this one's price.
        cut = len(model)
        while (cut := model.rfind("-", 0, cut)) > 0:
            if model[cut + 1 : cut + 2].isdigit():
                prefix = model[:cut]
                name = prefix if prefix in self._entries else self._aliases.get(prefix)
                if name is not None:
                    return self._entries[name]
        return None


# --------------------------------------------------------------------- parsing
def parse_uusd(value: object, *, model: str, field: str) -> int:
    """Parse a price in USD per 1M tokens into integer µUSD per 1M tokens.

    Accepts an int, a Decimal, a decimal string, or a float (read through its shortest
    repr, i.e. the decimal that was written); rejects negatives and more than 6 decimals.
    """
    amount = _decimal(value)
    if amount is None:
        raise _error(model, field, f"must be a number of USD per 1M tokens, got {value!r}")
    if amount < 0:
        raise _error(model, field, f"must not be negative, got {value}")
    uusd = _scaled_int(amount, 6)
    if uusd is None:
        raise _error(model, field, f"has more than 6 decimal places (or is too large): {value}")
    return uusd


def _decimal(value: object) -> Decimal | None:
    """`value` as a finite Decimal, or None if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest repr round-trips: it is the decimal that was written
    if isinstance(value, str):
        value = value.strip()
    if not isinstance(value, Decimal | int | str):
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _scaled_int(amount: Decimal, places: int) -> int | None:
    """``amount * 10**places`` if it is a whole number (exact, no context rounding), else None."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + places
    if shift > _MAX_EXPONENT:
        return None
    if shift >= 0:
        result = coefficient * 10**shift
    else:
        result, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            return None
    return -result if sign else result


def _error(model: str, field: str, problem: str) -> ConfigError:
    return ConfigError(f"price catalog: model '{model}': field '{field}' {problem}")


def _model_items(models: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    if not isinstance(models, Mapping):
        raise ConfigError("price catalog: models must be a mapping of model name to prices")
    for name, raw in models.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"price catalog: model name must be a non-empty string: {name!r}")
        yield name, raw


def _parse_entry(name: str, raw: Any, *, base: ModelPrices | None = None) -> ModelPrices:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"price catalog: model '{name}': entry must be a mapping, got {raw!r}")
    _check_keys(name, "", raw, _ENTRY_KEYS)
    provider: str | None = base.provider if base is not None else None
    if "provider" in raw:
        provider = raw["provider"]
        if provider is not None and not isinstance(provider, str):
            raise _error(name, "provider", f"must be a string, got {provider!r}")
    aliases: tuple[str, ...] = base.aliases if base is not None else ()
    if "aliases" in raw:
        aliases = _parse_aliases(name, raw["aliases"])
    if "prices" in raw:
        flat = sorted(key for key in raw if key in _PRICE_KEYS)
        if flat:
            raise _error(name, flat[0], "cannot be given beside a 'prices' list")
        listed = raw["prices"]
        if not isinstance(listed, list) or not listed:
            raise _error(name, "prices", "must be a non-empty list of dated prices")
        prices = []
        for index, item in enumerate(listed):
            where = f"prices[{index}]."
            if not isinstance(item, Mapping):
                raise _error(name, where[:-1], "must be a mapping")
            if "effective" not in item:
                raise _error(name, where + "effective", "is missing (a price list needs dates)")
            prices.append(_parse_price(name, where, item))
        prices.sort(key=lambda price: price.effective)
        for earlier, later in itertools.pairwise(prices):
            if earlier.effective == later.effective:
                raise _error(name, "prices", f"has two prices effective {later.effective}")
    else:
        prices = [_parse_price(name, "", raw)]
    return ModelPrices(name=name, prices=tuple(prices), provider=provider, aliases=aliases)


def _parse_aliases(name: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(a, str) and a for a in raw):
        raise _error(name, "aliases", f"must be a list of model ids, got {raw!r}")
    if name in raw:
        raise _error(name, "aliases", "must not contain the model's own name")
    return tuple(dict.fromkeys(raw))


def _parse_price(name: str, where: str, raw: Mapping[str, Any]) -> Price:
    if where:  # a dated list item; a flat entry's keys were checked with the entry's
        _check_keys(name, where, raw, _PRICE_KEYS)
    effective = _parse_date(name, where + "effective", raw.get("effective", ALWAYS))
    base = _parse_price_fields(name, where, raw)
    tiers_raw = raw.get("tiers") or []
    if not isinstance(tiers_raw, list):
        raise _error(name, where + "tiers", "must be a list")
    tiers: list[tuple[int, Price]] = []
    for index, tier_raw in enumerate(tiers_raw):
        tier_where = f"{where}tiers[{index}]."
        if not isinstance(tier_raw, Mapping):
            raise _error(name, tier_where[:-1], "must be a mapping")
        _check_keys(name, tier_where, tier_raw, _TIER_KEYS)
        min_tokens = _parse_tier_start(name, tier_where, tier_raw)
        tier = _parse_price_fields(name, tier_where, tier_raw)
        tiers.append((min_tokens, Price(*tier, effective=effective)))
    tiers.sort(key=lambda pair: pair[0])
    for (first, _), (second, _) in itertools.pairwise(tiers):
        if first == second:
            raise _error(name, where + "tiers", f"has two tiers starting at {second} tokens")
    return Price(*base, effective=effective, tiers=tuple(tiers))


def _parse_price_fields(name: str, where: str, raw: Mapping[str, Any]) -> tuple[int, int, int, int]:
    for required in ("input", "output"):
        if required not in raw:
            raise _error(name, where + required, "is missing")
    input_uusd = parse_uusd(raw["input"], model=name, field=where + "input")
    output_uusd = parse_uusd(raw["output"], model=name, field=where + "output")
    cached = raw.get("cached_input")
    cached_uusd = (
        input_uusd
        if cached is None
        else parse_uusd(cached, model=name, field=where + "cached_input")
    )
    write = raw.get("cache_write")
    write_uusd = (
        input_uusd if write is None else parse_uusd(write, model=name, field=where + "cache_write")
    )
    return input_uusd, cached_uusd, write_uusd, output_uusd


def _parse_tier_start(name: str, where: str, raw: Mapping[str, Any]) -> int:
    given = [key for key in ("above_input_tokens", "min_input_tokens") if key in raw]
    if len(given) != 1:
        raise _error(name, where + "above_input_tokens", "(or min_input_tokens) needs exactly one")
    key = given[0]
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _error(name, where + key, f"must be a whole number of tokens, got {value!r}")
    tokens = _scaled_int(Decimal(value), 0)
    if tokens is None or tokens < 0:
        raise _error(name, where + key, f"must be a whole number of tokens, got {value!r}")
    start = tokens + 1 if key == "above_input_tokens" else tokens
    if start < 1:
        raise _error(name, where + key, "must start a tier above 0 tokens")
    return start


def _parse_date(name: str, field: str, value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _error(name, field, f"must be a date like 2026-05-04, got {value!r}")


def _check_keys(name: str, where: str, raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise _error(
            name, where + unknown[0], f"is not a known field ({', '.join(sorted(allowed))})"
        )


def _replace_aliases(entry: ModelPrices, aliases: tuple[str, ...]) -> ModelPrices:
    return ModelPrices(
        name=entry.name, prices=entry.prices, provider=entry.provider, aliases=aliases
    )


def _as_day(at: date) -> date:
    if isinstance(at, datetime):
        return (at.astimezone(UTC) if at.tzinfo is not None else at).date()
    return at


def _utc_today() -> date:
    return datetime.now(UTC).date()


class _DecimalLoader(yaml.SafeLoader):
    """A SafeLoader that reads YAML floats as Decimal, so 0.075 stays exactly 0.075."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.nodes.ScalarNode) -> Decimal | float:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:  # .inf, .nan and friends: left as floats, rejected as prices
        return float(loader.construct_yaml_float(node))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
