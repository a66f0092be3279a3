"""The ledger writer: group commit, durable-before-resolve (journaled, or committed without a
journal), flush on close, retries, kill -9. The journal itself: test_journal.py."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tollway.ledger import Database, LedgerWriteError, LedgerWriter, usage
from tollway.ledger.schema import requests, usage_hourly

from .conftest import T0, RecordFactory, sqlite_url
from .killed_writer import Child

DAY_MS = 86_400_000


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM requests").fetchone()[0]


def totals(db: Database) -> dict[str, int]:
    rows = usage(db.engine, since_ms=0, until_ms=T0 + 365 * DAY_MS)
    return rows[0] if rows else {}


async def test_group_commit_writes_every_row_and_the_rollups(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine)
    await writer.start()
    teams, models = ("a", "b", "c"), ("m1", "m2", "")
    records = [
        record(
            team=teams[i % 3],
            served_model=models[i % 3],
            started_at_ms=T0 + i * 60_000,
            status=500 if i % 7 == 0 else 200,
            estimated=i % 5 == 0,
            input_tokens=i,
            actual_cost_pusd=i * 1_000_003,
        )
        for i in range(3000)
    ]
    await asyncio.gather(*(writer.append(r) for r in records))
    await writer.flush()
    assert count_rows(db_path) == 3000  # flush waits for the commits
    await writer.close()

    assert count_rows(db_path) == 3000
    assert writer.rows_written == 3000
    assert writer.batches_written < 3000 / 4  # grouped, not one commit per record
    total = totals(db)
    assert total["requests"] == 3000
    assert total["errors"] == sum(r.status >= 400 for r in records)
    assert total["estimated"] == sum(r.estimated for r in records)
    assert total["input_tokens"] == sum(r.input_tokens for r in records)
    assert total["actual_cost_pusd"] == sum(r.actual_cost_pusd for r in records)
    with db.engine.connect() as connection:
        raw = connection.execute(select(func.sum(requests.c.output_tokens))).scalar_one()
        rolled = connection.execute(select(func.sum(usage_hourly.c.output_tokens))).scalar_one()
    assert raw == rolled == 300 * 3000


@pytest.mark.parametrize("mode", ["no journal", "sync=full"])
async def test_without_a_journal_the_future_resolves_only_after_commit(
    mode: str, db_path: Path, record: RecordFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "sync=full":
        monkeypatch.setenv("TOLLWAY_LEDGER_SYNC", "full")  # commits are fsynced: no journal
    db = Database(sqlite_url(db_path))
    db.migrate()
    writer = LedgerWriter(db.engine, max_batch=16, journal=mode != "no journal")
    await writer.start()
    assert not writer.journaling
    observer = sqlite3.connect(db_path)  # another connection: sees committed rows only
    seen: dict[str, bool] = {}

    def check(request_id: str, _future: object) -> None:
        query = "SELECT 1 FROM requests WHERE request_id = ?"
        seen[request_id] = observer.execute(query, (request_id,)).fetchone() is not None

    futures = []
    for r in [record() for _ in range(200)]:
        future = writer.append(r)
        future.add_done_callback(functools.partial(check, r.request_id))
        futures.append(future)
    await asyncio.gather(*futures)
    await writer.close()
    observer.close()
    db.close()
    assert len(seen) == 200
    assert all(seen.values())
    assert not (db_path.parent / "journal").exists()


async def test_with_a_journal_the_future_resolves_once_the_record_is_journaled(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine)
    await writer.start()
    assert writer.journaling and writer.journal_dir == db_path.parent / "journal"
    records = [record() for _ in range(50)]
    futures = [writer.append(r) for r in records]
    assert all(f.done() and f.exception() is None for f in futures)  # no wait for the thread
    journaled = b"".join(p.read_bytes() for p in writer.journal_dir.glob("*.wal"))
    assert all(r.request_id.encode() in journaled for r in records)
    await writer.flush()
    assert count_rows(db_path) == 50
    await writer.close()
    assert list(writer.journal_dir.iterdir()) == []  # segments and lock file gone


async def test_flush_waits_for_the_commit_of_everything_appended(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine, max_batch=8)
    await writer.start()
    for n in range(5):
        for _ in range(100):
            writer.append(record())
        await writer.flush()
        assert count_rows(db_path) == 100 * (n + 1)
    await writer.flush()  # nothing pending
    await writer.close()
    with pytest.raises(RuntimeError):
        await writer.flush()


async def test_close_flushes_everything_appended(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine, max_batch=64)
    await writer.start()
    futures = [writer.append(record()) for _ in range(2000)]
    await writer.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert count_rows(db_path) == 2000
    with pytest.raises(RuntimeError):
        writer.append(record())


async def test_a_full_queue_delays_but_never_drops(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine, max_batch=4, max_queue=8)
    await writer.start()
    futures = [writer.append(record()) for _ in range(500)]
    assert writer.saturated
    assert writer._queue.qsize() <= 8  # the rest waits on the loop side
    # Journaled records are acknowledged at once only while the backlog is short;
    # past it, at commit, so that a gateway awaiting them slows to the database's pace.
    assert 8 <= sum(f.done() for f in futures) < 500  # (the thread takes some meanwhile)
    await writer.append_wait(record())  # waits for room, then until it is durable
    await asyncio.gather(*futures)
    await writer.flush()
    assert writer.backlog == 0 and not writer.saturated
    await writer.close()
    assert count_rows(db_path) == 501


async def test_a_repeated_request_id_is_stored_and_counted_once(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine)
    await writer.start()
    same = record()
    await asyncio.gather(writer.append(same), writer.append(same))  # one batch
    await writer.flush()
    await writer.append(same)  # a later batch: the row is already there
    await writer.close()
    assert count_rows(db_path) == 1
    assert totals(db)["requests"] == 1


async def test_an_invalid_record_fails_alone(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine)
    await writer.start()
    good = [record() for _ in range(20)]
    bad = record(input_tokens=2**70)  # does not fit a BIGINT (nor JSON: not journaled)
    futures = [writer.append(r) for r in good[:10]]
    bad_future = writer.append(bad)
    futures += [writer.append(r) for r in good[10:]]
    await asyncio.gather(*futures)
    with pytest.raises(LedgerWriteError):
        await bad_future
    await writer.close()
    assert count_rows(db_path) == 20
    assert totals(db)["requests"] == 20


async def test_a_journaled_record_the_database_refuses_is_logged_and_dropped(
    db: Database, db_path: Path, record: RecordFactory, caplog: pytest.LogCaptureFixture
) -> None:
    writer = LedgerWriter(db.engine)
    await writer.start()
    bad = record(input_tokens=2**63)  # JSON can hold it, a signed 64-bit column cannot
    futures = [writer.append(r) for r in [record(), bad, record()]]
    assert all(f.done() for f in futures)  # acknowledged once journaled
    await writer.flush()
    await writer.close()
    assert count_rows(db_path) == 2
    assert f"cannot store record '{bad.request_id}'" in caplog.text
    assert list((db_path.parent / "journal").iterdir()) == []  # not replayed forever


async def test_retries_until_the_database_can_take_the_rows(
    tmp_path: Path, record: RecordFactory
) -> None:
    database = Database(sqlite_url(tmp_path / "late.db"))  # not migrated yet: no tables
    writer = LedgerWriter(database.engine, retry_initial_s=0.01, retry_max_s=0.05, journal=False)
    await writer.start()
    future = writer.append(record())
    await asyncio.sleep(0.15)
    assert not future.done()
    assert writer.retries > 0
    await asyncio.to_thread(database.migrate)
    await asyncio.wait_for(future, 5)
    await writer.close()
    assert count_rows(tmp_path / "late.db") == 1


async def test_journaled_records_wait_in_the_journal_while_the_database_is_down(
    tmp_path: Path, record: RecordFactory
) -> None:
    database = Database(sqlite_url(tmp_path / "late.db"))  # not migrated yet: no tables
    writer = LedgerWriter(database.engine, retry_initial_s=0.01, retry_max_s=0.05)
    await writer.start()
    future = writer.append(record())
    assert future.done()  # durable in the journal already
    flushed = asyncio.ensure_future(writer.flush())
    await asyncio.sleep(0.15)
    assert not flushed.done() and writer.retries > 0
    await asyncio.to_thread(database.migrate)
    await asyncio.wait_for(flushed, 5)
    await writer.close()
    assert count_rows(tmp_path / "late.db") == 1


async def test_close_fails_pending_records_if_the_database_stays_broken(
    tmp_path: Path, record: RecordFactory
) -> None:
    database = Database(sqlite_url(tmp_path / "broken.db"))  # never migrated
    writer = LedgerWriter(database.engine, max_queue=2, retry_initial_s=0.01, journal=False)
    await writer.start()
    futures = [writer.append(record()) for _ in range(5)]
    started = time.monotonic()
    await writer.close(timeout=0.3)
    assert time.monotonic() - started < 3
    for future in futures:
        with pytest.raises(LedgerWriteError):
            future.result()


async def test_close_leaves_journaled_records_for_the_next_start_if_the_database_stays_broken(
    tmp_path: Path, record: RecordFactory
) -> None:
    path = tmp_path / "broken.db"
    database = Database(sqlite_url(path))  # never migrated
    writer = LedgerWriter(database.engine, max_queue=2, retry_initial_s=0.01)
    await writer.start()
    futures = [writer.append(record()) for _ in range(5)]
    acknowledged = sum(f.done() for f in futures)  # journaled while the backlog was short
    assert acknowledged >= 2
    await writer.close(timeout=0.3)
    assert all(f.done() for f in futures)
    assert sum(f.exception() is None for f in futures) == acknowledged  # the others failed
    assert list((tmp_path / "journal").glob("*.wal"))  # kept for a replay
    database.migrate()  # the next start replays them all
    assert count_rows(path) == 5
    assert list((tmp_path / "journal").iterdir()) == []


def test_every_acknowledged_record_survives_kill_9(db_path: Path) -> None:
    url = sqlite_url(db_path)
    child = Child(url, "crash", -1)
    child.read(3000)
    child.kill()
    acknowledged = child.acknowledged
    assert len(acknowledged) >= 3000

    journal = db_path.parent / "journal"
    assert list(journal.glob("*.lock"))  # the dead writer's
    database = Database(url)
    database.migrate()  # reopening a killed ledger migrates again and replays its journal
    assert list(journal.iterdir()) == []
    with database.engine.connect() as connection:
        stored = set(connection.execute(select(requests.c.request_id)).scalars())
        run = connection.execute
        rolled_up = run(select(func.sum(usage_hourly.c.requests))).scalar_one()
        input_raw = run(select(func.sum(requests.c.input_tokens))).scalar_one()
        input_rolled = run(select(func.sum(usage_hourly.c.input_tokens))).scalar_one()
    database.close()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
    assert rolled_up == len(stored)  # rows and rollups committed together
    assert input_rolled == input_raw


async def test_a_cancelled_waiter_does_not_cancel_the_write(
    db: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(db.engine, journal=False)  # journaled, append_wait never suspends
    await writer.start()
    waiter = asyncio.ensure_future(writer.append_wait(record()))
    await asyncio.sleep(0)
    waiter.cancel()  # e.g. the client disconnected
    await writer.close()
    assert waiter.cancelled()
    assert count_rows(db_path) == 1
