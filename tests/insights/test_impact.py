"""Impact metrics over HTTP: attribution, quality, flagged tokens, bands, the per-user view."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import OpenAI
from sqlalchemy import event, func, select

from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread
from tests.insights.conftest import (
    DAY_MS,
    HOUR_MS,
    add_keys,
    call,
    fresh_day,
    iso,
    post_outcome,
    seed_usage,
)
from tollway.insights.config import ImpactConfig
from tollway.insights.impact import leaderboard, quartile_bands, team_metrics, user_metrics
from tollway.ledger.database import Database
from tollway.ledger.schema import gaming_flags, user_daily


def team_row(report: dict[str, Any], org: str, team: str) -> dict[str, Any]:
    [row] = [t for t in report["teams"] if (t["org"], t["team"]) == (org, team)]
    return row


def metrics(gateway: GatewayThread, since: int, until: int) -> dict[str, Any]:
    status, body = call(gateway, "GET", f"/admin/v1/impact?since={iso(since)}&until={iso(until)}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def outcome(gateway: GatewayThread, oid: str, org: str, team: str, at: int, *actors: str) -> None:
    post_outcome(
        gateway, id=oid, kind="pr_merged", org=org, team=team, actors=list(actors), occurred_at=at
    )


def test_attribution_window(impact_gateway: GatewayThread) -> None:
    day = fresh_day()
    add_keys(impact_gateway, "attr", "core", ["ann", "ben"])
    add_keys(impact_gateway, "attr", "infra", ["ben"])
    used = day + 2 * HOUR_MS + 10 * 60_000
    seed_usage(impact_gateway, "attr", "core", "ann", used)
    seed_usage(impact_gateway, "attr", "infra", "ben", used)  # under another team of ben's
    outcome(impact_gateway, "attr:23h", "attr", "core", used + 23 * HOUR_MS, "ann")
    outcome(impact_gateway, "attr:25h", "attr", "core", used + 25 * HOUR_MS, "ann")
    outcome(impact_gateway, "attr:other-team", "attr", "core", used + HOUR_MS, "ben")
    outcome(impact_gateway, "attr:no-keys", "attr", "core", used + HOUR_MS, "zed")
    outcome(impact_gateway, "attr:before", "attr", "core", used - HOUR_MS, "ann")

    row = team_row(metrics(impact_gateway, day, day + 3 * DAY_MS), "attr", "core")
    assert row["outcomes"] == 2, "23 h after use and ben's (used AI under infra) count"
    assert row["outcomes_unattributed"] == 3, "25 h after, an actor without keys, before use"
    assert row["active_users"] == 1 and row["tokens"] == 1000


def test_flagged_tokens_leave_the_denominator(impact_gateway: GatewayThread) -> None:
    day = fresh_day()
    add_keys(impact_gateway, "flag", "core", ["amy", "bo"])
    seed_usage(impact_gateway, "flag", "core", "amy", day + HOUR_MS, tokens=10_000)
    seed_usage(
        impact_gateway,
        "flag",
        "core",
        "bo",
        day + DAY_MS + HOUR_MS,
        tokens=4_000,
        model="inhouse-coder",
        provider="gpu",
    )
    seed_usage(
        impact_gateway, "flag", "core", "bo", day + 2 * HOUR_MS, tokens=2_000, gaming_score=0.5
    )
    with impact_gateway.runtime.database.engine.begin() as connection:
        connection.execute(
            gaming_flags.insert(),
            [
                _flag("f1", day, "amy", 6_000, "open"),
                _flag("f2", day + DAY_MS, "bo", 4_000, "dismissed"),
                _flag("f3", day + 5 * DAY_MS, "amy", 9_999, "confirmed"),  # outside the period
            ],
        )
    for n in (1, 2):
        outcome(impact_gateway, f"flag:{n}", "flag", "core", day + 3 * HOUR_MS, "amy")

    row = team_row(metrics(impact_gateway, day, day + 2 * DAY_MS), "flag", "core")
    assert row["tokens"] == 16_000
    assert row["flagged_tokens"] == 6_000
    assert row["credited_tokens"] == 10_000 + 4_000 + 1_000 - 6_000
    assert row["outcomes"] == 2
    assert row["outcomes_per_1m_credited"] == pytest.approx(2 / 0.009)
    assert row["cost_usd"] == pytest.approx(0.003)
    assert row["cost_per_outcome_usd"] == pytest.approx(0.0015)
    assert row["in_house_share"] == pytest.approx(4_000 / 16_000)


def test_the_gateway_records_in_house_tokens_as_it_writes_requests(
    impact_gateway: GatewayThread,
) -> None:
    key, _ = impact_gateway.runtime.key_store.create("lin", "core", "live")
    client = OpenAI(base_url=impact_gateway.base_url + "/v1", api_key=key)
    tokens = {}
    for model in ("inhouse", "gpt-test"):
        reply = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"Hello from {model}."}]
        )
        row = ledger_row(impact_gateway, reply.headers["x-tollway-request-id"])
        tokens[model] = row["input_tokens"] + row["output_tokens"]
    with impact_gateway.runtime.database.engine.connect() as connection:
        query = select(func.sum(user_daily.c.tokens), func.sum(user_daily.c.in_house_tokens))
        total, in_house = connection.execute(query.where(user_daily.c.user == "lin")).one()
    assert (total, in_house) == (sum(tokens.values()), tokens["inhouse"])
    # 2d: yesterday and today, in case midnight (UTC) passed since the requests.
    status, report = call(impact_gateway, "GET", "/admin/v1/impact?since=2d")
    assert status == 200, report
    share = team_row(report, "live", "core")["in_house_share"]
    assert share == pytest.approx(tokens["inhouse"] / sum(tokens.values()))


def test_trend_against_the_previous_period(impact_gateway: GatewayThread) -> None:
    day = fresh_day() + DAY_MS
    add_keys(impact_gateway, "trend", "core", ["cy"])
    seed_usage(impact_gateway, "trend", "core", "cy", day + HOUR_MS, tokens=1_000_000)
    outcome(impact_gateway, "trend:before", "trend", "core", day + 2 * HOUR_MS, "cy")
    seed_usage(impact_gateway, "trend", "core", "cy", day + DAY_MS + HOUR_MS, tokens=1_000_000)
    for n in range(3):
        outcome(impact_gateway, f"trend:{n}", "trend", "core", day + DAY_MS + 2 * HOUR_MS, "cy")

    report = metrics(impact_gateway, day + DAY_MS, day + 2 * DAY_MS)
    assert report["previous_since_ms"] == day
    row = team_row(report, "trend", "core")
    assert row["outcomes_per_1m_credited"] == pytest.approx(3.0)
    assert row["previous"]["outcomes_per_1m_credited"] == pytest.approx(1.0)
    assert row["trend"] == pytest.approx(2.0)  # +200%


def _board_data(gateway: GatewayThread) -> int:
    """Org `board`: four teams of five with 8, 4, 2 and 0 outcomes on equal tokens, and a
    team of three with many outcomes."""
    day = fresh_day()
    teams = {"delta": 0, "alpha": 8, "bravo": 4, "charlie": 2, "tiny": 50}
    for team, wins in teams.items():
        users = [f"{team}-{i}" for i in range(3 if team == "tiny" else 5)]
        add_keys(gateway, "board", team, users)
        for user in users:
            seed_usage(gateway, "board", team, user, day + HOUR_MS, tokens=1_000)
        for n in range(wins):
            outcome(gateway, f"board:{day}:{team}:{n}", "board", team, day + 5 * HOUR_MS, users[0])
    return day


def test_leaderboard_bands_and_group_size(impact_gateway: GatewayThread) -> None:
    day = _board_data(impact_gateway)
    status, board = call(
        impact_gateway,
        "GET",
        f"/admin/v1/impact/leaderboard?since={iso(day)}&until={iso(day + DAY_MS)}",
    )
    assert status == 200, board
    assert [(b["band"], [t["team"] for t in b["teams"]]) for b in board["bands"]] == [
        ("Q1", ["alpha"]),
        ("Q2", ["bravo"]),
        ("Q3", ["charlie"]),
        ("Q4", ["delta"]),
    ]
    assert board["not_compared"] == [
        {"org": "board", "team": "tiny", "reason": "too small to compare"}
    ]
    assert "rank" not in str(board)

    status, body = call(impact_gateway, "GET", "/admin/v1/impact/leaderboard?since=sometime")
    assert status == 400 and body["error"]["param"] == "since"
    status, body = call(impact_gateway, "GET", "/admin/v1/impact?since=2001-01-01")
    assert status == 400 and "longer than 366 days" in body["error"]["message"]


def test_per_user_view_only_for_admins_and_big_enough_teams(
    impact_gateway: GatewayThread,
) -> None:
    day = _board_data(impact_gateway)
    span = f"since={iso(day)}&until={iso(day + DAY_MS)}"
    status, body = call(impact_gateway, "GET", f"/admin/v1/impact/users?team=tiny&org=board&{span}")
    assert status == 403 and "at least 5" in body["error"]["message"]
    assert body["error"]["code"] == "permission_denied"

    key, _ = impact_gateway.runtime.key_store.create("lead", "alpha", "board", role="team_admin")
    status, body = call(impact_gateway, "GET", f"/admin/v1/impact/users?team=alpha&{span}", key=key)
    assert status == 403 and "admin key" in body["error"]["message"]

    status, body = call(impact_gateway, "GET", f"/admin/v1/impact/users?team=alpha&{span}")
    assert status == 200, body
    assert body["org"] == "board"  # the only org with a team `alpha`
    assert [u["user"] for u in body["users"]] == [f"alpha-{i}" for i in range(5)]
    first = body["users"][0]
    assert first["outcomes"] == 8 and first["credited_tokens"] == 1_000
    assert all("rank" not in u for u in body["users"])


def test_metrics_read_no_raw_requests(impact_gateway: GatewayThread) -> None:
    day = _board_data(impact_gateway)
    database = Database(impact_gateway.runtime.database.url.render_as_string(False))
    statements: list[str] = []
    event.listen(
        database.engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: statements.append(sql),
    )
    window = {"since_ms": day, "until_ms": day + DAY_MS, "config": ImpactConfig()}
    report = team_metrics(database.engine, **window)
    assert team_row(report, "board", "alpha")["outcomes"] == 8
    leaderboard(database.engine, **window)
    user_metrics(database.engine, org="board", team="alpha", **window)
    database.close()
    assert statements and not any("FROM requests" in s or "JOIN requests" in s for s in statements)


@given(st.dictionaries(st.text(max_size=4), st.floats(0, 1e6), max_size=60))
def test_every_team_gets_one_band_monotone_in_the_metric(metric: dict[str, float]) -> None:
    bands = quartile_bands(metric)
    assert set(bands) == set(metric) and all(b in (0, 1, 2, 3) for b in bands.values())
    for a in metric:
        for b in metric:
            if metric[a] > metric[b]:
                assert bands[a] <= bands[b]
            if metric[a] == metric[b]:
                assert bands[a] == bands[b]
    if len(set(metric.values())) == len(metric):  # no ties: bands as even as possible
        sizes = [list(bands.values()).count(b) for b in range(4)]
        assert max(sizes) - min(sizes) <= 1
        assert all(size <= math.ceil(len(metric) / 4) for size in sizes)


def _flag(flag_id: str, day: int, user: str, credited: int, status: str) -> dict[str, Any]:
    return {
        "flag_id": f"{flag_id}-{day}",
        "day_start_ms": day,
        "org": "flag",
        "team": "core",
        "user": user,
        "score": 0.9,
        "tokens": credited,
        "credited_tokens": credited,
        "signals": "{}",
        "sample_request_ids": "[]",
        "status": status,
        "created_at_ms": day,
        "updated_at_ms": day,
    }
