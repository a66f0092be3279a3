"""The ledger journal: framing, torn lines, rotation, locking, and replay after kill -9."""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from tollway.ledger import Database, LedgerWriter
from tollway.ledger import journal as journal_module
from tollway.ledger.daily import DailyTracker
from tollway.ledger.journal import Journal, encode_record, frame, read_segment
from tollway.ledger.schema import requests, usage_hourly, user_daily

from .conftest import RecordFactory, sqlite_url
from .killed_writer import Child


def stored_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT request_id FROM requests")}


def assert_rollups_match_rows(db_path: Path) -> None:
    database = Database(sqlite_url(db_path))
    with database.engine.connect() as connection:
        run = connection.execute
        rows = run(select(func.count()).select_from(requests)).scalar_one()
        rolled_up = run(select(func.sum(usage_hourly.c.requests))).scalar_one()
        input_raw = run(select(func.sum(requests.c.input_tokens))).scalar_one()
        input_rolled = run(select(func.sum(usage_hourly.c.input_tokens))).scalar_one()
    database.close()
    assert rolled_up == rows  # each row counted once, replayed or not
    assert input_rolled == input_raw


def dead_journal(directory: Path, lines: list[bytes]) -> Path:
    """A segment holding `lines` after the header, left by a writer that is gone."""
    journal = Journal(directory)
    journal.open()
    segment = journal.start_segment()
    for line in lines:
        journal.write(line)
    journal.close()  # unlocks, and keeps the lock file: there is a segment left
    return segment


# -- framing ----------------------------------------------------------------------


def test_records_read_back_exactly(tmp_path: Path, record: RecordFactory) -> None:
    originals = [
        record(),
        record(tags=(), extra={}, ttft_ms=None, error_class="UpstreamTimeout", status=504),
        record(extra={"nested": {"a": [1, 2.5, None]}, "unicode": "é\n✓"}, peak_weight=0.1),
    ]
    segment = dead_journal(tmp_path, [encode_record(r) for r in originals])
    lines = segment.read_bytes().split(b"\n")
    assert len(lines) == 5 and lines[-1] == b""  # header, three records, final newline
    assert read_segment(segment) == originals


def test_a_torn_tail_and_a_corrupt_line_are_skipped_with_a_warning(
    db_path: Path, record: RecordFactory, caplog: pytest.LogCaptureFixture
) -> None:
    records = [record() for _ in range(5)]
    lines = [encode_record(r) for r in records]
    lines[2] = lines[2].replace(b"payments", b"paymentz")  # the CRC no longer matches
    torn = encode_record(record())[:40]  # no newline: the write was cut short
    segment = dead_journal(db_path.parent / "journal", [*lines, torn])
    with caplog.at_level(logging.WARNING, "tollway.ledger.journal"):
        assert read_segment(segment) == records[:2] + records[3:]
        assert "corrupt line 4" in caplog.text  # counting the header
        assert "torn last line (40 bytes)" in caplog.text
        database = Database(sqlite_url(db_path))
        database.migrate()  # replays what can be read
        database.close()
    assert stored_ids(db_path) == {r.request_id for r in records[:2] + records[3:]}
    assert list(segment.parent.iterdir()) == []


def test_the_header_maps_fields_by_name(tmp_path: Path, record: RecordFactory) -> None:
    original = record()
    values = dict(
        zip(journal_module.FIELDS, orjson.loads(encode_record(original)[9:]), strict=True)
    )
    fields = [*reversed(journal_module.FIELDS), "a_field_from_the_future"]
    fields.remove("finish_reason")  # an older writer did not know it
    header = frame(orjson.dumps({"tollway_journal": 1, "fields": fields}))
    line = frame(orjson.dumps([values.get(name, "?") for name in fields]))
    segment = tmp_path / "old.000001.wal"
    segment.write_bytes(header + line)
    (restored,) = read_segment(segment)
    assert restored.request_id == original.request_id
    assert restored.extra == original.extra and restored.tags == original.tags
    assert restored.finish_reason is None  # the default


# -- the writer's journal ----------------------------------------------------------


@pytest.fixture
def migrated(db_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url(db_path))
    database.migrate()
    yield database
    database.close()


async def test_segments_rotate_by_size_and_age_and_go_once_committed(
    migrated: Database, db_path: Path, record: RecordFactory
) -> None:
    journal_dir = db_path.parent / "journal"
    writer = LedgerWriter(migrated.engine, segment_bytes=4096, segment_age_s=0.1)
    await writer.start()
    for _ in range(100):  # ~400 bytes a record: a segment every ~10 records
        writer.append(record())
    await writer.flush()
    assert writer._journal is not None and writer._journal._seq >= 5
    assert len(list(journal_dir.glob("*.wal"))) <= 1  # the one still being appended to
    await asyncio.sleep(0.3)  # the last segment ends by age; its deletion follows
    await writer.flush()
    assert list(journal_dir.glob("*.wal")) == []
    await writer.close()
    assert list(journal_dir.iterdir()) == []
    assert len(stored_ids(db_path)) == 100


async def test_a_journal_that_cannot_be_written_acknowledges_at_commit(
    migrated: Database,
    db_path: Path,
    record: RecordFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = LedgerWriter(migrated.engine)
    await writer.start()
    assert writer.append(record()).done()

    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "write", disk_full)
    futures = [writer.append(record()) for _ in range(3)]
    assert not any(f.done() for f in futures)
    await asyncio.gather(*futures)  # committed instead
    assert caplog.text.count("journal write failed") == 1
    monkeypatch.undo()
    assert writer.append(record()).done()
    await writer.close()
    assert len(stored_ids(db_path)) == 5
    assert list((db_path.parent / "journal").iterdir()) == []


async def test_migrate_leaves_a_live_writers_journal_alone(
    migrated: Database, db_path: Path, record: RecordFactory
) -> None:
    writer = LedgerWriter(migrated.engine)
    await writer.start()
    stuck = threading.Event()
    commit = writer._committer.commit

    def slow_database(records: Any, **kwargs: Any) -> Any:
        stuck.wait()
        return commit(records, **kwargs)

    writer._committer.commit = slow_database  # type: ignore[method-assign]
    records = [record() for _ in range(20)]
    for r in records:
        writer.append(r)
    again = Database(sqlite_url(db_path))
    assert await asyncio.to_thread(again.replay_journal) == 0  # locked: its writer is alive
    assert stored_ids(db_path) == set()
    stuck.set()
    await writer.close()
    again.close()
    assert stored_ids(db_path) == {r.request_id for r in records}


def test_migrate_replays_a_dead_writers_journal(
    migrated: Database, db_path: Path, record: RecordFactory
) -> None:
    records = [record() for _ in range(30)]
    journal_dir = db_path.parent / "journal"
    dead_journal(journal_dir, [encode_record(r) for r in records[:20]])
    dead_journal(journal_dir, [encode_record(r) for r in records[10:]])  # overlapping ids
    migrated.migrate()
    assert stored_ids(db_path) == {r.request_id for r in records}
    assert_rollups_match_rows(db_path)
    assert list(journal_dir.iterdir()) == []
    migrated.migrate()  # nothing left to do
    assert len(stored_ids(db_path)) == 30


def test_a_replay_classifies_requests_with_the_tracker_given_to_migrate(
    migrated: Database, db_path: Path, record: RecordFactory
) -> None:
    records = [record(served_model=m) for m in ("coder", "gpt-sim", "coder")]
    dead_journal(db_path.parent / "journal", [encode_record(r) for r in records])
    migrated.migrate(DailyTracker(in_house_models={"coder"}))
    with migrated.engine.connect() as connection:
        in_house = connection.execute(select(func.sum(user_daily.c.in_house_tokens))).scalar()
    assert in_house == sum(r.input_tokens + r.output_tokens for r in (records[0], records[2]))


# -- kill -9 ---------------------------------------------------------------------


async def restart(db_path: Path) -> int:
    """What a restarted gateway does (without migrate): start a writer, which replays."""
    database = Database(sqlite_url(db_path))
    writer = LedgerWriter(database.engine)
    await writer.start()
    await writer.flush()  # waits for the replay too
    await writer.close()
    database.close()
    return writer.rows_written


def test_start_replays_every_acknowledged_record_after_kill_9(db_path: Path) -> None:
    child = Child(sqlite_url(db_path), "crash", -1)
    child.read(until=3000)
    child.kill()
    assert len(child.acknowledged) >= 3000
    journal_dir = db_path.parent / "journal"
    before = stored_ids(db_path)
    assert list(journal_dir.glob(f"{child.writer_prefix}*.wal")), "nothing left to replay"

    asyncio.run(restart(db_path))
    stored = stored_ids(db_path)
    missing = set(child.acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
    assert len(stored) > len(before)  # the replay stored what SQLite had not yet
    assert_rollups_match_rows(db_path)
    assert list(journal_dir.iterdir()) == []


def test_a_live_writers_journal_is_not_replayed_but_a_dead_ones_is(db_path: Path) -> None:
    url = sqlite_url(db_path)
    Database(url).migrate()
    dead = Child(url, "dead", 300, stuck=True)
    live = Child(url, "live", 200, stuck=True)
    try:
        dead.read(until=300)
        live.read(until=200)
        assert (len(dead.acknowledged), len(live.acknowledged)) == (300, 200)
        dead.kill()
        journal_dir = db_path.parent / "journal"

        asyncio.run(restart(db_path))  # a third writer, sharing the database and journal
        assert stored_ids(db_path) == set(dead.acknowledged)
        assert list(journal_dir.glob(f"{dead.writer_prefix}*")) == []
        assert list(journal_dir.glob(f"{live.writer_prefix}*.wal"))  # left alone

        live.kill()
        asyncio.run(restart(db_path))
        assert stored_ids(db_path) == set(dead.acknowledged) | set(live.acknowledged)
        assert_rollups_match_rows(db_path)
        assert list(journal_dir.iterdir()) == []
    finally:
        for child in (dead, live):
            if child.process.returncode is None:
                child.process.kill()
                child.process.communicate(timeout=10)
