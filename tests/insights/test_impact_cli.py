"""`tollway outcomes add|list` and `tollway impact` over a real SQLite ledger."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tollway.cli import app
from tollway.ledger.daily import DailyTracker
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import RowWriter

HOUR_MS = 3_600_000


@pytest.fixture()
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    for name in ("TOLLWAY_CONFIG", "TOLLWAY_DATABASE_URL", "TOLLWAY_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    database = Database(f"sqlite:///{tmp_path / 'tollway.db'}")
    database.migrate()
    return database


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def seed(database: Database, team: str, users: list[str], at_ms: int) -> None:
    store = KeyStore(database.engine)
    records = []
    for i, user in enumerate(users):
        store.create(user, team, "demo")
        records.append(
            LedgerRecord(
                request_id=f"req_{team}_{i}",
                started_at_ms=at_ms,
                finished_at_ms=at_ms + 10,
                key_id="key_x",
                user=user,
                team=team,
                org="demo",
                api="openai.chat",
                requested_model="gpt-sim",
                served_model="inhouse-sim" if i % 2 else "gpt-sim",
                provider="sim",
                input_tokens=400_000,
                output_tokens=100_000,
                actual_cost_pusd=2 * 10**12,  # $2
            )
        )
    # Classified as the gateway of the default settings does when it writes them.
    writer = RowWriter(database.engine.dialect, DailyTracker(in_house_models={"inhouse-sim"}))
    with database.engine.begin() as connection:
        writer.write(connection, records)


def test_outcomes_add_list_and_the_impact_table(ledger: Database) -> None:
    now = int(time.time() * 1000)
    seed(ledger, "platform", ["alice", "bob"], now - 2 * HOUR_MS)
    code, out, err = run(
        "outcomes", "add", "--id", "gh:demo/app#1", "--kind", "pr_merged",
        "--actor", "alice", "--actor", "bob", "--team", "platform", "--url", "https://x/1",
    )  # fmt: skip
    assert code == 0 and "stored gh:demo/app#1" in out, err
    code, out, _ = run(
        "outcomes", "add", "--id", "gh:demo/app#1", "--kind", "pr_merged", "--actor", "alice",
        "--team", "platform",
    )  # fmt: skip
    assert code == 0 and "stored already" in out
    code, _, err = run(
        "outcomes", "add", "--id", "x", "--kind", "shipped", "--actor", "a", "--team", "t"
    )
    assert code == 2 and "kind" in err
    code, _, err = run(
        "outcomes", "add", "--id", "x", "--kind", "pr_merged", "--actor", "a", "--team", "t",
        "--at", "next week",
    )  # fmt: skip
    assert code == 2 and "occurred_at" in err

    code, out, _ = run("outcomes", "list", "--since", "1d")
    assert code == 0 and "gh:demo/app#1" in out and "alice, bob" in out

    code, out, err = run("impact", "--since", "7d")
    assert code == 0, err
    # 1 outcome on 1M credited tokens at $4; half the tokens on the in-house model.
    assert re.search(
        r"demo/platform\s+│\s+2\s+│\s+1\s+│\s+1,000,000\s+│\s+1\.00\s+│\s+\$4\.00\s+│\s+50%", out
    ), out


def test_impact_leaderboard_bands(ledger: Database) -> None:
    now = int(time.time() * 1000)
    for team in ("red", "blue"):
        seed(ledger, team, [f"{team}{i}" for i in range(5)], now - HOUR_MS)
    seed(ledger, "solo", ["sam"], now - HOUR_MS)
    run(
        "outcomes", "add", "--id", "r1", "--kind", "ticket_done", "--actor", "red0", "--team", "red"
    )
    code, out, err = run("impact", "--leaderboard")
    assert code == 0, err
    assert re.search(r"Q1\s+│\s+demo/red\s", out) and re.search(r"Q3\s+│\s+demo/blue\s", out)
    assert re.search(r"too small to compare\s+│\s+demo/solo", out)
    code, _, err = run("impact", "--since", "soonish")
    assert code == 2 and "not a time" in err
