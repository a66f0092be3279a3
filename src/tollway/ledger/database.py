"""The ledger's database: one engine (SQLite or PostgreSQL) and its migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

from tollway.errors import ConfigError
from tollway.ledger.commit import BatchCommitter
from tollway.ledger.daily import DailyTracker
from tollway.ledger.journal import default_journal_dir, replay_dead_writers
from tollway.ledger.schema import metadata

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SYNC_ENV = "TOLLWAY_LEDGER_SYNC"
_SYNC_MODES = {"normal": "NORMAL", "full": "FULL"}


class Database:
    """An engine for `url` plus `migrate()`, which also replays the journal of dead writers.

    SQLite runs in WAL mode with `synchronous=NORMAL`: a committed transaction
    survives a crash of the process (kill -9), and only an OS crash or power loss
    may lose the last ones. `sync="full"` (or `TOLLWAY_LEDGER_SYNC=full`, which
    wins over the argument) makes commits survive those too, at the price of an
    fsync per commit.
    """

    def __init__(
        self,
        url: str,
        *,
        sync: str | None = None,
        busy_timeout_ms: int = 5000,
        echo: bool = False,
    ) -> None:
        self.url: URL = _normalize_url(url)
        # The environment overrides the config file, as TOLLWAY_DATABASE_URL does.
        sync_name = (os.environ.get(SYNC_ENV) or sync or "normal").lower()
        if sync_name not in _SYNC_MODES:
            raise ConfigError(f"{SYNC_ENV} must be one of {sorted(_SYNC_MODES)}, not {sync_name!r}")
        self.synchronous = sync_name
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self._engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _install_sqlite_pragmas(self._engine, _SYNC_MODES[sync_name], busy_timeout_ms)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def migrate(self, daily: DailyTracker | None = None) -> None:
        """Bring the schema to the newest migration (idempotent; safe on every start), then
        replay dead writers' journals (`daily`: how their requests are classified)."""
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        config = alembic_config(self.url.render_as_string(hide_password=False))
        # SQLite: take the write lock up front so two processes starting together
        # migrate one after the other instead of failing halfway.
        options = {"sqlite_begin": "BEGIN IMMEDIATE"} if self.is_sqlite else {}
        with self._engine.connect().execution_options(**options) as connection:
            config.attributes["connection"] = connection
            with connection.begin():
                command.upgrade(config, "head")
                # A bulk load that died while its indexes were set aside left them missing.
                for table in metadata.tables.values():
                    for index in table.indexes:
                        index.create(connection, checkfirst=True)
        self.replay_journal(daily)

    @property
    def journal_dir(self) -> Path | None:
        """Where `LedgerWriter` journals by default: beside a SQLite file; None otherwise."""
        return default_journal_dir(self.url)

    def replay_journal(self, daily: DailyTracker | None = None) -> int:
        """Store what dead writers left in the default journal; returns the records read.

        Live writers' journals are locked and left alone; request ids already
        stored are skipped, so a replay never counts a request twice. Pass the
        gateway's `daily` tracker so replayed requests are classified like live ones.
        """
        if self.journal_dir is None:
            return 0
        committer = BatchCommitter(self._engine, retry=False, daily=daily)
        try:
            return replay_dead_writers(self.journal_dir, committer)
        finally:
            committer.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _normalize_url(url: str) -> URL:
    parsed = make_url(url)
    # The `postgres` extra installs psycopg 3; a bare postgresql:// would pick psycopg2.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _install_sqlite_pragmas(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN, so DDL is transactional too
        # (pysqlite would otherwise only open transactions before DML).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))
