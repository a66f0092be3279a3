"""Committing batches of ledger records: one transaction each, retried through outages.

Used from one thread at a time: the `LedgerWriter` thread, or `Database.migrate()`
replaying a dead writer's journal. Invalid records are isolated by splitting the
batch until they are alone, so one bad row never holds back the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tollway.ledger.daily import DailyTracker
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import RowWriter, without_duplicates

log = logging.getLogger("tollway.ledger.writer")


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


class BatchCommitter:
    """Writes batches of records, rows and rollups in one transaction, on one connection.

    Database errors are retried with exponential back-off, until `give_up_after`
    sets a deadline that passes (or at once with `retry=False`); from then on the
    committer is `abandoned` and every record it is given comes back unwritten.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retry: bool = True,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        daily: DailyTracker | None = None,
    ) -> None:
        self._engine = engine
        self._retry = retry
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._rows = RowWriter(engine.dialect, daily)
        self._connection: Connection | None = None
        self._deadline: float | None = None  # monotonic
        self._wakeup = threading.Event()  # cuts a back-off short when a deadline is set
        self.abandoned = False
        self.abandon_error: BaseException | None = None
        self.rows_written = 0
        self.batches_written = 0
        self.retries = 0

    def give_up_after(self, timeout: float | None) -> None:
        """Stop retrying database errors `timeout` seconds from now (thread-safe)."""
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        self._wakeup.set()

    def unavailable_error(self) -> LedgerWriteError:
        return LedgerWriteError(f"ledger unavailable, record not written: {self.abandon_error}")

    def commit(
        self, records: Sequence[LedgerRecord], *, dedupe: bool = False
    ) -> dict[int, LedgerWriteError]:
        """Store `records`; returns the ones not stored, by index, with the reason.

        `dedupe=False` assumes the ids are new (the fast path) and checks what is
        stored only if that fails; `dedupe=True` checks first (replays, retries).
        """
        failed: dict[int, LedgerWriteError] = {}
        self._commit(records, 0, dedupe, failed)
        return failed

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:  # already broken; the next attempt opens a new one
                log.debug("ledger: closing a broken connection failed", exc_info=True)
            self._connection = None

    def _commit(
        self,
        records: Sequence[LedgerRecord],
        offset: int,
        retrying: bool,
        failed: dict[int, LedgerWriteError],
    ) -> None:
        delay = self._retry_initial_s
        while not self.abandoned:
            try:
                self._transaction(records, dedupe=retrying)
            except Exception as exc:
                self.retries += 1
                if _is_record_error(exc):
                    if not retrying:  # perhaps a repeated request id: check what is stored first
                        retrying = True
                        continue
                    self._isolate(records, offset, exc, failed)
                    return
                self.close()
                self._wakeup.clear()
                if not self._retry or self._past_deadline():
                    log.error("ledger: database failing, giving up: %s", exc)
                    self.abandoned = True
                    self.abandon_error = exc
                    break
                log.warning(
                    "ledger: commit of %d records failed, retrying in %.2fs: %s",
                    len(records),
                    delay,
                    exc,
                )
                self._wakeup.wait(self._sleep_time(delay))
                delay = min(delay * 2, self._retry_max_s)
                retrying = True
            else:
                self.rows_written += len(records)
                self.batches_written += 1
                return
        error = self.unavailable_error()
        for index in range(offset, offset + len(records)):
            failed[index] = error

    def _transaction(self, records: Sequence[LedgerRecord], *, dedupe: bool) -> None:
        if self._connection is None:
            self._connection = self._engine.connect().execution_options(
                sqlite_begin="BEGIN IMMEDIATE"
            )
        with self._connection.begin():
            if dedupe:
                self._rows.write(self._connection, records)
            else:
                self._rows.write_new(self._connection, without_duplicates(records))

    def _isolate(
        self,
        records: Sequence[LedgerRecord],
        offset: int,
        exc: BaseException,
        failed: dict[int, LedgerWriteError],
    ) -> None:
        """Split a batch that holds an invalid record until it is alone, and fail only that one."""
        if len(records) == 1:
            log.error("ledger: cannot store record %r: %s", records[0].request_id, exc)
            failed[offset] = LedgerWriteError(f"invalid ledger record: {exc}")
            return
        middle = len(records) // 2
        self._commit(records[:middle], offset, True, failed)
        self._commit(records[middle:], offset + middle, True, failed)

    def _sleep_time(self, delay: float) -> float:
        if self._deadline is None:
            return delay
        return max(0.0, min(delay, self._deadline - time.monotonic()))

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline
