"""Migrations: idempotent, concurrent-safe, and in agreement with `schema.py`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from tollway.errors import ConfigError
from tollway.ledger import Database
from tollway.ledger.database import alembic_config
from tollway.ledger.schema import VERSION_TABLE, metadata

from .conftest import sqlite_url

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def version(db: Database) -> str:
    with db.engine.connect() as connection:
        return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()


def test_migrate_creates_the_parent_directory_and_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    db = Database(sqlite_url(path))
    db.migrate()
    assert path.exists()
    tables = set(inspect(db.engine).get_table_names())
    assert {"requests", "usage_hourly", "api_keys", "kv", VERSION_TABLE} <= tables
    assert version(db) == HEAD


def test_migrate_is_idempotent(db: Database, db_path: Path) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO kv (key, value) VALUES ('k', 'v')"))
    db.migrate()
    again = Database(sqlite_url(db_path))
    again.migrate()
    assert version(again) == HEAD
    with again.engine.connect() as connection:
        assert connection.execute(text("SELECT value FROM kv")).scalar_one() == "v"


def test_processes_starting_together_migrate_one_after_the_other(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Database(sqlite_url(path)).migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert version(Database(sqlite_url(path))) == HEAD


def test_schema_module_matches_the_migrations(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in str(d)]
    assert diff == []


def test_sqlite_pragmas(db: Database) -> None:
    with db.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") == 5000
        assert pragma("foreign_keys") == 1


def test_full_sync_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path = tmp_path / "ledger.db"
    monkeypatch.setenv("TOLLWAY_LEDGER_SYNC", "full")
    db = Database(sqlite_url(db_path), sync="normal")  # the environment wins, as for the URL
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    monkeypatch.setenv("TOLLWAY_LEDGER_SYNC", "sometimes")
    with pytest.raises(ConfigError, match="TOLLWAY_LEDGER_SYNC"):
        Database(sqlite_url(db_path))


def test_postgres_urls_use_psycopg_3() -> None:
    pytest.importorskip("psycopg")
    db = Database("postgresql://tollway:secret@127.0.0.1:1/tollway")  # no connection is made
    assert db.url.drivername == "postgresql+psycopg"
    assert not db.is_sqlite


def test_migrate_rebuilds_indexes_a_dead_bulk_load_left_missing(db: Database) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_requests_user_started_at_ms"))
    db.migrate()
    names = {index["name"] for index in inspect(db.engine).get_indexes("requests")}
    assert "ix_requests_user_started_at_ms" in names
