"""Outcome ingestion over HTTP: idempotency, validation in the error shape, voiding."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.harness import GatewayThread
from tests.insights.conftest import BASE_DAY, DAY_MS, HOUR_MS, call, fresh_day, iso, post_outcome


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "jira:PAY-1",
        "kind": "ticket_done",
        "actors": ["ada"],
        "team": "payments",
        "org": "ingest",
        "occurred_at": iso(BASE_DAY),
    }
    return {**base, **fields}


def listed(gateway: GatewayThread, query: str) -> list[dict[str, Any]]:
    status, body = call(gateway, "GET", f"/admin/v1/outcomes?{query}")
    assert status == 200, body
    return body["outcomes"]  # type: ignore[no-any-return]


def test_the_same_id_is_stored_once(impact_gateway: GatewayThread) -> None:
    day = fresh_day()
    first = event(id="gh:once#1", occurred_at=iso(day + HOUR_MS), team="once")
    assert post_outcome(impact_gateway, **first) == {
        "accepted": 1,
        "duplicates": 0,
        "ids": ["gh:once#1"],
    }
    assert post_outcome(impact_gateway, **first) == {"accepted": 0, "duplicates": 1, "ids": []}

    second = event(id="gh:once#2", occurred_at=day + 2 * HOUR_MS, team="once")  # epoch ms
    status, body = call(
        impact_gateway, "POST", "/admin/v1/outcomes", {"events": [first, second, second]}
    )
    assert status == 200 and body == {"accepted": 1, "duplicates": 2, "ids": ["gh:once#2"]}

    rows = listed(impact_gateway, f"team=once&since={iso(day)}&until={iso(day + DAY_MS)}")
    assert [r["id"] for r in rows] == ["gh:once#2", "gh:once#1"], "newest first, each once"
    assert rows[1]["actors"] == ["ada"] and rows[1]["source"] == "api"
    assert rows[0]["occurred_at_ms"] == day + 2 * HOUR_MS


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (event(actors=[]), "actors"),
        (event(kind="shipped"), "kind"),
        (event(id=""), "id"),
        (event(size=-1), "size"),
        (event(occurred_at=iso(int(time.time() * 1000) + 2 * HOUR_MS)), "occurred_at"),
        (event(occurred_at=1_767_225_600), "occurred_at"),  # seconds, not ms
        (event(occurred_at="last tuesday"), "occurred_at"),
        (event(refs=["jira:PAY-0"]), "refs"),
        (event(colour="blue"), "colour"),
        ({"events": [event(), event(team="")]}, "events[1].team"),
        ({"events": [event(id=f"bulk:{i}") for i in range(1001)]}, "events"),
        ({"events": []}, "events"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    impact_gateway: GatewayThread, body: Any, param: str
) -> None:
    status, answer = call(impact_gateway, "POST", "/admin/v1/outcomes", body)
    assert status == 400, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request"
    assert error["param"] == param and error["message"].startswith(f"{param}: ")


def test_bodies_that_are_not_events(impact_gateway: GatewayThread) -> None:
    status, answer = call(impact_gateway, "POST", "/admin/v1/outcomes", [event()])
    assert status == 400 and "one outcome event" in answer["error"]["message"]
    status, answer = call(impact_gateway, "POST", "/admin/v1/outcomes", raw=b"{not json")
    assert status == 400 and answer["error"]["type"] == "invalid_request_error"


def test_outcomes_need_an_admin_key(impact_gateway: GatewayThread) -> None:
    user_key, _ = impact_gateway.runtime.key_store.create("eve", "payments", "ingest")
    status, answer = call(impact_gateway, "POST", "/admin/v1/outcomes", event(), key=user_key)
    assert status == 403 and answer["error"]["code"] == "permission_denied"
    status, answer = call(impact_gateway, "GET", "/admin/v1/outcomes", key=None)
    assert status == 401 and "error" in answer


def test_a_revert_voids_only_within_the_quality_window(impact_gateway: GatewayThread) -> None:
    day = fresh_day()
    for n in (1, 2):
        post_outcome(
            impact_gateway,
            **event(id=f"pr:void#{n}", kind="pr_merged", team="void", occurred_at=iso(day)),
        )
    # 6 days later: inside the 7-day window; 8 days later: outside it.
    post_outcome(
        impact_gateway,
        **event(
            id="pr:void#1-revert",
            kind="revert",
            team="void",
            occurred_at=iso(day + 6 * DAY_MS),
            refs=["pr:void#1"],
        ),
    )
    post_outcome(
        impact_gateway,
        **event(
            id="pr:void#2-revert",
            kind="revert",
            team="void",
            occurred_at=iso(day + 8 * DAY_MS),
            refs=["pr:void#2"],
        ),
    )
    rows = {
        r["id"]: r
        for r in listed(impact_gateway, f"team=void&since={iso(day)}&until={iso(day + 9 * DAY_MS)}")
    }
    assert rows["pr:void#1"]["voided_by"] == "pr:void#1-revert"
    assert rows["pr:void#1"]["voided_at_ms"] == day + 6 * DAY_MS
    assert rows["pr:void#2"]["voided_at_ms"] is None and rows["pr:void#2"]["voided_by"] is None

    rows_kind = listed(
        impact_gateway, f"team=void&kind=revert&since={iso(day)}&until={iso(day + 9 * DAY_MS)}"
    )
    assert {r["id"] for r in rows_kind} == {"pr:void#1-revert", "pr:void#2-revert"}
    status, answer = call(impact_gateway, "GET", "/admin/v1/outcomes?kind=shipped")
    assert status == 400 and answer["error"]["param"] == "kind"
