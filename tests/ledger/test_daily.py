"""Per-user daily counts: written with the requests, idempotent, and right about repeats."""

from __future__ import annotations

import random

from sqlalchemy import select

from tollway.ledger import Database, insert_records
from tollway.ledger.daily import CADENCE_RUN, DAY_MS, DailyTracker
from tollway.ledger.rows import RowWriter
from tollway.ledger.schema import DAILY_KEYS, DAILY_SUMS, user_daily

from .conftest import T0, make_record

_FIELDS = (*DAILY_KEYS, *DAILY_SUMS)


def counts(rows: list[tuple[object, ...]]) -> dict[str, int]:
    """The sums of one user-day row, by name."""
    assert len(rows) == 1
    return {k: v for k, v in zip(_FIELDS, rows[0], strict=True) if k in DAILY_SUMS}  # type: ignore[misc]


def test_exact_repeats_of_a_prompt_count_as_duplicates_within_a_day() -> None:
    tracker = DailyTracker()
    records = [
        make_record(prompt_fingerprint="same", started_at_ms=T0 + i * 60_000) for i in range(5)
    ]
    assert counts(tracker.rows(records))["duplicate_requests"] == 4
    # A new day starts afresh: the first one there is not a duplicate.
    next_day = [make_record(prompt_fingerprint="same", started_at_ms=T0 + DAY_MS + 5)]
    assert counts(tracker.rows(next_day))["duplicate_requests"] == 0


def test_a_retried_batch_is_not_counted_against_itself() -> None:
    tracker = DailyTracker()
    records = [
        make_record(prompt_fingerprint=f"p{i}", prompt_sketch=s)
        for i, s in enumerate((0xF0F0, 0xF0F1, 0xFFFF_0000))
    ]
    first = counts(tracker.rows(records))
    again = counts(tracker.rows(records))
    assert first == again
    assert first["duplicate_requests"] == 0
    assert first["near_duplicate_requests"] == 1


def test_near_duplicate_sketches_count_once_and_exact_duplicates_are_not_also_near() -> None:
    tracker = DailyTracker()
    base = 0b1011 << 40
    records = [
        make_record(prompt_fingerprint="a", prompt_sketch=base, started_at_ms=T0 + 1),
        make_record(prompt_fingerprint="b", prompt_sketch=base ^ 0b1, started_at_ms=T0 + 2),
        make_record(prompt_fingerprint="a", prompt_sketch=base, started_at_ms=T0 + 3),
        make_record(
            prompt_fingerprint="c", prompt_sketch=base ^ (0xFFFF << 8), started_at_ms=T0 + 4
        ),
    ]
    result = counts(tracker.rows(records))
    assert result["duplicate_requests"] == 1
    assert result["near_duplicate_requests"] == 1


def test_a_fixed_cadence_is_regular_and_human_gaps_are_not() -> None:
    tracker = DailyTracker()
    ticks = [
        make_record(user="bot", started_at_ms=T0 + i * 3_000 + (i % 3) * 20) for i in range(60)
    ]
    # The first CADENCE_RUN requests only fill the window; every later one ends a regular run.
    assert counts(tracker.rows(ticks))["regular_requests"] == 60 - CADENCE_RUN
    rng = random.Random(3)
    t = T0
    human = []
    for _ in range(60):
        t += int(rng.expovariate(1 / 90_000)) + 1
        human.append(make_record(user="ada", started_at_ms=t))
    assert counts(tracker.rows(human))["regular_requests"] == 0


def test_sanctioned_automation_and_failures_are_not_scored() -> None:
    tracker = DailyTracker(exempt_tags={"automation"})
    records = [
        *(make_record(tags=("automation",), prompt_fingerprint="x") for _ in range(3)),
        *(make_record(status=429, prompt_fingerprint="y") for _ in range(3)),
    ]
    result = counts(tracker.rows(records))
    assert result["requests"] == 6
    assert result["exempt_requests"] == 3
    assert result["duplicate_requests"] == 0


def test_tokens_credited_and_gamed_and_length_burns() -> None:
    records = [
        make_record(input_tokens=1000, output_tokens=0, gaming_score=0.75),
        make_record(input_tokens=1000, output_tokens=0, gaming_score=0.0),
        make_record(finish_reason="length", max_tokens=8192),
        make_record(finish_reason="length", max_tokens=256),
    ]
    result = counts(DailyTracker().rows(records))
    assert result["gamed_requests"] == 1
    assert result["length_burns"] == 1
    assert result["tokens"] == sum(r.input_tokens + r.output_tokens for r in records)
    assert result["credited_tokens"] == 250 + 1000 + sum(
        r.input_tokens + r.output_tokens for r in records[2:]
    )


def test_in_house_tokens_by_served_model_or_provider_failures_included() -> None:
    tracker = DailyTracker(in_house_models={"coder"}, in_house_providers={"gpu"})
    records = [
        make_record(served_model="coder", provider="vendor", input_tokens=100, output_tokens=10),
        make_record(served_model="gpt-sim", provider="gpu", input_tokens=200, output_tokens=20),
        # Nothing served: the requested model decides.
        make_record(requested_model="coder", served_model="", status=502, output_tokens=0),
        # The requested name does not count when another model served it.
        make_record(requested_model="coder", served_model="gpt-sim", input_tokens=7),
    ]
    result = counts(tracker.rows(records))
    assert result["in_house_tokens"] == 110 + 220 + records[2].input_tokens
    assert result["tokens"] == sum(r.input_tokens + r.output_tokens for r in records)
    assert counts(DailyTracker().rows(records))["in_house_tokens"] == 0


def test_daily_rows_are_written_with_the_requests_and_equal_their_sums(db: Database) -> None:
    records = [
        make_record(user=u, started_at_ms=T0 + d * DAY_MS + i, prompt_fingerprint=f"{u}{i % 4}")
        for u in ("ada", "bob")
        for d in range(2)
        for i in range(10)
    ]
    writer = RowWriter(db.engine.dialect)
    with db.engine.begin() as connection:
        writer.write(connection, records[:25])
    with db.engine.begin() as connection:
        writer.write(connection, records)  # the first 25 are skipped as already stored
    with db.engine.connect() as connection:
        rows = connection.execute(select(user_daily)).mappings().all()
    assert len(rows) == 4
    for row in rows:
        assert row["requests"] == 10
        assert row["duplicate_requests"] == 6  # 10 prompts, 4 distinct
    # insert_records (bulk loads) fills the same table.
    with db.engine.begin() as connection:
        insert_records(connection, [make_record(user="cy", started_at_ms=T0)])
    with db.engine.connect() as connection:
        users = set(connection.execute(select(user_daily.c.user)).scalars())
    assert users == {"ada", "bob", "cy"}
