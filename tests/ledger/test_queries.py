"""Usage queries read the hourly rollups, and those always equal the sums of the raw rows."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from tollway.ledger import Database, LedgerRecord, get_request, insert_records, recent_requests
from tollway.ledger import usage as usage_query
from tollway.ledger.queries import GROUP_KEYS
from tollway.ledger.schema import requests, usage_hourly

from .conftest import T0, RecordFactory

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SUMS = (
    "requests",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "list_cost_pusd",
    "actual_cost_pusd",
    "weighted_charge_pusd",
    "estimated",
)
ALL_GROUPINGS = [
    list(combo)
    for n in range(len(GROUP_KEYS) + 1)
    for combo in itertools.combinations(GROUP_KEYS, n)
]

_big = st.integers(0, 10**15)  # pico-USD: up to $1,000 a request
records_strategy = st.lists(
    st.builds(
        LedgerRecord,
        request_id=st.uuids().map(str),
        started_at_ms=st.integers(T0 - 2 * HOUR_MS, T0 + 3 * DAY_MS),
        finished_at_ms=st.just(T0),
        key_id=st.just("key_x"),
        user=st.sampled_from(["u1", "u2", "u3"]),
        team=st.sampled_from(["t1", "t2"]),
        org=st.sampled_from(["o1", "o2"]),
        api=st.just("openai.chat"),
        requested_model=st.sampled_from(["m1", "m2"]),
        served_model=st.sampled_from(["", "m1", "m3"]),
        provider=st.sampled_from(["", "p1", "p2"]),
        input_tokens=st.integers(0, 10**9),
        cached_input_tokens=st.integers(0, 10**6),
        cache_write_tokens=st.integers(0, 10**6),
        output_tokens=st.integers(0, 10**9),
        reasoning_tokens=st.integers(0, 10**6),
        list_cost_pusd=_big,
        actual_cost_pusd=_big,
        weighted_charge_pusd=_big,
        status=st.sampled_from([200, 200, 400, 429, 500]),
        estimated=st.booleans(),
        latency_ms=st.floats(0, 10_000),
    ),
    max_size=40,
    unique_by=lambda r: r.request_id,
)


def group_value(record: LedgerRecord, key: str) -> str:
    return record.served_model or record.requested_model if key == "model" else getattr(record, key)


def expected_usage(
    records: Sequence[LedgerRecord],
    group_by: Sequence[str],
    granularity: str,
    since_ms: int,
    until_ms: int,
    filters: dict[str, str],
) -> list[dict[str, Any]]:
    """The same report, computed in Python from the raw records."""
    sums: dict[tuple[Any, ...], dict[str, int]] = {}
    for r in records:
        hour = r.started_at_ms - r.started_at_ms % HOUR_MS
        if not since_ms - since_ms % HOUR_MS <= hour < until_ms:
            continue
        if any(group_value(r, k) != v for k, v in filters.items()):
            continue
        bucket = {"total": None, "hour": hour, "day": hour - hour % DAY_MS}[granularity]
        key = (bucket, *(group_value(r, k) for k in group_by))
        acc = sums.setdefault(key, dict.fromkeys(SUMS, 0))
        acc["requests"] += 1
        acc["errors"] += r.status >= 400
        acc["estimated"] += r.estimated
        for name in SUMS[2:-1]:
            acc[name] += getattr(r, name)
    rows = []
    for key in sorted(sums, key=lambda k: (k[0] or 0, *k[1:])):
        row: dict[str, Any] = dict(zip(group_by, key[1:], strict=True))
        if granularity != "total":
            row["bucket_start_ms"] = key[0]
        row.update(sums[key])
        rows.append(row)
    return rows


def strip(rows: list[dict[str, Any]], group_by: Sequence[str]) -> list[dict[str, Any]]:
    keep = {*group_by, "bucket_start_ms", *SUMS}
    return [{k: v for k, v in row.items() if k in keep} for row in rows]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=records_strategy,
    chunk=st.integers(1, 16),
    since_ms=st.integers(T0 - 3 * HOUR_MS, T0 + 2 * DAY_MS),
    span_ms=st.integers(0, 4 * DAY_MS),
    filters=st.dictionaries(
        st.sampled_from(GROUP_KEYS),
        st.sampled_from(["o1", "t1", "u2", "m1", "m3", "p1"]),
        max_size=1,
    ),
)
def test_rollups_equal_the_sums_of_the_raw_records(
    db: Database,
    records: list[LedgerRecord],
    chunk: int,
    since_ms: int,
    span_ms: int,
    filters: dict[str, str],
) -> None:
    with db.engine.begin() as connection:
        connection.execute(delete(requests))
        connection.execute(delete(usage_hourly))
    for start in range(0, len(records), chunk):  # several transactions: upserts add up
        with db.engine.begin() as connection:
            insert_records(connection, records[start : start + chunk])

    until_ms = since_ms + span_ms
    for group_by in ALL_GROUPINGS:
        for granularity in ("total", "hour", "day"):
            got = usage_query(
                db.engine,
                group_by=group_by,
                granularity=granularity,
                since_ms=since_ms,
                until_ms=until_ms,
                filters=filters,
            )
            want = expected_usage(records, group_by, granularity, since_ms, until_ms, filters)
            assert strip(got, group_by) == want, (group_by, granularity)
            for row in got:
                assert row["total_tokens"] == row["input_tokens"] + row["output_tokens"]
                assert row["actual_cost_usd"] == pytest.approx(row["actual_cost_pusd"] / 1e12)


def write(db: Database, records: Sequence[LedgerRecord]) -> None:
    with db.engine.begin() as connection:
        insert_records(connection, records)


def test_hours_and_utc_days(db: Database, record: RecordFactory) -> None:
    late = T0 + DAY_MS - HOUR_MS // 2  # 23:30 UTC
    write(db, [record(started_at_ms=late), record(started_at_ms=late + HOUR_MS)])  # 00:30 next day
    days = usage_query(db.engine, granularity="day", since_ms=T0, until_ms=T0 + 2 * DAY_MS)
    assert [(d["bucket_start_ms"], d["requests"]) for d in days] == [(T0, 1), (T0 + DAY_MS, 1)]
    hours = usage_query(db.engine, granularity="hour", since_ms=T0, until_ms=T0 + 2 * DAY_MS)
    assert [h["bucket_start_ms"] for h in hours] == [T0 + 23 * HOUR_MS, T0 + 24 * HOUR_MS]
    # Resolution is an hour: a range that starts within an hour counts the whole hour.
    inside = usage_query(db.engine, since_ms=late + 60_000, until_ms=late + 120_000)
    assert inside[0]["requests"] == 1
    assert usage_query(db.engine, since_ms=T0 + 2 * DAY_MS, until_ms=T0 + 3 * DAY_MS) == []


def test_model_is_the_served_model_else_the_requested_one(
    db: Database, record: RecordFactory
) -> None:
    write(
        db,
        [
            record(requested_model="alias", served_model="real"),
            record(requested_model="alias", served_model=""),
        ],
    )
    rows = usage_query(db.engine, group_by=["model"], since_ms=0, until_ms=T0 + DAY_MS)
    assert [(r["model"], r["requests"]) for r in rows] == [("alias", 1), ("real", 1)]
    only = usage_query(
        db.engine, group_by=["team"], since_ms=0, until_ms=T0 + DAY_MS, filters={"model": "real"}
    )
    assert [(r["team"], r["requests"]) for r in only] == [("payments", 1)]


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"group_by": ["team", "colour"]}, "colour"),
        ({"filters": {"key_hash": "x"}}, "key_hash"),
        ({"granularity": "week"}, "week"),
    ],
)
def test_unknown_names_are_rejected(db: Database, kwargs: dict[str, Any], bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        usage_query(db.engine, since_ms=0, until_ms=1, **kwargs)


def test_get_request_returns_the_whole_row(db: Database, record: RecordFactory) -> None:
    original = record(tags=("a", "b"), extra={"route": {"why": "cheaper"}}, stream=True)
    write(db, [original])
    row = get_request(db.engine, original.request_id)
    assert row is not None
    assert row["tags"] == ["a", "b"]
    assert row["extra"] == {"route": {"why": "cheaper"}}
    assert row["stream"] is True and row["estimated"] is False
    for name in ("started_at_ms", "input_tokens", "actual_cost_pusd", "ttft_ms", "finish_reason"):
        assert row[name] == getattr(original, name)
    assert get_request(db.engine, "nope") is None


def test_recent_requests_newest_first_with_filters(db: Database, record: RecordFactory) -> None:
    write(db, [record(started_at_ms=T0 + i, user=f"u{i % 2}") for i in range(10)])
    newest = recent_requests(db.engine, limit=3)
    assert [r["started_at_ms"] for r in newest] == [T0 + 9, T0 + 8, T0 + 7]
    mine = recent_requests(db.engine, limit=100, filters={"user": "u1"})
    assert [r["started_at_ms"] for r in mine] == [T0 + 9, T0 + 7, T0 + 5, T0 + 3, T0 + 1]
    page = recent_requests(db.engine, limit=2, filters={"user": "u1"}, before_ms=T0 + 7)
    assert [r["started_at_ms"] for r in page] == [T0 + 5, T0 + 3]
    with pytest.raises(ValueError, match="colour"):
        recent_requests(db.engine, filters={"colour": "red"})
