"""The ledger writer: journaled, batched, durable, off the event loop.

The gateway calls `append(record)` and gets a future that resolves once the
record is durable; it holds the last bytes of each response until then, so every
response a client fully received is in the ledger, even after `kill -9`.

With a journal (the default for a SQLite file: `<its directory>/journal`),
durable means appended to a journal file: one `os.write` in the loop's thread,
a few microseconds, and the future is resolved already. A dedicated thread
group-commits the records into the database, the raw rows and the hourly
rollups in one transaction, and deletes journal segments once all their records
are stored; `start()` (and `Database.migrate()`) replay what a dead writer left.
Rows therefore reach the database a few milliseconds after `append`; `flush()`
waits for them.

Without a journal (a server database with no `journal_dir`, `journal=False`, or
`TOLLWAY_LEDGER_SYNC=full`, whose commits are fsynced and so outlast an OS crash
that a journal in the page cache would not), durable means committed: the
future resolves after the transaction that holds the record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine

from tollway.ledger.commit import BatchCommitter, LedgerWriteError
from tollway.ledger.daily import DailyTracker
from tollway.ledger.database import SYNC_ENV
from tollway.ledger.journal import (
    Journal,
    default_journal_dir,
    encode_record,
    replay_dead_writers,
)
from tollway.ledger.record import LedgerRecord

__all__ = ["LedgerWriteError", "LedgerWriter"]

log = logging.getLogger(__name__)

# A record and the future its caller awaits (None: journaled, resolved already).
Entry = tuple[LedgerRecord, "asyncio.Future[None] | None"]


class _Mark:
    """A point in the queue: once the records before it are committed, resolve
    `future` (flush) and delete `segment` (all of its records are stored)."""

    __slots__ = ("future", "segment")

    def __init__(
        self, future: asyncio.Future[None] | None = None, segment: Path | None = None
    ) -> None:
        self.future = future
        self.segment = segment


Item = Entry | _Mark


class LedgerWriter:
    """Journals ledger records on an asyncio loop and group-commits them on a thread.

    Backpressure and memory: at most `max_queue` records wait for the database
    in memory with their futures resolved. Past that, `append` still journals
    each record but resolves its future only at commit, as without a journal, so
    a gateway that awaits the futures slows to the database's pace: records in
    memory stay below `max_queue` plus the requests in flight, while the journal
    on disk holds everything not yet committed. Further records wait in an
    overflow list on the loop side; nothing is dropped and `append` never blocks.
    `append_wait` waits for room first, and `backlog` / `saturated` let admission
    control shed load early.

    Segments rotate at `segment_bytes` or `segment_age_s` after their first
    record, whichever comes first, so a replay has at most a few to read. While
    journaling, commits are at least `commit_interval_s` apart unless someone
    waits for one (`flush`, `close`, a future pending on a commit) or a full
    batch is queued: nobody waits for them, and bigger batches cost less CPU per
    record than a commit per record would.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        max_queue: int = 100_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        journal: bool = True,
        journal_dir: str | Path | None = None,
        segment_bytes: int = 8 << 20,
        segment_age_s: float = 1.0,
        commit_interval_s: float = 0.005,
        daily: DailyTracker | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self._engine = engine
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._committer = BatchCommitter(
            engine,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            daily=daily,
        )
        directory = Path(journal_dir) if journal_dir is not None else None
        self.journal_dir = (directory or default_journal_dir(engine.url)) if journal else None
        self._segment_bytes = segment_bytes
        self._segment_age_s = segment_age_s
        self._commit_interval_s = commit_interval_s
        self._hurry = threading.Event()  # someone waits for a commit: skip the interval
        self._journal: Journal | None = None  # set by start() if journaling
        self._journal_failing = False
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._overflow: deque[Item] = deque()
        self._room: asyncio.Event | None = None
        self._room_wanted = False  # append_wait is waiting: the thread must report progress
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    @property
    def journaling(self) -> bool:
        """Whether `append` acknowledges records once journaled (set by `start`)."""
        return self._journal is not None

    @property
    def rows_written(self) -> int:
        return self._committer.rows_written

    @property
    def batches_written(self) -> int:
        return self._committer.batches_written

    @property
    def retries(self) -> int:
        return self._committer.retries

    # -- event-loop side ------------------------------------------------------

    async def start(self) -> None:
        """Open the journal and start the writer thread, which first replays what dead
        writers left in the journal directory. Call from the loop that will append."""
        if self._thread is not None:
            raise RuntimeError("LedgerWriter already started")
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        if self.journal_dir is not None and not await asyncio.to_thread(self._syncs_fully):
            journal = Journal(self.journal_dir)
            await asyncio.to_thread(journal.open)
            self._journal = journal
        self._thread = threading.Thread(target=self._run, name="tollway-ledger", daemon=True)
        self._thread.start()

    def append(self, record: LedgerRecord) -> asyncio.Future[None]:
        """Journal and queue `record`; the future resolves once it is durable. Never blocks."""
        if self._loop is None or self._closing:
            raise RuntimeError("LedgerWriter is not running")
        future: asyncio.Future[None] = self._loop.create_future()
        backlog = self._queue.qsize() + len(self._overflow)
        if self._journal is not None and self._write_journal(record) and backlog < self._max_queue:
            future.set_result(None)
            self._enqueue((record, None))
            if backlog >= self._max_batch and not self._hurry.is_set():
                self._hurry.set()
        else:
            self._enqueue((record, future))
            if self._journal is not None:
                self._hurry.set()  # its caller waits for the commit
        return future

    async def append_wait(self, record: LedgerRecord) -> None:
        """Wait for room in the queue, append `record` and wait until it is durable."""
        assert self._room is not None
        while self.saturated and not self._closing:
            self._room_wanted = True
            self._room.clear()
            if self.saturated:  # still: the thread sees `_room_wanted` after its next batch
                await self._room.wait()
        await self.append(record)

    async def flush(self) -> None:
        """Wait until everything appended so far is committed to the database."""
        if self._loop is None or self._closing or not self._thread or not self._thread.is_alive():
            raise RuntimeError("LedgerWriter is not running")
        future: asyncio.Future[None] = self._loop.create_future()
        self._enqueue(_Mark(future=future))
        self._hurry.set()
        await future

    @property
    def backlog(self) -> int:
        """Records appended but not yet handed to a transaction."""
        return self._queue.qsize() + len(self._overflow)

    @property
    def saturated(self) -> bool:
        return self.backlog >= self._max_queue

    async def close(self, timeout: float | None = 30.0) -> None:
        """Write everything appended so far, then stop the thread.

        If the database stays broken for `timeout` seconds, the futures still
        pending fail with `LedgerWriteError` (and the error is logged); journaled
        records stay in the journal, to be replayed at the next start.
        """
        if self._thread is None or self._closing:
            return
        self._closing = True
        self._committer.give_up_after(timeout)
        self._hurry.set()
        if self._journal is not None:
            self._end_segment()
        while self._overflow and self._thread.is_alive():
            if self._committer.abandoned:
                break
            self._refill()
            await asyncio.sleep(0.005)
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        # Only if the database was given up on: whatever the thread never took.
        leftovers = list(self._overflow)
        self._overflow.clear()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        self._fail(_futures(leftovers), self._committer.unavailable_error())
        if self._journal is not None:
            await asyncio.to_thread(self._journal.close)
            self._journal = None
            if self._committer.abandoned:
                log.error("ledger: records not committed stay in %s for replay", self.journal_dir)
        if self._room is not None:
            self._room.set()

    def _write_journal(self, record: LedgerRecord) -> bool:
        """Append `record` to the journal; False if it could not be (it then waits for commit)."""
        journal = self._journal
        assert journal is not None and self._loop is not None
        try:
            line = encode_record(record)
        except TypeError:  # not JSON-encodable: the database will say what is wrong with it
            return False
        try:
            if journal.segment is None:
                segment = journal.start_segment()
                self._loop.call_later(self._segment_age_s, self._end_segment, segment)
            journal.write(line)
        except OSError as exc:
            if not self._journal_failing:
                log.error("ledger: journal write failed, acknowledging at commit: %s", exc)
                self._journal_failing = True
            self._end_segment()  # a torn line ends its segment: the next line starts clean
            return False
        if self._journal_failing:
            log.warning("ledger: journal writable again")
            self._journal_failing = False
        if journal.size >= self._segment_bytes:
            self._end_segment()
        return True

    def _end_segment(self, segment: Path | None = None) -> None:
        """Rotate: the thread deletes the segment once the records queued before it are stored."""
        journal = self._journal
        if journal is None or (segment is not None and segment != journal.segment):
            return  # already rotated
        try:
            ended = journal.end_segment()
        except OSError as exc:  # close() failing: the data was written all the same
            log.warning("ledger: closing a journal segment failed: %s", exc)
            ended = None
        if ended is not None:
            self._enqueue(_Mark(segment=ended))

    def _enqueue(self, item: Item) -> None:
        # Through the overflow while it holds anything, so the queue keeps append order.
        if self._overflow or self._queue.qsize() >= self._max_queue:
            self._overflow.append(item)
        else:
            self._queue.put(item)

    def _refill(self) -> None:
        while self._overflow and self._queue.qsize() < self._max_queue:
            self._queue.put(self._overflow.popleft())
        if self._room is not None and not self.saturated:
            self._room_wanted = False
            self._room.set()

    def _settle(
        self,
        done: list[asyncio.Future[None]],
        failed: list[tuple[asyncio.Future[None], BaseException]],
    ) -> None:
        # Runs in the loop: one callback per batch, not per record.
        for future in done:
            if not future.done():
                future.set_result(None)
        for future, error in failed:
            if not future.done():
                future.set_exception(error)
        self._refill()

    @staticmethod
    def _fail(futures: Iterable[asyncio.Future[None]], error: BaseException) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(error)

    def _syncs_fully(self) -> bool:
        """Whether commits are fsynced (SQLite `synchronous=FULL`): then the journal is skipped."""
        if self._engine.url.get_backend_name() != "sqlite":
            return os.environ.get(SYNC_ENV, "").lower() == "full"
        try:
            with self._engine.connect() as connection:
                level = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        except Exception:  # the thread will meet the problem again, and retry it
            log.warning("ledger: cannot read PRAGMA synchronous", exc_info=True)
            return os.environ.get(SYNC_ENV, "").lower() == "full"
        return int(level or 0) >= 2  # 2 = FULL, 3 = EXTRA

    # -- writer thread --------------------------------------------------------

    def _run(self) -> None:
        committer = self._committer
        try:
            if self._journal is not None:
                assert self.journal_dir is not None
                replay_dead_writers(
                    self.journal_dir,
                    committer,
                    batch_size=self._max_batch,
                    skip=self._journal.writer_id,
                )
            stop = False
            while not stop and not committer.abandoned:
                self._hurry.clear()  # before taking: a later set() cuts the next wait short
                batch, stop = self._take_batch()
                if batch:
                    self._write(batch)
                pause = self._journal is not None and not stop and not self._closing
                if pause and self._queue.qsize() < self._max_batch:
                    self._hurry.wait(self._commit_interval_s)
        except Exception:  # a bug: log it, and let close() fail whatever is left
            log.exception("ledger: writer thread failed")
            committer.abandoned = True
        finally:
            if committer.abandoned:
                self._fail_queued()
            committer.close()

    def _take_batch(self) -> tuple[list[Item], bool]:
        """Whatever is queued, up to `max_batch` records (marks come along); and whether to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        records = 0 if isinstance(first, _Mark) else 1
        while records < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            if not isinstance(item, _Mark):
                records += 1
        return batch, False

    def _write(self, batch: list[Item]) -> None:
        """Commit the records of `batch`, then settle its futures and delete finished segments."""
        committer = self._committer
        records: list[LedgerRecord] = []
        futures: list[asyncio.Future[None] | None] = []
        marks: list[_Mark] = []
        for item in batch:
            if isinstance(item, _Mark):
                marks.append(item)
            else:
                records.append(item[0])
                futures.append(item[1])
        keep_segments = False
        try:
            rejected = committer.commit(records) if records else {}
        except Exception as exc:  # a bug, not a database error: never leave callers hanging
            log.exception("ledger: unexpected error writing %d records", len(records))
            bug = LedgerWriteError(f"ledger writer failed: {exc}")
            rejected = dict.fromkeys(range(len(records)), bug)
            keep_segments = True  # for the replay at the next start
        done: list[asyncio.Future[None]] = []
        failed: list[tuple[asyncio.Future[None], BaseException]] = []
        for index, future in enumerate(futures):
            if future is not None:
                error = rejected.get(index)
                if error is None:
                    done.append(future)
                else:
                    failed.append((future, error))
        for mark in marks:
            if committer.abandoned:  # some records are not stored: keep their segment
                if mark.future is not None:
                    failed.append((mark.future, committer.unavailable_error()))
                continue
            if mark.segment is not None and not keep_segments:
                try:
                    mark.segment.unlink(missing_ok=True)
                except OSError as exc:  # replayed again at the next start: harmless
                    log.warning("ledger: cannot delete journal segment %s: %s", mark.segment, exc)
            if mark.future is not None:
                done.append(mark.future)
        # Wake the loop only when someone waits: journaled records need no answer.
        if done or failed or self._overflow or self._room_wanted:
            self._call_loop(done, failed)

    def _fail_queued(self) -> None:
        failed: list[Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                failed.append(item)
        error: BaseException = self._committer.unavailable_error()
        futures = [(future, error) for future in _futures(failed)]
        if futures:
            self._call_loop([], futures)

    def _call_loop(
        self,
        done: list[asyncio.Future[None]],
        failed: list[tuple[asyncio.Future[None], BaseException]],
    ) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._settle, done, failed)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("ledger: loop closed before %d futures could be settled", len(done))


def _futures(items: Iterable[Item]) -> list[asyncio.Future[None]]:
    futures = []
    for item in items:
        future = item.future if isinstance(item, _Mark) else item[1]
        if future is not None:
            futures.append(future)
    return futures
