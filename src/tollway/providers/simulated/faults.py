"""An injectable fault plan: make matching requests fail, hang or lose their connection.

A rule (JSON or `SimConfig.faults`) looks like::

    {"model": "gpt-sim" | None, "api": "openai" | "anthropic" | None,
     "mode": "status" | "timeout" | "drop", "status": 500, "after_chunks": 0,
     "times": -1, "delay_s": 3600}

`status` answers with that status and a realistic error body for the API (429 adds
`retry-after: 1`); with `after_chunks > 0` on a stream it sends that many events, then an
in-stream error event. `timeout` hangs `delay_s` seconds (or until the client gives up),
then answers normally. `drop` breaks the connection: a stream after `after_chunks` events,
a plain response after its headers (or half its body if `after_chunks > 0`).
`times` is how many requests the rule applies to (-1 = forever, the default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

MODES = ("status", "timeout", "drop")
APIS = ("openai", "anthropic")
_FIELDS = {"model", "api", "mode", "status", "after_chunks", "times", "delay_s"}


@dataclass(slots=True)
class FaultRule:
    """One rule of the plan; `times` counts down as requests consume it."""

    mode: str
    model: str | None = None
    api: str | None = None
    status: int = 500
    after_chunks: int = 0
    times: int = -1
    delay_s: float = 3600.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> FaultRule:
        """Validate a rule given as JSON; raises `ValueError` with a readable message."""
        if not isinstance(raw, Mapping):
            raise ValueError("a fault rule must be an object")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        rule = cls(
            mode=raw.get("mode", "status"),
            model=raw.get("model"),
            api=raw.get("api"),
            status=raw.get("status", 500),
            after_chunks=raw.get("after_chunks", 0),
            times=raw.get("times", -1),
            delay_s=raw.get("delay_s", 3600.0),
        )
        if rule.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if rule.api is not None and rule.api not in APIS:
            raise ValueError(f"api must be one of {APIS} or null")
        if rule.model is not None and not isinstance(rule.model, str):
            raise ValueError("model must be a string or null")
        if not isinstance(rule.status, int) or not 400 <= rule.status <= 599:
            raise ValueError("status must be an integer between 400 and 599")
        if not isinstance(rule.after_chunks, int) or rule.after_chunks < 0:
            raise ValueError("after_chunks must be a non-negative integer")
        if not isinstance(rule.times, int) or rule.times == 0 or rule.times < -1:
            raise ValueError("times must be a positive integer or -1 (forever)")
        if not isinstance(rule.delay_s, int | float) or rule.delay_s < 0:
            raise ValueError("delay_s must be a non-negative number")
        return rule

    def matches(self, api: str, model: str) -> bool:
        return (self.api is None or self.api == api) and (self.model is None or self.model == model)


class FaultPlan:
    """The ordered rules in force; the first matching rule applies to a request."""

    def __init__(self, rules: Iterable[Mapping[str, Any]] = ()) -> None:
        self._rules: list[FaultRule] = []
        self.add(rules)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, rules: Iterable[Mapping[str, Any]]) -> None:
        """Append rules (all validated before any is added)."""
        parsed = [FaultRule.from_mapping(raw) for raw in rules]
        self._rules.extend(parsed)

    def clear(self) -> None:
        self._rules.clear()

    def take(self, api: str, model: str) -> FaultRule | None:
        """The rule for this request, if any, consuming one of its `times`."""
        for i, rule in enumerate(self._rules):
            if rule.matches(api, model):
                if rule.times > 0:
                    rule.times -= 1
                    if rule.times == 0:
                        del self._rules[i]
                return rule
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The rules in force, as JSON-ready dicts."""
        return [asdict(rule) for rule in self._rules]
