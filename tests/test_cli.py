"""The CLI over a real SQLite ledger: keys, usage, request records, config errors."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tollway.cli import app
from tollway.ledger.database import Database
from tollway.ledger.keys import KeyStore, hash_key
from tollway.ledger.record import LedgerRecord
from tollway.ledger.rows import insert_records


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("TOLLWAY_CONFIG", "TOLLWAY_DATABASE_URL", "TOLLWAY_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOLLWAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke(env: Path) -> None:
    code, out, err = run("keys", "create", "--user", "ada", "--team", "payments", "--org", "acme")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("tw-") and "key id" in err
    database = Database(f"sqlite:///{env / 'tollway.db'}")
    info = KeyStore(database.engine).get_by_hash(hash_key(key))
    assert info is not None and (info.org, info.team, info.user) == ("acme", "payments", "ada")

    code, out, _ = run("keys", "list", "--org", "acme")
    assert code == 0 and info.key_id in out and key not in out

    code, out, _ = run("keys", "revoke", info.key_id)
    assert code == 0 and "revoked" in out
    code, _, err = run("keys", "revoke", info.key_id)
    assert code == 1 and "no active key" in err
    code, out, _ = run("keys", "list", "--all")
    assert "revoked" in out


def test_keys_create_with_expiry_and_bad_expiry(env: Path) -> None:
    code, _, _ = run("keys", "create", "--user", "a", "--team", "t", "--expires", "30d")
    assert code == 0
    code, _, err = run("keys", "create", "--user", "a", "--team", "t", "--expires", "whenever")
    assert code == 2 and "not a time" in err

    code, out, _ = run("keys", "create", "--user", "b", "--team", "t")
    store = KeyStore(Database(f"sqlite:///{env / 'tollway.db'}").engine)
    info = store.get_by_hash(hash_key(out.strip()))
    assert info is not None and info.expires_at_ms is None
    code, out, _ = run("keys", "expire", info.key_id, "--at", "2030-01-01")
    assert code == 0 and "2030-01-01" in out
    assert store.get(info.key_id).expires_at_ms == 1_893_456_000_000  # type: ignore[union-attr]
    code, out, _ = run("keys", "expire", info.key_id)
    assert code == 0 and "never" in out
    code, _, _ = run("keys", "expire", "key_missing", "--at", "1d")
    assert code == 1


def _record(i: int, team: str, model: str, hour_ms: int) -> LedgerRecord:
    return LedgerRecord(
        request_id=f"req_cli_{i}",
        started_at_ms=hour_ms + i,
        finished_at_ms=hour_ms + i + 5,
        key_id="key_x",
        user=f"u{i % 2}",
        team=team,
        org="acme",
        api="openai.chat",
        requested_model=model,
        served_model=model,
        provider="sim",
        input_tokens=100,
        output_tokens=10,
        list_cost_pusd=1_000_000_000,  # $0.001
        actual_cost_pusd=800_000_000,
    )


def test_usage_by_team_and_request_record(env: Path) -> None:
    database = Database(f"sqlite:///{env / 'tollway.db'}")
    database.migrate()
    now = int(time.time() * 1000)
    records = [
        _record(i, "payments" if i < 3 else "search", "gpt-sim", now - 3_600_000) for i in range(5)
    ]
    with database.engine.begin() as connection:
        insert_records(connection, records)

    code, out, err = run("usage", "--by", "team", "--since", "1d")
    assert code == 0, err
    assert re.search(
        r"payments\s+│\s+3\s+│\s+300\s+│\s+0\s+│\s+30\s+│\s+330\s+│"
        r"\s+0\.003000\s+│\s+0\.002400",
        out,
    )
    assert re.search(r"search\s+│\s+2\s+│\s+200", out)

    code, out, _ = run("usage", "--by", "team,planet")
    assert code == 2

    code, out, _ = run("request", "req_cli_0")
    assert code == 0 and "payments" in out and "gpt-sim" in out
    code, _, err = run("request", "req_nope")
    assert code == 1 and "no request" in err


def test_serve_rejects_invalid_config_naming_the_field(env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers:\n  - {name: up, kind: openai}\n"
        "models:\n  - {name: m, deployments: [{provider: nowhere}]}\n"
    )
    code, _, err = run("serve", "--config", str(bad))
    assert code == 2
    assert "providers[0]" in err and "base_url" in err
