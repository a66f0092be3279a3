"""Steering rules: compiled once, first match wins, errors name the field."""

from __future__ import annotations

import pytest

from tollway.errors import ConfigError
from tollway.routing.steering import Facts, Steering, default_ladder


def facts(**overrides: object) -> Facts:
    base: dict[str, object] = {
        "org": "acme",
        "team": "payments",
        "user": "ada",
        "key_id": "key_1",
        "requested_model": "gpt-5.4",
        "tags": (),
        "in_house": False,
        "utc_hour": 12,
    }
    return Facts(**{**base, **overrides})  # type: ignore[arg-type]


def test_default_ladder_steps() -> None:
    ladder = Steering.from_config(default_ladder("inhouse", cap=512))
    assert ladder.decide(facts(budget_soft_fraction=0.5)).rule is None
    step = ladder.decide(facts(budget_soft_fraction=0.8)).actions
    assert (step.route_to, step.cap_max_tokens) == ("inhouse", None)
    step = ladder.decide(facts(budget_soft_fraction=1.2)).actions
    assert (step.route_to, step.cap_max_tokens) == ("inhouse", 512)
    assert ladder.decide(facts(budget_soft_fraction=1.2, in_house=True)).rule is None


def test_conditions() -> None:
    rules = Steering.from_config(
        [
            {"id": "a", "when": {"team": "acme/pay*", "tags_any": "ci:*"}, "then": {"log": "full"}},
            {"id": "b", "when": {"data_class": ["secret", "pii"]}, "then": {"route_to": "home"}},
            {"id": "c", "when": {"hours": "22-06"}, "then": {"cap_max_tokens": 100}},
            {
                "id": "d",
                "when": {"input_tokens": ">8000", "requested_model": ["gpt-5.4"]},
                "then": {"deny": "too big"},
            },
            {
                "id": "e",
                "when": {"user": "acme/payments/ada", "peak_weight": ">=2"},
                "then": {"require_tag": "project:*"},
            },
        ]
    )
    assert rules.decide(facts(tags=("ci:nightly",))).rule_id == "a"
    assert rules.decide(facts(team="search", tags=("ci:x",))).rule_id is None
    assert rules.decide(facts(data_class="pii")).rule_id == "b"
    assert rules.decide(facts(utc_hour=23)).rule_id == "c"
    assert rules.decide(facts(utc_hour=5)).rule_id == "c"
    assert rules.decide(facts(utc_hour=12, input_tokens=9000)).rule_id == "d"
    assert rules.decide(facts(utc_hour=12, peak_weight=2.0)).rule_id == "e"
    assert rules.needs >= {"team", "data_class", "hours", "input_tokens"}
    explained = rules.explain(facts(utc_hour=23, data_class="secret"))
    assert [(r.id, hit) for r, hit in explained][:3] == [("a", False), ("b", True), ("c", True)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"when": {}, "then": {"log": "full"}}, r"steering\[0\]\.id"),
        ({"id": "x", "when": {"colour": "red"}, "then": {"log": "full"}}, r"when\.colour"),
        ({"id": "x", "then": {"teleport": 1}}, r"then\.teleport"),
        ({"id": "x", "then": {}}, r"then: is required"),
        (
            {"id": "x", "when": {"budget_soft_pct": "lots"}, "then": {"log": "full"}},
            r"budget_soft_pct: must be a comparison",
        ),
        ({"id": "x", "then": {"cap_max_tokens": 0}}, r"cap_max_tokens"),
        ({"id": "x", "then": {"log": "everything"}}, r"then\.log"),
    ],
)
def test_bad_rules_name_the_field(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Steering.from_config([raw])
