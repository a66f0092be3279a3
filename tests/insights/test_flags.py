"""The review list: scanning a day flags gamed user-days with evidence, and keeps reviews."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from openai import OpenAI
from sqlalchemy import select

from tests.gateway.test_openai_sdk import ledger_row
from tests.harness import GatewayThread
from tests.ledger.conftest import T0, make_record
from tollway.insights.config import DetectionConfig, WorkHours
from tollway.insights.flag_scan import DAY_MS, flag_days, scan_day
from tollway.insights.user_signals import UserDay, entropy_bits, score_day
from tollway.ledger import Database, LedgerRecord
from tollway.ledger.flags import get_flag, list_flags, review_flag
from tollway.ledger.rows import RowWriter
from tollway.ledger.schema import user_daily

DAY = T0 - T0 % DAY_MS + 5 * DAY_MS  # a Tuesday (2026-01-06), 00:00 UTC


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'ledger.db'}")
    database.migrate()
    return database


def human_day(user: str, rng: random.Random, *, team: str = "payments") -> list[LedgerRecord]:
    """Bursty requests between 09:00 and 18:00 UTC, each prompt different."""
    t = DAY + 9 * 3_600_000
    records = []
    while t < DAY + 18 * 3_600_000:
        t += int(rng.expovariate(1 / 240_000)) + 500
        records.append(
            make_record(
                user=user,
                team=team,
                started_at_ms=t,
                prompt_fingerprint=f"{user}-{t}",
                prompt_sketch=rng.getrandbits(63),
            )
        )
    return records


def bot_day(user: str) -> list[LedgerRecord]:
    """A scripted loop: every 3 s for an hour at night, the same prompt."""
    start = DAY + 2 * 3_600_000
    return [
        make_record(user=user, started_at_ms=start + i * 3_000, prompt_fingerprint="loop")
        for i in range(1200)
    ]


def write(db: Database, records: list[LedgerRecord]) -> None:
    with db.engine.begin() as connection:
        RowWriter(db.engine.dialect).write(connection, records)


def test_a_scripted_loop_is_flagged_with_evidence_and_humans_are_not(db: Database) -> None:
    rng = random.Random(5)
    records = [r for u in ("ada", "bob", "cy", "dee") for r in human_day(u, rng)]
    write(db, records + bot_day("mallory"))
    flags = scan_day(db.engine, DAY, DetectionConfig())
    assert [f.user for f in flags] == ["mallory"]
    flag = flags[0]
    assert flag.verdict.score >= 0.9
    assert {"duplicate_share", "regular_cadence_share", "off_hours_share"} <= set(
        flag.verdict.signals
    )
    assert len(flag.sample_request_ids) == 3
    assert flag.flag_id.endswith("/mallory/2026-01-06")


def test_off_hours_follow_the_team_timezone(db: Database) -> None:
    rng = random.Random(6)
    # Tokyo works 00:00-09:00 UTC: a heavy 02:00 UTC run is inside their working day.
    heavy = [
        make_record(
            user="kenji",
            team="tokyo",
            started_at_ms=DAY + 2 * 3_600_000 + i * int(rng.expovariate(1 / 20_000) + 1),
            input_tokens=20_000,
            prompt_fingerprint=f"k{i}",
        )
        for i in range(40)
    ]
    peers = [r for u in ("a", "b") for r in human_day(u, rng, team="tokyo")]
    write(db, heavy + peers)
    tokyo = DetectionConfig(team_work_hours={"tokyo": WorkHours(timezone="Asia/Tokyo")})
    assert "off_hours_share" in scan_day(db.engine, DAY, DetectionConfig())[0].verdict.signals
    assert scan_day(db.engine, DAY, tokyo) == []


def test_flags_are_stored_once_and_reviews_survive_a_rescan(db: Database) -> None:
    write(db, bot_day("mallory"))
    assert flag_days(db.engine, [DAY], DetectionConfig(), None, now_ms=DAY + DAY_MS) == 1
    assert flag_days(db.engine, [DAY], DetectionConfig(), None, now_ms=DAY + DAY_MS) == 0
    (flag,) = list_flags(db.engine, since_ms=DAY)
    assert flag["status"] == "open" and flag["signals"]["duplicate_share"]["value"] > 0.9
    assert review_flag(db.engine, flag["flag_id"], "dismissed", "key_1", "load test", DAY)
    flag_days(db.engine, [DAY], DetectionConfig(), None, now_ms=DAY + DAY_MS + 1)
    stored = get_flag(db.engine, flag["flag_id"])
    assert stored is not None and stored["status"] == "dismissed"
    assert list_flags(db.engine, since_ms=DAY, status="open") == []
    with pytest.raises(ValueError, match="status must be one of"):
        review_flag(db.engine, flag["flag_id"], "guilty", "key_1", None, DAY)


def test_score_needs_enough_requests_and_combines_signals() -> None:
    quiet = UserDay(requests=5, scored_requests=5, tokens=10, duplicate_requests=5)
    assert score_day(quiet).score == 0
    one = score_day(UserDay(requests=100, scored_requests=100, tokens=1, regular_requests=35))
    two = score_day(
        UserDay(requests=100, scored_requests=100, tokens=1, regular_requests=35, length_burns=10)
    )
    assert 0 < one.score < two.score < 1
    assert entropy_bits([1] * 24) == pytest.approx(4.585, abs=1e-3)
    assert entropy_bits([0] * 23 + [7]) == 0


def test_the_gateway_sketches_prompts_and_counts_repeats_per_user_day(
    gateway: GatewayThread,
) -> None:
    key, _ = gateway.runtime.key_store.create("rerun", "qa", "acme", name="repeats")
    client = OpenAI(base_url=gateway.base_url + "/v1", api_key=key)
    prompt = "Summarise build 1042 of the billing service and list the failing test suites."
    ids = []
    for text in (prompt, prompt, prompt.replace("1042", "1043") + " Be brief."):
        reply = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=[{"role": "user", "content": text}]
        )
        ids.append(reply.headers["x-tollway-request-id"])
    first, again, edited = (ledger_row(gateway, i) for i in ids)
    assert first["prompt_sketch"] != 0
    assert first["prompt_sketch"] == again["prompt_sketch"]
    assert first["prompt_fingerprint"] == again["prompt_fingerprint"]
    assert edited["prompt_fingerprint"] != first["prompt_fingerprint"]
    with gateway.runtime.database.engine.connect() as connection:
        row = (
            connection.execute(select(user_daily).where(user_daily.c.user == "rerun"))
            .mappings()
            .one()
        )
    assert (row["requests"], row["duplicate_requests"], row["near_duplicate_requests"]) == (3, 1, 1)
