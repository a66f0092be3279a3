"""Backfill: write a simulated history straight into the ledger, fast.

Records go through `RowWriter` in large transactions (so `usage_hourly` and whatever else
it maintains stay equal to the sum of the rows), outcomes through `insert_outcomes`, and
every simulated key gets an `api_keys` row so admin views resolve it.

Speed: each member is generated from a random stream of its own, so generation can run in
worker processes while this process writes. One writer: SQLite keeps its page cache warm
only while a single connection writes, and two writers measured slower than one.
Re-running the same run (same spec, window and seed) writes nothing twice: request ids
and outcome ids are derived from the run.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from tollway.insights.orgsim.clock import DAY_MS
from tollway.insights.orgsim.generate import OrgSimulator, run_id
from tollway.insights.orgsim.models import SimModels
from tollway.insights.orgsim.truth import SERVICE_TAG, Episode, Member, OrgTruth
from tollway.ledger.daily import DailyTracker
from tollway.ledger.database import Database
from tollway.ledger.keys import KEY_PREFIX, hash_key
from tollway.ledger.outcomes import Outcome, insert_outcomes
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import RowWriter
from tollway.ledger.schema import api_keys, requests

BATCH_ROWS = 100_000  # records per transaction
_CHUNK = 500  # ids per IN (...) and outcomes per insert_outcomes call
_AUTO_WORKERS_MIN_USER_DAYS = 3_000  # smaller runs are done before workers would start
_SQLITE_CACHE_KIB = 262_144  # page cache of the writing connection
_SQLITE_CHECKPOINT_PAGES = 65_536  # checkpoint the WAL every 256 MiB, not every 4 MiB


@dataclass(slots=True)
class BackfillResult:
    """What a backfill wrote and how fast."""

    truth: OrgTruth
    rows: int  # requests generated (and written, unless already stored)
    outcomes: int  # outcomes generated
    outcomes_written: int  # outcomes newly stored
    keys_written: int
    seconds: float
    episodes: list[Episode] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def backfill(
    database: Database,
    truth: OrgTruth,
    models: SimModels,
    *,
    end_ms: int,
    days: float,
    now_ms: int | None = None,
    workers: int | None = None,
    write_outcomes: bool = True,
    quality_window_days: int = 7,
    pool_size: int | None = None,
    batch_rows: int = BATCH_ROWS,
    daily: DailyTracker | None = None,
) -> BackfillResult:
    """Write `days` of `truth`'s traffic ending at `end_ms` into `database` (migrated).

    `daily` counts the per-user daily rollup (pass `daily_tracker(settings)` so exempt
    tags and in-house models follow the config; default: the built-in defaults).
    `workers`: processes generating while this one writes (0: generate here too; default:
    1 for large runs, else 0). `now_ms` stamps key rows and outcomes' `received_at_ms`
    (default: the wall clock).
    """
    started = time.perf_counter()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    keys_written = write_keys(
        database.engine,
        truth.org,
        truth.members,
        created_ms=end_ms - int(days * DAY_MS),
        now_ms=now_ms,
    )
    if workers is None:
        workers = 1 if truth.spec.users * days >= _AUTO_WORKERS_MIN_USER_DAYS else 0
    start_ms = end_ms - int(days * DAY_MS)
    dedupe = run_stored(database.engine, run_id(truth, start_ms, end_ms))
    with (
        _without_gc(),
        _indexes_deferred_if_empty(database.engine),
        _bulk_connection(database.engine) as connection,
    ):
        writer = _Writer(connection, dedupe, batch_rows, daily)
        if workers <= 0:
            simulator = OrgSimulator(truth, models, end_ms=end_ms, days=days, pool_size=pool_size)
            part = _generate_here(simulator, writer)
        else:
            job = _Job(truth, models, end_ms, days, pool_size, max(1000, batch_rows // 4))
            part = _generate_in_workers(job, workers, writer)
        writer.flush()
    outcomes = sorted(part.outcomes, key=lambda o: o.occurred_at_ms)
    episodes = sorted(part.episodes, key=lambda e: (e.start_ms, e.user))
    written = 0
    if write_outcomes:
        written = write_outcome_events(
            database.engine, outcomes, now_ms=now_ms, quality_window_days=quality_window_days
        )
    return BackfillResult(
        truth,
        part.rows,
        len(outcomes),
        written,
        keys_written,
        time.perf_counter() - started,
        episodes,
    )


def write_keys(
    engine: Engine, org: str, members: Sequence[Member], *, created_ms: int, now_ms: int
) -> int:
    """An `api_keys` row for each member's key (and service key) not stored yet; the secrets
    are random and thrown away (these keys only name simulated traffic)."""
    wanted: dict[str, dict[str, Any]] = {}
    for m in members:
        wanted[m.key_id] = _key_row(m, org, m.key_id, f"sim {m.user}", (), created_ms, now_ms)
        if m.service_key_id:
            wanted[m.service_key_id] = _key_row(
                m, org, m.service_key_id, f"sim {m.user} batch", (SERVICE_TAG,), created_ms, now_ms
            )
    with engine.begin() as connection:
        stored: set[str] = set()
        ids = list(wanted)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            query = select(api_keys.c.key_id).where(api_keys.c.key_id.in_(chunk))
            stored.update(connection.execute(query).scalars())
        fresh = [row for key_id, row in wanted.items() if key_id not in stored]
        if fresh:
            connection.execute(api_keys.insert(), fresh)
    return len(fresh)


def write_outcome_events(
    engine: Engine, outcomes: Sequence[Outcome], *, now_ms: int, quality_window_days: int = 7
) -> int:
    """Store `outcomes` (oldest first, so a revert finds the PR it voids); returns how many
    were new."""
    written = 0
    with engine.begin() as connection:
        for start in range(0, len(outcomes), _CHUNK):
            written += len(
                insert_outcomes(
                    connection,
                    outcomes[start : start + _CHUNK],
                    received_at_ms=now_ms,
                    quality_window_days=quality_window_days,
                )
            )
    return written


def run_stored(engine: Engine, run_id: str) -> bool:
    """Whether any request of run `run_id` is already in the ledger (then writes dedupe)."""
    column = requests.c.request_id
    query = select(column).where(column >= f"req_{run_id}", column < f"req_{run_id}~").limit(1)
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def _key_row(
    member: Member,
    org: str,
    key_id: str,
    name: str,
    tags: tuple[str, ...],
    created_ms: int,
    now_ms: int,
) -> dict[str, Any]:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    return {
        "key_id": key_id,
        "key_hash": hash_key(plaintext),
        "prefix": plaintext[:10],
        "name": name,
        "org": org,
        "team": member.team.name,
        "user": member.user,
        "role": "user",
        "tags": orjson.dumps(list(tags)).decode(),
        "created_at_ms": created_ms,
        "expires_at_ms": None,
        "revoked_at_ms": None,
        # Now, not the simulated time: running gateways poll for keys changed lately.
        "updated_at_ms": now_ms,
    }


@dataclass(slots=True)
class _Job:
    """What a generator needs to rebuild the simulation in another process."""

    truth: OrgTruth
    models: SimModels
    end_ms: int
    days: float
    pool_size: int | None
    chunk_rows: int


@dataclass(slots=True)
class _Part:
    rows: int
    outcomes: list[Outcome]
    episodes: list[Episode]


class _Writer:
    """Writes records in transactions of about `batch_rows` (the only writer: SQLite keeps
    its page cache warm only while one connection writes)."""

    def __init__(
        self, connection: Connection, dedupe: bool, batch_rows: int, daily: DailyTracker | None
    ) -> None:
        writer = RowWriter(connection.dialect, daily)
        self._write = writer.write if dedupe else writer.write_new
        self._connection = connection
        self._batch_rows = batch_rows
        self._batch: list[LedgerRecord] = []
        self.rows = 0

    def add(self, records: Iterable[LedgerRecord]) -> None:
        self._batch.extend(records)
        if len(self._batch) >= self._batch_rows:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            with self._connection.begin():
                self._write(self._connection, self._batch)
            self.rows += len(self._batch)
            self._batch = []


def _generate_here(simulator: OrgSimulator, writer: _Writer) -> _Part:
    part = _Part(0, [], [])
    for trace in simulator.traces():
        writer.add(trace.records)
        part.rows += len(trace.records)
        part.outcomes += trace.outcomes
        part.episodes += trace.episodes
    return part


def _generate_in_workers(job: _Job, workers: int, writer: _Writer) -> _Part:
    """Generators in `workers` processes (members split between them) send records as
    plain tuples (cheap to pickle); this process turns them back into records and writes."""
    # fork starts at once and needs no importable __main__, but is unsafe once threads run
    # (a gateway, a test server): then spawn.
    method = "fork" if threading.active_count() == 1 else "spawn"
    context: Any = multiprocessing.get_context(method)
    results = context.Queue(maxsize=4 * workers)  # bounded: generators wait for the writer
    processes = [
        context.Process(target=_generator, args=(job, k, workers, results), daemon=True)
        for k in range(workers)
    ]
    for process in processes:
        process.start()
    part = _Part(0, [], [])
    done = 0
    try:
        while done < workers:
            try:
                message = results.get(timeout=1.0)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise RuntimeError("a backfill generator died") from None
                continue
            if message[0] == "rows":
                writer.add([LedgerRecord(*fields) for fields in message[1]])
                part.rows += len(message[1])
            elif message[0] == "done":
                part.outcomes += message[1]
                part.episodes += message[2]
                done += 1
            else:
                raise RuntimeError(f"backfill generator failed: {message[1]}")
    finally:
        for process in processes:
            if done < workers:  # failed: the others may be blocked on a full queue
                process.terminate()
            process.join(timeout=10)
    return part


def _generator(job: _Job, worker: int, workers: int, results: Any) -> None:
    """A generator process: simulate every `workers`-th member from `worker`."""
    try:
        with _without_gc():
            simulator = OrgSimulator(
                job.truth, job.models, end_ms=job.end_ms, days=job.days, pool_size=job.pool_size
            )
            outcomes: list[Outcome] = []
            episodes: list[Episode] = []
            chunk: list[tuple[Any, ...]] = []
            for trace in simulator.traces(job.truth.members[worker::workers]):
                chunk += map(_record_fields, trace.records)
                outcomes += trace.outcomes
                episodes += trace.episodes
                if len(chunk) >= job.chunk_rows:
                    results.put(("rows", chunk))
                    chunk = []
            if chunk:
                results.put(("rows", chunk))
            results.put(("done", outcomes, episodes))
    except BaseException as exc:  # the parent raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


_record_fields = attrgetter(*(f.name for f in fields(LedgerRecord)))


@contextmanager
def _indexes_deferred_if_empty(engine: Engine) -> Iterator[None]:
    """Into an empty ledger, write `requests` without its secondary indexes and build them
    once at the end: one sort per index instead of a b-tree insert per row and index.
    (A crash in between leaves them missing; `Database.migrate` rebuilds missing ones.)"""
    with engine.connect() as connection:
        empty = connection.execute(select(requests.c.request_id).limit(1)).first() is None
    if not empty:
        yield
        return
    with engine.begin() as connection:
        for index in requests.indexes:
            index.drop(connection, checkfirst=True)
    try:
        yield
    finally:
        with engine.begin() as connection:
            for index in requests.indexes:
                index.create(connection, checkfirst=True)


@contextmanager
def _bulk_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for large transactions: on SQLite a big page cache and a rarer WAL
    checkpoint (connection settings, restored before the connection goes back to the pool)."""
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            yield connection
            return
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cache = raw.execute("PRAGMA cache_size").fetchone()[0]
        checkpoint = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        raw.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        raw.execute(f"PRAGMA wal_autocheckpoint = {_SQLITE_CHECKPOINT_PAGES}")
        try:
            yield connection
        finally:
            raw.execute(f"PRAGMA cache_size = {int(cache)}")
            raw.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")


@contextmanager
def _without_gc() -> Iterator[None]:
    """Generation makes millions of small objects and no reference cycles: the cyclic
    collector would only rescan them (it cost a third of the generation time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
