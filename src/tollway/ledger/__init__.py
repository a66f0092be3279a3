"""The ledger: the durable record of every request, and the rollups reports read."""

from tollway.ledger.database import Database
from tollway.ledger.keys import KeyInfo, KeyStore, hash_key
from tollway.ledger.queries import get_request, recent_requests, usage
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import insert_records
from tollway.ledger.writer import LedgerWriteError, LedgerWriter

__all__ = [
    "Database",
    "KeyInfo",
    "KeyStore",
    "LedgerRecord",
    "LedgerWriteError",
    "LedgerWriter",
    "get_request",
    "hash_key",
    "insert_records",
    "recent_requests",
    "usage",
]
