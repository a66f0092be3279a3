"""The ledger's write-ahead journal: records are durable once appended to a file.

A journal directory holds, per live writer, a lock file `<writer>.lock` (flocked
for the writer's whole life) and numbered segments `<writer>.<seq>.wal`. A
segment is one header line then one line per record, each line
`<crc32 of the JSON, 8 hex digits> <JSON>\\n`; the header names the record
fields, the records are JSON arrays in that order. One `os.write` on an
O_APPEND descriptor appends a record: once it returns, the bytes are in the page
cache and survive `kill -9` of the process (not an OS crash: fsync for that).

A torn or corrupt line fails its CRC (or has no newline) and is skipped with a
warning; the lines after it are still read. A writer deletes a segment once
every record in it is committed to the database. Whatever is left belongs to a
dead writer (its lock can be taken) and is replayed by `replay_dead_writers`;
the replay is idempotent, since request ids already stored are skipped.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import secrets
import time
import zlib
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import URL

from tollway.ledger.commit import BatchCommitter
from tollway.ledger.record import LedgerRecord

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FIELDS = tuple(f.name for f in dataclasses.fields(LedgerRecord))
_values = attrgetter(*FIELDS)
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
_LOCK = ".lock"
_SEGMENT = ".wal"
_PENDING = ".lock.new"  # a lock file not yet locked and renamed into place
_PENDING_GRACE_S = 60.0


def default_journal_dir(url: URL) -> Path | None:
    """`<directory of the SQLite file>/journal`; None for in-memory SQLite or a server database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve().parent / "journal"


def frame(payload: bytes) -> bytes:
    """One journal line: the CRC-32 of `payload`, a space, `payload`, a newline."""
    return b"%08x %b\n" % (zlib.crc32(payload), payload)


def encode_record(record: LedgerRecord) -> bytes:
    """The journal line of `record`. TypeError if it cannot be encoded (e.g. a 70-bit int)."""
    payload = orjson.dumps(_values(record), default=str, option=_JSON_OPTIONS)
    return b"%08x %b\n" % (zlib.crc32(payload), payload)


_HEADER = frame(orjson.dumps({"tollway_journal": FORMAT_VERSION, "fields": FIELDS}))


class Journal:
    """One writer's journal files. Used from one thread (the writer's event loop)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.writer_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.segment: Path | None = None  # the segment being appended to
        self.size = 0  # bytes in `segment`
        self._lock_fd = -1
        self._fd = -1
        self._seq = 0

    def open(self) -> None:
        """Create the directory and this writer's lock file, already locked when it appears."""
        self.directory.mkdir(parents=True, exist_ok=True)
        pending = self.directory / f"{self.writer_id}{_PENDING}"
        fd = os.open(pending, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(pending, self.directory / f"{self.writer_id}{_LOCK}")
        except BaseException:
            os.close(fd)
            pending.unlink(missing_ok=True)
            raise
        self._lock_fd = fd

    def start_segment(self) -> Path:
        """Open a new segment and write its header."""
        assert self._fd < 0 and self._lock_fd >= 0
        self._seq += 1
        path = self.directory / f"{self.writer_id}.{self._seq:06d}{_SEGMENT}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        self._fd, self.segment, self.size = fd, path, 0
        self.write(_HEADER)
        return path

    def write(self, line: bytes) -> None:
        """Append `line` with one write; OSError if not all of it was written."""
        written = os.write(self._fd, line)
        self.size += written
        if written != len(line):
            raise OSError(f"short write to {self.segment}: {written} of {len(line)} bytes")

    def end_segment(self) -> Path | None:
        """Stop appending to the current segment; returns it (None if there was none)."""
        path = self.segment
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self.segment, self.size = -1, None, 0
        return path

    def close(self) -> None:
        """Release the lock; the lock file goes too unless segments are left for a replay."""
        self.end_segment()
        if self._lock_fd < 0:
            return
        if not any(self._segments()):
            (self.directory / f"{self.writer_id}{_LOCK}").unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = -1

    def _segments(self) -> Iterator[Path]:
        return self.directory.glob(f"{self.writer_id}.*{_SEGMENT}")


class DeadWriter:
    """The leftovers of a writer that is gone, locked so that only one process replays them."""

    def __init__(self, directory: Path, writer_id: str, lock_fd: int) -> None:
        self.directory = directory
        self.writer_id = writer_id
        self._lock_fd = lock_fd  # -1: no lock file (an orphan segment)

    def segments(self) -> list[Path]:
        """Its segments, oldest first."""
        found = self.directory.glob(f"{self.writer_id}.*{_SEGMENT}")
        return sorted(found, key=lambda p: _sequence(p.name))

    def release(self, *, done: bool) -> None:
        """Unlock; with `done` (every segment replayed and deleted), remove the lock file too."""
        if self._lock_fd < 0:
            return
        if done:
            (self.directory / f"{self.writer_id}{_LOCK}").unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = -1


def dead_writers(directory: Path, *, skip: str | None = None) -> Iterator[DeadWriter]:
    """The writers with leftovers in `directory` whose lock could be taken (they are dead).

    The caller must `release` each before taking the next.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    writers: set[str] = set()
    for name in names:
        if name.endswith(_PENDING):  # its writer died between creating and locking it
            _remove_if_unlocked(directory / name)
        elif name.endswith(_LOCK):
            writers.add(name[: -len(_LOCK)])
        elif name.endswith(_SEGMENT) and _sequence(name) >= 0:
            writers.add(name.split(".", 1)[0])
    writers.discard(skip or "")
    for writer_id in sorted(writers):
        lock_path = directory / f"{writer_id}{_LOCK}"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            # No lock file: segments left by a replay that was cut short, or a clean close.
            yield DeadWriter(directory, writer_id, -1)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # alive, or being replayed by another process
            os.close(fd)
            continue
        if os.fstat(fd).st_nlink == 0:  # replayed and removed while we were opening it
            os.close(fd)
            continue
        yield DeadWriter(directory, writer_id, fd)


def read_segment(path: Path) -> list[LedgerRecord]:
    """The records of a segment; torn or corrupt lines are skipped with a warning."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # replayed by someone else meanwhile
        return []
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail:
        log.warning("ledger journal %s: skipping a torn last line (%d bytes)", path, len(tail))
    fields: tuple[str, ...] | None = None
    records: list[LedgerRecord] = []
    for number, line in enumerate(lines, 1):
        value = _decode_line(line)
        if value is None:
            log.warning("ledger journal %s: skipping corrupt line %d", path, number)
        elif fields is None:
            if isinstance(value, dict) and value.get("tollway_journal") == FORMAT_VERSION:
                fields = tuple(value["fields"])
            else:
                log.warning("ledger journal %s: no header, reading it as the current format", path)
                fields = FIELDS
                records.extend(_record(path, number, fields, value))
        else:
            records.extend(_record(path, number, fields, value))
    return records


def replay_dead_writers(
    directory: Path,
    committer: BatchCommitter,
    *,
    batch_size: int = 512,
    skip: str | None = None,
) -> int:
    """Commit what dead writers left in `directory`, deleting each segment once stored.

    Returns the number of records read. Stops early, leaving the rest for later,
    if the committer gives up on the database.
    """
    replayed = 0
    for dead in dead_writers(directory, skip=skip):
        done = False
        try:
            for segment in dead.segments():
                records = read_segment(segment)
                for start in range(0, len(records), batch_size):
                    committer.commit(records[start : start + batch_size], dedupe=True)
                    if committer.abandoned:
                        return replayed
                replayed += len(records)
                segment.unlink(missing_ok=True)
            done = True
        finally:
            dead.release(done=done)
        if replayed:
            log.info("ledger: replayed the journal of writer %s", dead.writer_id)
    return replayed


def _decode_line(line: bytes) -> Any:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    try:
        crc = int(line[:8], 16)
    except ValueError:
        return None
    payload = line[9:]
    if zlib.crc32(payload) != crc:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _record(path: Path, number: int, fields: tuple[str, ...], value: Any) -> list[LedgerRecord]:
    """The record on line `number` as a one-item list; empty if it does not make a record."""
    try:
        known = {k: v for k, v in zip(fields, value, strict=True) if k in _FIELD_SET}
        known["tags"] = tuple(known.get("tags", ()))
        return [LedgerRecord(**known)]
    except (TypeError, ValueError) as exc:
        log.warning(
            "ledger journal %s: skipping unreadable record on line %d: %s", path, number, exc
        )
        return []


_FIELD_SET = frozenset(FIELDS)


def _sequence(name: str) -> int:
    """The segment number in `<writer>.<seq>.wal`, or -1 if `name` is not a segment."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return -1
    return int(parts[1])


def _remove_if_unlocked(path: Path) -> None:
    try:
        if time.time() - path.stat().st_mtime < _PENDING_GRACE_S:
            return  # its writer may not have locked it yet
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # its writer is about to rename it
    else:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
