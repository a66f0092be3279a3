"""Steering on the hot path: µs to gather a request's facts and evaluate a realistic rule set.

    python -m benchmarks.steering

The rule set has ten rules of the kinds an operator writes (the graded ladder, secrets
kept in-house, team and tag rules, a size cap, night-time batch routing); the request
matches none of them, so every rule is evaluated: the worst case. Facts come from a
budget engine with three budgets on the principal's path (in-memory state, no I/O).
Figures are the best of 25 repeats, in µs per call.
"""

from __future__ import annotations

import timeit

from rich.console import Console

from benchmarks.report import machine, print_machine, table
from tollway.budgets.engine import BudgetEngine
from tollway.budgets.memory import MemoryCounterStore
from tollway.budgets.model import parse_budgets
from tollway.gateway.apis import CHAT, parse_request
from tollway.gateway.auth import Principal
from tollway.gateway.steer import gather_facts
from tollway.metering.peak import PeakSchedule
from tollway.routing.steering import Steering, default_ladder
from tollway.routing.table import ModelRoute

RULES = [
    *default_ladder("inhouse"),
    {
        "id": "secrets",
        "when": {"data_class": "secret", "third_party": True},
        "then": {"route_to": "inhouse"},
    },
    {"id": "pii-log", "when": {"data_class": "pii"}, "then": {"log": "metadata"}},
    {"id": "frozen", "when": {"team": ["acme/frozen", "globex/*"]}, "then": {"deny": "Frozen."}},
    {"id": "tagged", "when": {"team": "acme/payments"}, "then": {"require_tag": "project:*"}},
    {"id": "ci", "when": {"tags_any": "ci:*", "hours": "22-06"}, "then": {"route_to": "inhouse"}},
    {"id": "huge", "when": {"input_tokens": ">100000"}, "then": {"cap_max_tokens": 2048}},
    {
        "id": "peak",
        "when": {"peak_weight": ">=2", "requested_model": ["gpt-5.5", "claude-opus-5"]},
        "then": {"route_to": "inhouse"},
    },
    {"id": "hard", "when": {"budget_hard_pct": ">=95"}, "then": {"cap_max_tokens": 256}},
]


def best_us(fn: object, number: int = 2000) -> float:
    """Best of 25 repeats, µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=25)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    console = Console()
    steering = Steering.from_config(RULES)
    budgets = parse_budgets(
        [
            {"scope": "org", "subject": "acme", "window": "month", "hard_limit": "$10000"},
            {
                "scope": "team",
                "subject": "acme/search",
                "window": "month",
                "soft_limit": "$400",
                "hard_limit": "$500",
            },
            {
                "scope": "user",
                "subject": "acme/search/ada",
                "unit": "tokens_total",
                "window": "day",
                "hard_limit": "2M",
            },
        ],
        default_timezone="UTC",
    )
    engine = BudgetEngine(MemoryCounterStore(), budgets, (), PeakSchedule.default("UTC"))
    principal = Principal("key_1", "ada", "search", "acme")
    req = parse_request(CHAT, {"model": "gpt-5.4", "messages": [{"role": "user", "content": "x"}]})
    route = ModelRoute("gpt-5.4", (), None, False, None)
    tags = ("ide:vscode",)
    facts = gather_facts(engine, principal, tags, req, route)
    assert steering.decide(facts).rule is None, "the benchmark request must match no rule"

    rows = [
        (
            "gather facts (3 budgets on the path)",
            best_us(lambda: gather_facts(engine, principal, tags, req, route)),
        ),
        (
            f"evaluate {len(steering.rules)} rules, none matching",
            best_us(lambda: steering.decide(facts)),
        ),
        (
            "both",
            best_us(lambda: steering.decide(gather_facts(engine, principal, tags, req, route))),
        ),
    ]
    print_machine(console, machine())
    console.print(
        table(
            "Steering cost per request", ["step", "µs"], [[name, f"{us:.2f}"] for name, us in rows]
        )
    )


if __name__ == "__main__":
    main()
