"""The ledger writer: batched, durable, off the event loop.

The gateway calls `append(record)` and gets a future that resolves once the row
is committed; it holds the last bytes of each response until then, so every
response a client fully received is in the ledger, even after `kill -9`.

A dedicated thread owns one connection and does group commit: it takes whatever
is queued (up to `max_batch`) and writes it in one transaction, the raw rows and
the hourly rollups together, so the two always agree.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import RowWriter, without_duplicates

log = logging.getLogger(__name__)

Item = tuple[LedgerRecord, "asyncio.Future[None]"]


class LedgerWriteError(Exception):
    """A record was not written: the row is invalid, or the database stayed down until close."""


def _is_record_error(exc: BaseException) -> bool:
    """Whether `exc` is about the rows written (fail them) rather than the database (retry)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state:  # PostgreSQL: data exceptions (22) and integrity violations (23)
            return str(state).startswith(("22", "23"))
        # SQLite: unbindable values, constraint violations; OperationalError is the database.
        return isinstance(exc, IntegrityError | DataError | ProgrammingError)
    # Errors raised in Python while binding (overflow, bad types) are about the data,
    # except the pool's own troubles.
    return not isinstance(exc, DisconnectionError | PoolTimeout | OSError)


class LedgerWriter:
    """Group-commits ledger records from an asyncio loop on a dedicated thread.

    Backpressure: at most `max_queue` records wait for the thread; `append` puts
    further ones in an overflow list on the loop side and moves them to the queue
    as batches commit. Nothing is dropped and `append` never blocks; the caller
    simply waits longer for its future, which is what slows a gateway that
    awaits the future before finishing each response. `append_wait` waits for room
    first, and `backlog` / `saturated` let admission control shed load early.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        max_queue: int = 100_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self._engine = engine
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._overflow: deque[Item] = deque()
        self._room: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._deadline: float | None = None  # monotonic; set by close(timeout)
        self._wakeup = threading.Event()  # cuts retry back-off short at close
        self._abandoned = False  # the database stayed broken past the close deadline
        self._abandon_error: BaseException | None = None
        self._connection: Connection | None = None
        self._rows = RowWriter(engine.dialect)
        self.rows_written = 0
        self.batches_written = 0
        self.retries = 0

    # -- event-loop side ------------------------------------------------------

    async def start(self) -> None:
        """Start the writer thread; call from the loop that will append."""
        if self._thread is not None:
            raise RuntimeError("LedgerWriter already started")
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="tollway-ledger", daemon=True)
        self._thread.start()

    def append(self, record: LedgerRecord) -> asyncio.Future[None]:
        """Queue `record`; the future resolves once its row is committed. O(1), never blocks."""
        if self._loop is None or self._closing:
            raise RuntimeError("LedgerWriter is not running")
        future: asyncio.Future[None] = self._loop.create_future()
        if self._overflow or self._queue.qsize() >= self._max_queue:
            self._overflow.append((record, future))
        else:
            self._queue.put((record, future))
        return future

    async def append_wait(self, record: LedgerRecord) -> None:
        """Wait for room in the queue, append `record` and wait for its commit."""
        while self.saturated and not self._closing:
            assert self._room is not None
            self._room.clear()
            await self._room.wait()
        await self.append(record)

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
        pending fail with `LedgerWriteError` (and the error is logged).
        """
        if self._thread is None or self._closing:
            return
        self._closing = True
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        self._wakeup.set()
        while self._overflow and self._thread.is_alive():
            if self._deadline is not None and time.monotonic() > self._deadline:
                break
            self._refill()
            await asyncio.sleep(0.005)
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        # Only if the database was given up on: whatever the thread never took.
        leftovers = [future for _record, future in self._overflow]
        self._overflow.clear()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item[1])
        self._fail(leftovers, self._abandon_exception())
        if self._room is not None:
            self._room.set()

    def _refill(self) -> None:
        while self._overflow and self._queue.qsize() < self._max_queue:
            self._queue.put(self._overflow.popleft())
        if self._room is not None and not self.saturated:
            self._room.set()

    def _settle(self, futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
        # Runs in the loop: one callback per batch, not per record.
        if error is None:
            for future in futures:
                if not future.done():
                    future.set_result(None)
        else:
            self._fail(futures, error)
        self._refill()

    @staticmethod
    def _fail(futures: Iterable[asyncio.Future[None]], error: BaseException) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(error)

    # -- writer thread --------------------------------------------------------

    def _run(self) -> None:
        stop = False
        try:
            while not stop and not self._abandoned:
                first = self._queue.get()
                batch: list[Item] = []
                if first is None:
                    stop = True
                else:
                    batch.append(first)
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        stop = True
                        continue
                    batch.append(item)
                if not batch:
                    continue
                try:
                    self._write_batch(batch, retrying=False)
                except Exception as exc:  # a bug, not a database error: never leave callers hanging
                    log.exception("ledger: unexpected error writing %d records", len(batch))
                    self._settle_threadsafe(batch, LedgerWriteError(f"ledger writer failed: {exc}"))
        finally:
            if self._abandoned:
                self._fail_queued()
            self._drop_connection()

    def _write_batch(self, batch: list[Item], *, retrying: bool) -> None:
        """Commit `batch`: retry database outages, isolate and fail only invalid records."""
        records = [record for record, _future in batch]
        delay = self._retry_initial_s
        while not self._abandoned:
            try:
                self._commit(records, dedupe=retrying)
            except Exception as exc:
                self.retries += 1
                if _is_record_error(exc):
                    if not retrying:  # perhaps a repeated request id: check what is stored first
                        retrying = True
                        continue
                    self._isolate(batch, exc)
                    return
                self._drop_connection()
                self._wakeup.clear()
                if self._past_deadline():
                    log.error("ledger: database still failing at close, giving up: %s", exc)
                    self._abandoned = True
                    self._abandon_error = exc
                    break
                log.warning(
                    "ledger: commit of %d records failed, retrying in %.2fs: %s",
                    len(batch),
                    delay,
                    exc,
                )
                self._wakeup.wait(self._sleep_time(delay))
                delay = min(delay * 2, self._retry_max_s)
                retrying = True
            else:
                self.rows_written += len(records)
                self.batches_written += 1
                self._settle_threadsafe(batch, None)
                return
        self._settle_threadsafe(batch, self._abandon_exception())

    def _commit(self, records: Sequence[LedgerRecord], *, dedupe: bool) -> None:
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                sqlite_begin="BEGIN IMMEDIATE"
            )
        with self._connection.begin():
            if dedupe:
                self._rows.write(self._connection, records)
            else:
                self._rows.write_new(self._connection, without_duplicates(records))

    def _isolate(self, batch: list[Item], exc: BaseException) -> None:
        """Split a batch that holds an invalid record until it is alone, and fail only that one."""
        if len(batch) == 1:
            record = batch[0][0]
            log.error("ledger: cannot store record %r: %s", record.request_id, exc)
            self._settle_threadsafe(batch, LedgerWriteError(f"invalid ledger record: {exc}"))
            return
        middle = len(batch) // 2
        self._write_batch(batch[:middle], retrying=True)
        self._write_batch(batch[middle:], retrying=True)

    def _sleep_time(self, delay: float) -> float:
        if self._deadline is None:
            return delay
        return max(0.0, min(delay, self._deadline - time.monotonic()))

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    def _abandon_exception(self) -> LedgerWriteError:
        return LedgerWriteError(f"ledger unavailable, record not written: {self._abandon_error}")

    def _fail_queued(self) -> None:
        failed: list[Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                failed.append(item)
        if failed:
            self._settle_threadsafe(failed, self._abandon_exception())

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # already broken; the next attempt opens a new one
                log.debug("ledger: closing a broken connection failed", exc_info=True)
            self._connection = None

    def _settle_threadsafe(self, batch: list[Item], error: BaseException | None) -> None:
        assert self._loop is not None
        futures = [future for _record, future in batch]
        try:
            self._loop.call_soon_threadsafe(self._settle, futures, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("ledger: loop closed before %d futures could be settled", len(futures))
