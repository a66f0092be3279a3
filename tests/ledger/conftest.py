"""Fixtures for the ledger tests: a migrated SQLite file per test and a record factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tollway.ledger import Database, LedgerRecord

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
_ids = itertools.count()

RecordFactory = Callable[..., LedgerRecord]


def make_record(**overrides: Any) -> LedgerRecord:
    """A plausible record; every field can be overridden."""
    n = next(_ids)
    fields: dict[str, Any] = {
        "request_id": f"req-{n:08d}",
        "started_at_ms": T0 + n,
        "finished_at_ms": T0 + n + 250,
        "key_id": "key_000000000001",
        "user": "ada",
        "team": "payments",
        "org": "acme",
        "api": "openai.chat",
        "requested_model": "gpt-sim",
        "served_model": "gpt-sim",
        "provider": "simulated",
        "deployment": "sim-1",
        "tags": ("prod",),
        "input_tokens": 1200,
        "cached_input_tokens": 200,
        "output_tokens": 300,
        "reasoning_tokens": 40,
        "list_cost_pusd": 4_200_000_000,
        "actual_cost_pusd": 3_360_000_000,
        "weighted_charge_pusd": 5_040_000_000,
        "peak_weight": 1.5,
        "latency_ms": 250.0,
        "ttft_ms": 40.0,
        "stream": True,
        "finish_reason": "stop",
        "prompt_fingerprint": "f00d",
        "extra": {"n": n},
    }
    fields.update(overrides)
    return LedgerRecord(**fields)


@pytest.fixture
def record() -> RecordFactory:
    return make_record


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ledger.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(sqlite_url(db_path))
    database.migrate()
    yield database
    database.close()
