"""Steering rules: declared in order, first match wins, compiled once at load.

A rule has `when` (conditions, all must hold) and `then` (actions)::

    steering:
      - id: secrets-stay-home
        when: {data_class: secret, third_party: true}
        then: {route_to: inhouse-sim}
      - id: ladder-cap
        when: {budget_soft_pct: ">=100", third_party: true}
        then: {route_to: inhouse-sim, cap_max_tokens: 1024}
      - id: ladder-inhouse
        when: {budget_soft_pct: ">=80", requested_model: [gpt-5.4, claude-sonnet-4-6]}
        then: {route_to: inhouse-sim}
      - id: tag-required
        when: {team: acme/payments}
        then: {require_tag: "project:*"}

Conditions: `org`, `team` (``org/team``), `user` (``org/team/user``), `key`,
`requested_model`, `tags_any` (each a value or a list; tags may end in ``*``),
`third_party` (the requested model is not in-house), `budget_soft_pct` and
`budget_hard_pct` (the tightest budget's use, as last seen, against its soft
or hard limit, e.g. ``">=80"``), `peak_weight` (e.g. ``">=2"``), `hours`
(``"09-17"`` UTC), `data_class` (``secret`` / ``pii`` / ``clean``, or a list),
`input_tokens` (e.g. ``">8000"``). Actions: `route_to` (a model or alias),
`cap_max_tokens`, `deny` (a message; 403), `require_tag` (a pattern; 400 when
no tag matches), `log` (``off`` / ``metadata`` / ``full``: the prompt logging
mode for matching requests).
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tollway.errors import ConfigError

_COMPARE = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(-?\d+(?:\.\d+)?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_HOURS = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
_WHEN_KEYS = frozenset(
    {"org", "team", "user", "key", "requested_model", "tags_any", "third_party"}
    | {"budget_soft_pct", "budget_hard_pct", "peak_weight", "hours", "data_class", "input_tokens"}
)
_THEN_KEYS = frozenset({"route_to", "cap_max_tokens", "deny", "require_tag", "log"})
LOG_MODES = ("off", "metadata", "full")


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can look at, gathered once per request (no I/O)."""

    org: str
    team: str
    user: str
    key_id: str
    requested_model: str
    tags: tuple[str, ...]
    in_house: bool
    budget_soft_fraction: float = 0.0
    budget_hard_fraction: float = 0.0
    peak_weight: float = 1.0
    utc_hour: int = 0
    data_class: str = "clean"
    input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Actions:
    route_to: str | None = None
    cap_max_tokens: int | None = None
    deny: str | None = None
    require_tag: str | None = None
    log: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    conditions: tuple[Callable[[Facts], bool], ...]
    actions: Actions
    when: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, facts: Facts) -> bool:
        return all(condition(facts) for condition in self.conditions)

    def reason(self) -> str:
        """The rule's conditions in words, for the ledger and `route explain`."""
        if not self.when:
            return "always"
        return ", ".join(f"{k} {v}" for k, v in self.when.items())


@dataclass(frozen=True, slots=True)
class Decision:
    """The first matching rule (or none) and what it asks for."""

    rule: Rule | None

    @property
    def actions(self) -> Actions:
        return self.rule.actions if self.rule else Actions()

    @property
    def rule_id(self) -> str | None:
        return self.rule.id if self.rule else None


class Steering:
    """An ordered, compiled rule list."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        # Which facts the rules look at, so the gateway gathers only those.
        self.needs = frozenset(key for rule in rules for key in rule.when)

    @classmethod
    def from_config(cls, raw: object, *, where: str = "steering") -> Steering:
        if raw is None:
            return cls(())
        if not isinstance(raw, list):
            raise ConfigError(f"{where}: must be a list of rules")
        rules = [_compile(item, f"{where}[{i}]") for i, item in enumerate(raw)]
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ConfigError(f"{where}: two rules have the id {rule.id!r}")
            seen.add(rule.id)
        return cls(rules)

    def decide(self, facts: Facts) -> Decision:
        for rule in self.rules:
            if rule.matches(facts):
                return Decision(rule)
        return Decision(None)

    def explain(self, facts: Facts) -> list[tuple[Rule, bool]]:
        """Every rule with whether it matches, in order (for `tollway route explain`)."""
        return [(rule, rule.matches(facts)) for rule in self.rules]


def default_ladder(in_house_model: str, cap: int = 1024) -> list[dict[str, Any]]:
    """The graded ladder: steer at 80% of a soft budget, cap at 100%; only hard limits block."""
    return [
        {
            "id": "ladder-cap-at-soft-limit",
            "when": {"budget_soft_pct": ">=100", "third_party": True},
            "then": {"route_to": in_house_model, "cap_max_tokens": cap},
        },
        {
            "id": "ladder-in-house-at-80pct",
            "when": {"budget_soft_pct": ">=80", "third_party": True},
            "then": {"route_to": in_house_model},
        },
    ]


def facts_hour(now_ms: int | None = None) -> int:
    seconds = (now_ms / 1000) if now_ms is not None else time.time()
    return int(seconds // 3600 % 24)


# ----------------------------------------------------------------- compiling
def _compile(raw: object, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with id, when and then")
    unknown = set(raw) - {"id", "when", "then"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown field (use id, when, then)")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise ConfigError(f"{where}.id: is required")
    when = raw.get("when") or {}
    then = raw.get("then")
    if not isinstance(when, Mapping):
        raise ConfigError(f"{where}.when: must be a mapping")
    if not isinstance(then, Mapping) or not then:
        raise ConfigError(f"{where}.then: is required (route_to, cap_max_tokens, deny, ...)")
    for key in when:
        if key not in _WHEN_KEYS:
            raise ConfigError(f"{where}.when.{key}: unknown condition")
    for key in then:
        if key not in _THEN_KEYS:
            raise ConfigError(f"{where}.then.{key}: unknown action")
    conditions = tuple(_condition(k, v, f"{where}.when.{k}") for k, v in when.items())
    return Rule(rule_id, conditions, _actions(then, f"{where}.then"), dict(when))


def _actions(then: Mapping[str, Any], where: str) -> Actions:
    cap = then.get("cap_max_tokens")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"{where}.cap_max_tokens: must be a positive integer")
    log = then.get("log")
    if log is not None and log not in LOG_MODES:
        raise ConfigError(f"{where}.log: must be one of {', '.join(LOG_MODES)}")
    for name in ("route_to", "deny", "require_tag"):
        value = then.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}.{name}: must be a non-empty string")
    return Actions(then.get("route_to"), cap, then.get("deny"), then.get("require_tag"), log)


def _values(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{where}: must be a name or a list of names")
    return tuple(items)  # type: ignore[arg-type]


def _matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    exact = {p for p in patterns if not p.endswith("*")}
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))
    return lambda value: value in exact or (bool(prefixes) and value.startswith(prefixes))


def _number(value: object, where: str) -> Callable[[float], bool]:
    match = _COMPARE.match(str(value))
    if not match:
        raise ConfigError(f"{where}: must be a comparison like '>=80'")
    op = _OPS[match.group(1) or "=="]
    bound = float(match.group(2))
    return lambda x: op(x, bound)


def _condition(key: str, value: object, where: str) -> Callable[[Facts], bool]:
    if key in ("org", "team", "user", "key", "requested_model"):
        match = _matcher(_values(value, where))
        attr = {"key": "key_id"}.get(key, key)
        if key in ("team", "user"):
            depth = 2 if key == "team" else 3
            return lambda f: match("/".join((f.org, f.team, f.user)[:depth]))
        return lambda f: match(getattr(f, attr))
    if key == "tags_any":
        match = _matcher(_values(value, where))
        return lambda f: any(match(t) for t in f.tags)
    if key == "third_party":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return lambda f: (not f.in_house) == value
    if key == "data_class":
        classes = set(_values(value, where))
        if not classes <= {"secret", "pii", "clean"}:
            raise ConfigError(f"{where}: must be secret, pii or clean")
        return lambda f: f.data_class in classes
    if key == "hours":
        hours = _HOURS.match(str(value))
        if not hours:
            raise ConfigError(f"{where}: must be a UTC hour range like '09-17'")
        start, end = int(hours.group(1)), int(hours.group(2))
        if start > 24 or end > 24:
            raise ConfigError(f"{where}: hours run from 0 to 24")
        if start <= end:
            return lambda f: start <= f.utc_hour < end
        return lambda f: f.utc_hour >= start or f.utc_hour < end
    test = _number(value, where)
    if key == "budget_soft_pct":
        return lambda f: test(f.budget_soft_fraction * 100)
    if key == "budget_hard_pct":
        return lambda f: test(f.budget_hard_fraction * 100)
    if key == "peak_weight":
        return lambda f: test(f.peak_weight)
    return lambda f: test(f.input_tokens)  # input_tokens
