"""What a budget or a rate limit is, and how config declares one.

A budget attaches to one subject of the org tree — an org, a team, a user, a virtual key —
or to a client tag, and limits a unit of spend over a window. Names are only unique within
their parent, so subjects carry their path: ``acme`` (org), ``acme/payments`` (team),
``acme/payments/ada`` (user), the key id (key), the tag itself (tag).

Amounts are integers in the unit's base: pico-USD for ``usd_actual`` (after the provider
discount) and ``usd_list`` (public price), tokens for ``tokens_input``, ``tokens_output``
and ``tokens_total``. Every budget unit is charged *weighted* by the peak schedule; rate
limits count raw requests and raw tokens (input + output).

Config::

    budgets:
      - scope: team
        subject: acme/payments          # or: org: acme, team: payments
        unit: usd_actual                # default
        window: month                   # day | week | month | rolling 24h | {rolling_hours: 6}
        timezone: Europe/Berlin         # calendar windows need one (or a default)
        soft_limit: "$400"              # "$400", "400 USD", 400, 400.50
        hard_limit: "$500"
      - {scope: user, subject: acme/payments/ada, unit: tokens_total, window: day,
         timezone: UTC, hard_limit: 2_000_000}     # or "2M tokens", "2,000,000"
    rate_limits:
      - {scope: key, subject: k_8f2a, rpm: 600, tpm: 200_000, concurrent: 20}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

from tollway.budgets.windows import CalendarWindow, RollingWindow, Window, load_timezone
from tollway.errors import ConfigError
from tollway.metering.pricing import format_usd

__all__ = [
    "PUSD_PER_USD",
    "BudgetSpec",
    "RateLimitSpec",
    "RateMetric",
    "Scope",
    "Unit",
    "format_amount",
    "parse_amount",
    "parse_budget",
    "parse_budgets",
    "parse_rate_limits",
    "parse_window",
    "subject_of",
]

Scope = Literal["org", "team", "user", "key", "tag"]
Unit = Literal["usd_actual", "usd_list", "tokens_input", "tokens_output", "tokens_total"]
RateMetric = Literal["requests", "tokens", "concurrent"]

PUSD_PER_USD = 10**12
_SCOPES: tuple[str, ...] = get_args(Scope)
_UNITS: tuple[str, ...] = get_args(Unit)
_PATH_DEPTH = {"org": 1, "team": 2, "user": 3}
_BUDGET_KEYS = frozenset(
    {"id", "label", "scope", "subject", "org", "team", "user", "key", "tag", "unit", "window"}
    | {"timezone", "soft_limit", "hard_limit"}
)
_RATE_KEYS = frozenset(
    {"scope", "subject", "org", "team", "user", "key", "tag", "rpm", "tpm", "concurrent"}
)
_SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9}
_ROLLING_RE = re.compile(r"^rolling[\s:_-]*(\d+)\s*h(?:ours?)?$")


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget: a limit on a weighted unit of spend for a subject over a window."""

    id: str
    scope: Scope
    subject: str
    unit: Unit
    window: Window
    soft_limit: int | None
    hard_limit: int | None
    label: str = ""
    counter_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scope not in _SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")
        if self.unit not in _UNITS:
            raise ValueError(f"unknown unit {self.unit!r}")
        if self.soft_limit is None and self.hard_limit is None:
            raise ValueError(f"budget {self.id!r} needs a soft or a hard limit")
        for name in ("soft_limit", "hard_limit"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"budget {self.id!r}: {name} must be a non-negative int")
        if not self.label:
            object.__setattr__(self, "label", self.id)
        object.__setattr__(self, "counter_key", "b:" + self.id)

    @property
    def is_usd(self) -> bool:
        return self.unit.startswith("usd")

    @property
    def limit_for_fraction(self) -> int | None:
        """The limit the ladder measures against: the soft limit if set, else the hard one."""
        return self.soft_limit if self.soft_limit is not None else self.hard_limit

    def format(self, amount: int) -> str:
        """`amount` in this budget's unit, for people (``$12.50``, ``1,200 tokens``)."""
        return format_amount(self.unit, amount)


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """Requests or tokens per rolling minute, or requests in flight, for one subject."""

    id: str
    scope: Scope
    subject: str
    metric: RateMetric
    limit: int
    label: str = ""
    window: RollingWindow | None = field(init=False, compare=False)
    counter_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scope not in _SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")
        if self.metric not in get_args(RateMetric):
            raise ValueError(f"unknown rate metric {self.metric!r}")
        if type(self.limit) is not int or self.limit < 0:
            raise ValueError(f"rate limit {self.id!r}: limit must be a non-negative int")
        window = None if self.metric == "concurrent" else _MINUTE
        object.__setattr__(self, "window", window)
        if not self.label:
            object.__setattr__(self, "label", self.id)
        object.__setattr__(self, "counter_key", "rl:" + self.id)

    def format(self, amount: int) -> str:
        """`amount` of this limit's metric, for people."""
        return _count(amount, "token" if self.metric == "tokens" else "request")


_MINUTE = RollingWindow.minute()


# --------------------------------------------------------------------- parsing
def parse_budgets(
    raw: object, *, default_timezone: str | None = None, where: str = "budgets"
) -> tuple[BudgetSpec, ...]:
    """Every budget of a config list; ids must be unique."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of budgets")
    specs = tuple(
        parse_budget(item, default_timezone=default_timezone, where=f"{where}[{index}]")
        for index, item in enumerate(raw)
    )
    _check_unique(specs, where)
    return specs


def parse_budget(
    raw: object, *, default_timezone: str | None = None, where: str = "budget"
) -> BudgetSpec:
    """One budget from its config mapping (see the module docstring)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with scope, subject, window and limits")
    _check_keys(raw, _BUDGET_KEYS, where)
    scope, subject = _scope_subject(raw, where)
    unit = raw.get("unit", "usd_actual")
    if unit not in _UNITS:
        raise ConfigError(f"{where}.unit: must be one of {', '.join(_UNITS)}, got {unit!r}")
    if "window" not in raw:
        raise ConfigError(f"{where}.window: is required (day, week, month or 'rolling 24h')")
    tz_name = raw.get("timezone", default_timezone)
    window = parse_window(raw["window"], timezone=tz_name, where=where)
    soft = _limit(raw, "soft_limit", unit, where)
    hard = _limit(raw, "hard_limit", unit, where)
    if soft is None and hard is None:
        raise ConfigError(f"{where}.hard_limit: a budget needs a soft_limit or a hard_limit")
    if soft is not None and hard is not None and soft > hard:
        raise ConfigError(f"{where}.soft_limit: is above the hard_limit")
    tag = window.name.replace(" ", "-")
    budget_id = f"{scope}:{subject}:{tag}" + ("" if unit == "usd_actual" else f":{unit}")
    if "id" in raw:
        budget_id = _text(raw["id"], f"{where}.id")
    short = subject.rsplit("/", 1)[-1]
    suffix = "" if unit == "usd_actual" else f" ({unit.replace('_', ' ')})"
    label = f"{scope}:{short} {window.name}{suffix}"
    if "label" in raw:
        label = _text(raw["label"], f"{where}.label")
    return BudgetSpec(budget_id, scope, subject, unit, window, soft, hard, label)


def parse_rate_limits(raw: object, *, where: str = "rate_limits") -> tuple[RateLimitSpec, ...]:
    """Every rate limit of a config list: each entry gives rpm, tpm and/or concurrent."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: must be a list of rate limits")
    specs: list[RateLimitSpec] = []
    for index, item in enumerate(raw):
        field_ = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{field_}: must be a mapping with scope, subject and rpm/tpm")
        _check_keys(item, _RATE_KEYS, field_)
        scope, subject = _scope_subject(item, field_)
        short = subject.rsplit("/", 1)[-1]
        found = False
        for name, metric, words in (
            ("rpm", "requests", "requests per minute"),
            ("tpm", "tokens", "tokens per minute"),
            ("concurrent", "concurrent", "concurrent requests"),
        ):
            if item.get(name) is None:
                continue
            found = True
            limit = parse_amount(item[name], "tokens_total", field=f"{field_}.{name}")
            specs.append(
                RateLimitSpec(
                    f"{scope}:{subject}:{name}",
                    scope,
                    subject,
                    metric,  # type: ignore[arg-type]
                    limit,
                    label=f"{scope}:{short} {words}",
                )
            )
        if not found:
            raise ConfigError(f"{field_}.rpm: a rate limit needs rpm, tpm or concurrent")
    _check_unique(specs, where)
    return tuple(specs)


def parse_window(raw: object, *, timezone: object = None, where: str = "budget") -> Window:
    """``day|week|month`` (needs `timezone`), ``rolling 24h`` or ``{rolling_hours: 24}``."""
    field_ = f"{where}.window"
    if isinstance(raw, Mapping):
        if set(raw) != {"rolling_hours"}:
            raise ConfigError(f"{field_}: a mapping window is {{rolling_hours: N}}")
        return RollingWindow.hours(_hours(raw["rolling_hours"], field_))
    if not isinstance(raw, str):
        raise ConfigError(f"{field_}: must be day, week, month or 'rolling 24h', got {raw!r}")
    text = raw.strip().lower()
    period = {"day": "day", "daily": "day", "week": "week", "weekly": "week"}.get(text)
    if period is None:
        period = {"month": "month", "monthly": "month"}.get(text)
    if period is not None:
        if timezone is None:
            raise ConfigError(
                f"{where}.timezone: a calendar window needs an explicit IANA timezone"
            )
        tz = load_timezone(timezone, field=f"{where}.timezone")
        return CalendarWindow(period, tz)  # type: ignore[arg-type]
    match = _ROLLING_RE.match(text)
    if match:
        return RollingWindow.hours(_hours(int(match.group(1)), field_))
    raise ConfigError(f"{field_}: must be day, week, month or 'rolling 24h', got {raw!r}")


def parse_amount(value: object, unit: str, *, field: str) -> int:
    """A limit in `unit`'s base: ``"$500"``/``"500 USD"``/``500`` → pico-USD; tokens as ints.

    Token amounts may be written ``2_000_000``, ``"2,000,000 tokens"`` or ``"2M"``.
    Everything is read as a Decimal and must come out whole in the base unit.
    """
    usd = unit.startswith("usd")
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{field}: must be an amount, got {value!r}")
    scale = PUSD_PER_USD if usd else 1
    if isinstance(value, float):
        value = repr(value)
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
        says_usd = text.startswith("$") or text.endswith("usd")
        says_tokens = text.endswith("tokens") or text.endswith("token")
        if usd and says_tokens:
            raise ConfigError(f"{field}: this budget counts USD, got tokens: {value!r}")
        if not usd and says_usd:
            raise ConfigError(f"{field}: this limit counts tokens, got money: {value!r}")
        text = text.removeprefix("$").removesuffix("usd").removesuffix("tokens")
        text = text.removesuffix("token")
        if not usd and text[-1:] in _SUFFIXES:
            scale, text = _SUFFIXES[text[-1]], text[:-1]
        value = text
    try:
        amount = Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        what = "an amount like '$500' or '500 USD'" if usd else "a whole number of tokens"
        raise ConfigError(f"{field}: must be {what}, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{field}: must be a non-negative amount, got {value!r}")
    scaled = amount * scale
    if scaled != scaled.to_integral_value():
        what = "has more than 12 decimal places" if usd else "is not a whole number of tokens"
        raise ConfigError(f"{field}: {value} {what}")
    return int(scaled)


def format_amount(unit: str, amount: int) -> str:
    """An amount of `unit` for people: ``$500.00``, ``$0.0925``, ``1,200 tokens``.

    Dollars show cents, and finer digits (to the micro-dollar) only when they are not zero.
    """
    if unit.startswith("usd"):
        text = format_usd(amount, 6)
        return text[:-4] + text[-4:].rstrip("0")
    return _count(amount, "token")


def _count(amount: int, noun: str) -> str:
    return f"{amount:,} {noun}" + ("" if amount == 1 else "s")


def subject_of(scope: str, org: str, team: str, user: str, key_id: str) -> str:
    """The subject string of `scope` on the path of (org, team, user, key)."""
    if scope == "org":
        return org
    if scope == "team":
        return f"{org}/{team}"
    if scope == "user":
        return f"{org}/{team}/{user}"
    if scope == "key":
        return key_id
    raise ValueError(f"a tag budget's subject is its tag, not a path: {scope!r}")


def _scope_subject(raw: Mapping[str, Any], where: str) -> tuple[Scope, str]:
    scope = raw.get("scope")
    if scope not in _SCOPES:
        raise ConfigError(f"{where}.scope: must be one of {', '.join(_SCOPES)}, got {scope!r}")
    if "subject" in raw:
        subject = _text(raw["subject"], f"{where}.subject")
    elif scope in _PATH_DEPTH:
        parts = []
        for level in ("org", "team", "user")[: _PATH_DEPTH[scope]]:
            if level not in raw:
                raise ConfigError(f"{where}.{level}: is required for a {scope} budget")
            parts.append(_text(raw[level], f"{where}.{level}"))
        subject = "/".join(parts)
    elif scope in raw:
        subject = _text(raw[scope], f"{where}.{scope}")
    else:
        raise ConfigError(f"{where}.subject: is required")
    depth = _PATH_DEPTH.get(scope)
    if depth is not None:
        parts = subject.split("/")
        if len(parts) != depth or not all(parts):
            shape = "/".join(("org", "team", "user")[:depth])
            raise ConfigError(f"{where}.subject: a {scope} is named '{shape}', got {subject!r}")
    return scope, subject  # type: ignore[return-value]


def _limit(raw: Mapping[str, Any], name: str, unit: str, where: str) -> int | None:
    value = raw.get(name)
    return None if value is None else parse_amount(value, unit, field=f"{where}.{name}")


def _hours(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 24 * 366:
        raise ConfigError(f"{field}: rolling hours must be a whole number from 1, got {value!r}")
    return value


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{field}: must be a non-empty string, got {value!r}")
    return value.strip()


def _check_keys(raw: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: is not a known field ({', '.join(sorted(allowed))})"
        )


def _check_unique(specs: Iterable[BudgetSpec | RateLimitSpec], where: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise ConfigError(f"{where}: two entries have the id {spec.id!r}")
        seen.add(spec.id)
