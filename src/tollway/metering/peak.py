"""Peak-hour weighting: what a request charges against budgets depends on when it is made.

A weight multiplies a request's *budget charge* only; cost reports keep the provider's
price. Weights are exact: integer **milli-weights** (2.0 is ``2000``) read from config as
decimals, and `weighted` rounds the product **up**, so weighting never under-charges.

Config (one mapping; every field but `timezone` optional)::

    peak:
      timezone: Europe/Berlin          # required: an IANA zone, never the server's
      default_weight: 0.5              # hours no rule covers (nights, weekends)
      rules:                           # first matching rule wins
        - {days: mon-fri, hours: "09-12", weight: 2.0}
        - {days: [mon, tue, wed, thu, fri], hours: [13, 17], weight: 2.0}
        - {days: weekdays, hours: "07-20", weight: 1.0}
      effective:                       # later schedules, each in force from a local date
        - effective_from: 2027-01-01
          default_weight: 1.0
          rules: [{days: all, hours: "00-24", weight: 1.0}]
      models: {inhouse-sim: 0.5}       # this model always weighs this much
      tags: {batch: 0.5, nightly: 0.25}

With neither `rules` nor `default_weight`, the top-level schedule is the default one: 2.0
in weekday peak hours 09-12 and 13-17, 1.0 in the weekday shoulders 07-09, 12-13 and
17-20, 0.5 at night and on weekends. Otherwise hours that no rule covers weigh
`default_weight` (1.0 if absent), so an entry with no rules is a flat schedule. Hour
ranges are local wall-clock hours, start inclusive and end exclusive; ``"22-06"`` wraps
past midnight (22-24 and 00-06 of the same listed days).

Precedence: a **model** override wins outright (the in-house model weighs the same at any
hour); otherwise, if any of the request's **tags** has a weight, the *lowest* such weight
applies (a request tagged both ``batch`` and ``interactive`` is charged as batch work: tags
can only be chosen to lower a charge that the operator agreed to lower); otherwise the
schedule in force at the request's instant gives the weight of its local weekday and hour.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tollway.errors import ConfigError

__all__ = ["MILLI", "PeakSchedule", "WeightTable", "load_timezone", "parse_weight", "weighted"]

MILLI = 1000
"""A milli-weight of 1000 is a weight of 1.0."""

_MAX_WEIGHT = 1_000 * MILLI
_SLOT_MS = 15 * 60_000  # every current UTC offset is a multiple of 15 minutes
_WEEK_HOURS = 7 * 24
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_SETS: dict[str, frozenset[int]] = {
    "all": frozenset(range(7)),
    "daily": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekday": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_SCHEDULE_KEYS = frozenset({"timezone", "default_weight", "rules", "effective_from"})
_TOP_KEYS = _SCHEDULE_KEYS | {"effective", "models", "tags"}
_RULE_KEYS = frozenset({"days", "hours", "weight"})


def weighted(amount: int, weight_milli: int) -> int:
    """``amount x weight``, rounded up to a whole unit (a weighted charge never falls short)."""
    return -(-amount * weight_milli // MILLI)


def parse_weight(value: object, *, field: str) -> int:
    """A weight from config (``2``, ``0.5``, ``"1.25"``) as an exact milli-weight."""
    if isinstance(value, bool):
        raise ConfigError(f"{field}: must be a number like 2.0 or 0.5, got {value!r}")
    if isinstance(value, float):
        value = repr(value)  # the shortest repr is the decimal that was written
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"{field}: must be a number like 2.0 or 0.5, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{field}: must be a number of at least 0, got {value!r}")
    milli = amount * MILLI
    if milli != milli.to_integral_value():
        raise ConfigError(f"{field}: has more than 3 decimal places: {value}")
    if milli > _MAX_WEIGHT:
        raise ConfigError(f"{field}: must be at most {_MAX_WEIGHT // MILLI}, got {value}")
    return int(milli)


@dataclass(frozen=True, slots=True)
class WeightTable:
    """One schedule: a milli-weight for each local (weekday, hour), from `starts_ms` on."""

    tz: ZoneInfo
    weights: tuple[int, ...]  # 168 entries, index weekday * 24 + hour (Monday = 0)
    starts_ms: int | None = None  # None: in force since forever
    effective_from: date | None = None

    def __post_init__(self) -> None:
        if len(self.weights) != _WEEK_HOURS:
            raise ValueError("a weight table has 168 hours")

    def at(self, weekday: int, hour: int) -> int:
        """The milli-weight of local `weekday` (Monday = 0) and `hour`."""
        return self.weights[weekday * 24 + hour]


class PeakSchedule:
    """Weights by model, tag and local time; `weight_at` is a few dict lookups when warm."""

    __slots__ = ("_slot", "_starts", "_tables", "model_weights", "tag_weights")

    def __init__(
        self,
        tables: Sequence[WeightTable],
        *,
        model_weights: Mapping[str, int] | None = None,
        tag_weights: Mapping[str, int] | None = None,
    ) -> None:
        if not tables:
            raise ValueError("a peak schedule needs at least one weight table")
        ordered = sorted(tables, key=lambda t: -(2**63) if t.starts_ms is None else t.starts_ms)
        if any(t.starts_ms is None for t in ordered[1:]):
            raise ValueError("only the first weight table may lack a start")
        self._tables: tuple[WeightTable, ...] = tuple(ordered)
        self._starts: tuple[int, ...] = tuple(
            -(2**63) if t.starts_ms is None else t.starts_ms for t in ordered
        )
        self.model_weights: dict[str, int] = dict(model_weights or {})
        self.tag_weights: dict[str, int] = dict(tag_weights or {})
        self._slot: tuple[int, int] = (-1, MILLI)  # (15-minute UTC slot, its weight)

    # ----------------------------------------------------------------- building
    @classmethod
    def flat(cls, weight_milli: int = MILLI) -> PeakSchedule:
        """The same weight at every hour (no peak weighting)."""
        return cls([WeightTable(ZoneInfo("UTC"), (weight_milli,) * _WEEK_HOURS)])

    @classmethod
    def default(cls, timezone: str) -> PeakSchedule:
        """The default schedule (2.0 peak, 1.0 shoulder, 0.5 off-peak) in `timezone`."""
        return cls.from_config({"timezone": timezone})

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], *, where: str = "peak") -> PeakSchedule:
        """Build a schedule from its config mapping (see the module docstring)."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: must be a mapping with at least a 'timezone'")
        _check_keys(raw, _TOP_KEYS, where)
        if "timezone" not in raw:
            raise ConfigError(f"{where}.timezone: is required (an IANA zone like 'Europe/Berlin')")
        if "effective_from" in raw:
            raise ConfigError(f"{where}.effective_from: belongs in the entries of 'effective'")
        top_tz = load_timezone(raw["timezone"], field=f"{where}.timezone")
        base_default = "rules" not in raw and "default_weight" not in raw
        tables = [_table(raw, f"{where}", top_tz, default_rules=base_default)]
        effective = raw.get("effective") or []
        if not isinstance(effective, list):
            raise ConfigError(f"{where}.effective: must be a list of dated schedules")
        seen: set[int] = set()
        for index, entry in enumerate(effective):
            field = f"{where}.effective[{index}]"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{field}: must be a mapping")
            _check_keys(entry, _SCHEDULE_KEYS, field)
            if "effective_from" not in entry:
                raise ConfigError(f"{field}.effective_from: is required (a date like 2027-01-01)")
            tz = (
                load_timezone(entry["timezone"], field=f"{field}.timezone")
                if "timezone" in entry
                else top_tz
            )
            table = _table(entry, field, tz, default_rules=False)
            assert table.starts_ms is not None
            if table.starts_ms in seen:
                raise ConfigError(f"{field}.effective_from: two schedules start at the same time")
            seen.add(table.starts_ms)
            tables.append(table)
        models = _weights_map(raw.get("models"), f"{where}.models")
        tags = _weights_map(raw.get("tags"), f"{where}.tags")
        return cls(tables, model_weights=models, tag_weights=tags)

    # ----------------------------------------------------------------- lookups
    @property
    def tables(self) -> tuple[WeightTable, ...]:
        """The weight tables, oldest first."""
        return self._tables

    def weight_at(self, epoch_ms: int, model: str | None = None, tags: Iterable[str] = ()) -> int:
        """The milli-weight of a request to `model` with `tags` made at `epoch_ms`."""
        if model is not None and self.model_weights:
            override = self.model_weights.get(model)
            if override is not None:
                return override
        if tags and self.tag_weights:
            lowest: int | None = None
            for tag in tags:
                value = self.tag_weights.get(tag)
                if value is not None and (lowest is None or value < lowest):
                    lowest = value
            if lowest is not None:
                return lowest
        return self.time_weight(epoch_ms)

    def time_weight(self, epoch_ms: int) -> int:
        """The schedule's milli-weight at `epoch_ms`, ignoring model and tag overrides."""
        slot = epoch_ms // _SLOT_MS
        cached = self._slot
        if cached[0] == slot:
            return cached[1]
        first = self._exact(slot * _SLOT_MS)
        if first == self._exact(slot * _SLOT_MS + _SLOT_MS - 1) and self._uniform(slot):
            self._slot = (slot, first)
            return first
        return self._exact(epoch_ms)  # a slot split by an odd offset or a schedule switch

    def _uniform(self, slot: int) -> bool:
        start, end = slot * _SLOT_MS, slot * _SLOT_MS + _SLOT_MS
        index = bisect.bisect_right(self._starts, start)
        return index >= len(self._starts) or self._starts[index] >= end

    def _exact(self, epoch_ms: int) -> int:
        table = self._tables[bisect.bisect_right(self._starts, epoch_ms) - 1]
        local = datetime.fromtimestamp(epoch_ms // 1000, table.tz)
        return table.weights[local.weekday() * 24 + local.hour]

    def __repr__(self) -> str:
        zones = ", ".join(t.tz.key for t in self._tables)
        return f"<PeakSchedule {len(self._tables)} table(s) in {zones}>"


# --------------------------------------------------------------------- parsing
_DEFAULT_RULES: tuple[Mapping[str, Any], ...] = (
    {"days": "weekdays", "hours": "09-12", "weight": "2.0"},
    {"days": "weekdays", "hours": "13-17", "weight": "2.0"},
    {"days": "weekdays", "hours": "07-20", "weight": "1.0"},
)
_DEFAULT_OFF_PEAK = "0.5"


def _table(raw: Mapping[str, Any], where: str, tz: ZoneInfo, *, default_rules: bool) -> WeightTable:
    if default_rules:
        rules: Any = list(_DEFAULT_RULES)
        default = parse_weight(_DEFAULT_OFF_PEAK, field=f"{where}.default_weight")
    else:
        rules = raw.get("rules") or []
        default = parse_weight(raw.get("default_weight", 1), field=f"{where}.default_weight")
    if not isinstance(rules, list):
        raise ConfigError(f"{where}.rules: must be a list of {{days, hours, weight}}")
    cells = [default] * _WEEK_HOURS
    filled = [False] * _WEEK_HOURS
    for index, rule in enumerate(rules):
        field = f"{where}.rules[{index}]"
        if not isinstance(rule, Mapping):
            raise ConfigError(f"{field}: must be a mapping with days, hours and weight")
        _check_keys(rule, _RULE_KEYS, field)
        if "weight" not in rule:
            raise ConfigError(f"{field}.weight: is required")
        weight = parse_weight(rule["weight"], field=f"{field}.weight")
        days = _days(rule.get("days", "all"), f"{field}.days")
        hours = _hours(rule.get("hours", "00-24"), f"{field}.hours")
        for day in days:
            for hour in hours:
                cell = day * 24 + hour
                if not filled[cell]:  # first matching rule wins
                    cells[cell], filled[cell] = weight, True
    starts_ms: int | None = None
    effective: date | None = None
    if "effective_from" in raw:
        effective = _date(raw["effective_from"], f"{where}.effective_from")
        local = datetime(effective.year, effective.month, effective.day, tzinfo=tz)
        starts_ms = int(local.timestamp()) * 1000
    return WeightTable(tz, tuple(cells), starts_ms, effective)


def _days(raw: object, field: str) -> frozenset[int]:
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _DAY_SETS:
            return _DAY_SETS[text]
        if "-" in text:
            first, _, last = text.partition("-")
            a, b = _day(first, field), _day(last, field)
            return (
                frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(b + 1)])
            )
        return frozenset({_day(text, field)})
    if isinstance(raw, list) and raw:
        result: set[int] = set()
        for item in raw:
            result |= _days(item, field) if isinstance(item, str) else {_day(item, field)}
        return frozenset(result)
    raise ConfigError(f"{field}: must be like 'mon-fri', 'weekends', 'all' or [mon, wed]")


def _day(raw: object, field: str) -> int:
    name = raw.strip().lower()[:3] if isinstance(raw, str) else None
    if name in _DAY_NAMES:
        return _DAY_NAMES.index(name)
    raise ConfigError(f"{field}: unknown day {raw!r} (use mon, tue, wed, thu, fri, sat, sun)")


def _hours(raw: object, field: str) -> list[int]:
    start: object
    end: object
    if isinstance(raw, str) and "-" in raw:
        start, _, end = (part.strip() for part in raw.partition("-"))
    elif isinstance(raw, list | tuple) and len(raw) == 2:
        start, end = raw
    else:
        raise ConfigError(f"{field}: must be a range like '09-17' or [9, 17]")
    try:
        a, b = int(str(start).split(":")[0]), int(str(end).split(":")[0])
    except ValueError:
        raise ConfigError(f"{field}: must be a range like '09-17' or [9, 17]") from None
    if not (0 <= a <= 23 and 1 <= b <= 24) or a == b:
        raise ConfigError(f"{field}: hours must be 0..24 with start != end, got {raw!r}")
    return list(range(a, b)) if a < b else [*range(a, 24), *range(b)]


def _weights_map(raw: object, field: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{field}: must be a mapping of name to weight")
    return {str(name): parse_weight(value, field=f"{field}.{name}") for name, value in raw.items()}


def load_timezone(raw: object, *, field: str) -> ZoneInfo:
    """An IANA timezone by name, or a ConfigError naming `field`."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{field}: must be an IANA timezone name like 'Europe/Berlin'")
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{field}: unknown timezone {raw!r}") from None


def _date(raw: object, field: str) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ConfigError(f"{field}: must be a date like 2027-01-01, got {raw!r}")


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: is not a known field ({', '.join(sorted(allowed))})"
        )
