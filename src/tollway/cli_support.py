"""Helpers the CLI shares: loading settings, opening the database, parsing times."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from tollway.errors import ConfigError
from tollway.insights.in_house import daily_tracker
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore
from tollway.settings import Settings, load_settings

err = Console(stderr=True)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


ConfigOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="YAML config file (or TOLLWAY_CONFIG).")
]


def open_database(settings: Settings) -> tuple[Database, KeyStore]:
    """The configured database, migrated, and its key store."""
    database = Database(settings.resolved_database_url, sync=settings.server.ledger_sync)
    database.migrate(daily_tracker(settings))  # a replayed journal is classified as live
    return database, KeyStore(database.engine)


def duration_ms(text: str) -> int:
    """`30s`, `15m`, `24h`, `7d`, `2w` in milliseconds; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_when(text: str, *, future: bool = True) -> int:
    """Epoch ms of an ISO date/time (UTC unless it says otherwise) or a duration from now."""
    try:
        offset = duration_ms(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a time: {text!r} (use an ISO date or a duration)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    now = int(time.time() * 1000)
    return now + offset if future else now - offset


def parse_since(text: str) -> int:
    """Epoch ms of a start time: a duration back from now or an ISO date."""
    return parse_when(text, future=False)


def cli_settings(config: str | None) -> Settings:
    """The settings of `config` (or the environment's), exiting with 2 on a config error."""
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc.message}")
        raise typer.Exit(2) from None


def fmt_ms(ms: int | None) -> str:
    """A UTC time to the minute, or nothing."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
